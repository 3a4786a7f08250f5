// `pgveil policy replay --config FILE --policy CANDIDATE <audit files or dirs…>`:
// re-decides the statements an audit log recorded (with `statements: full`)
// for each user under the active policy and under the candidate, reads the
// upstream catalog once as `serve` and `explain` do, and reports per user
// what the candidate newly refuses, newly allows and rewrites differently.
// Exit codes: 0 no difference, 1 a difference (or upstream could not be
// read), 2 usage or configuration error, or nothing in the files to replay.
import { loadModule } from 'libpg-query';
import type { Command } from './main.js';
import { parseArgs, requireOption, stringOption, UsageError } from './args.js';
import { loadAll, loadPolicy } from '../config/load.js';
import { displayFile } from '../config/errors.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import { parseSearchPath } from '../catalog/resolve.js';
import { CatalogUnavailableError, DecisionEngine } from '../engine/engine.js';
import { differenceCounts, replayStatements } from '../engine/replay.js';
import { silentLogger } from '../observe/log.js';
import { serviceSearchPath } from './explain.js';
import { readRecordedStatements } from './replay-records.js';
import { renderJson, renderText } from './replay-report.js';

const usage = `usage: pgveil policy replay --config <file> --policy <candidate.yaml> [--search-path <value>] [--format text|json] <audit file or directory>…

  --config <file>        the pgveil.yaml to read (users, active policy and upstream as \`serve\` uses them)
  --policy <file>        the candidate policy to compare with the active one
  --search-path <value>  the search_path statements are decided under (default: what upstream gives the service role)
  --format text|json     text for people (default), json for scripts
  <audit file or dir>    audit log files, or directories of them (*.jsonl), written with audit.statements: full

Exit status: 0 the candidate decides every recorded statement as the active policy does,
1 it decides some differently, 2 usage or configuration error or nothing to replay.`;

export const command: Command = {
  summary: 're-decide recorded statements under a candidate policy: newly refused, newly allowed, rewritten differently',
  usage,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { config: 'value', policy: 'value', 'search-path': 'value', format: 'value' });
    const configFile = requireOption(args, 'config');
    const candidateFile = requireOption(args, 'policy');
    const format = stringOption(args, 'format') ?? 'text';
    if (format !== 'text' && format !== 'json') throw new UsageError(`--format must be text or json, not "${format}"`);
    if (!args.positionals.length) throw new UsageError('missing the audit files to replay');
    const searchPathOption = stringOption(args, 'search-path');
    let searchPath: string[] | undefined;
    if (searchPathOption !== undefined) {
      try {
        searchPath = parseSearchPath(searchPathOption);
      } catch (err) {
        throw new UsageError(`--search-path: ${err instanceof Error ? err.message : String(err)}`);
      }
    }

    const { config, users, policy } = loadAll(configFile);
    const candidate = loadPolicy(candidateFile, users);
    const input = await readRecordedStatements(args.positionals);
    if (!input.replayable) {
      const why = input.withoutText
        ? `its ${input.withoutText} statement records carry no text: replay needs an audit log written with audit.statements: full`
        : 'they hold no statement records';
      console.error(`pgveil policy replay: nothing to replay in ${input.files.map((f) => displayFile(f)).join(', ')}: ${why}`);
      return 2;
    }

    let masterKey: Uint8Array | undefined;
    const upstreamPassword = resolveSecret(config.upstream.password, () => (masterKey ??= loadMasterKey(config.secrets)), `${displayFile(config.file)}: upstream.password`);
    await loadModule();
    const active = new DecisionEngine(config, upstreamPassword, silentLogger);
    const shadow = new DecisionEngine(config, upstreamPassword, silentLogger);
    try {
      await active.load(users, policy);
      await shadow.load(users, candidate, active.current); // over the active catalog when it fits: upstream is read once
    } catch (err) {
      console.error(`pgveil policy replay: ${err instanceof Error ? err.message : String(err)}`);
      // The upstream being unreachable is a runtime failure; a policy that does not compile or fit is configuration.
      return err instanceof CatalogUnavailableError ? 1 : 2;
    }

    let searchPathText = searchPathOption;
    if (searchPathText === undefined) {
      try {
        searchPathText = await serviceSearchPath(config.upstream, upstreamPassword);
        searchPath = parseSearchPath(searchPathText);
      } catch (err) {
        console.error(`pgveil policy replay: could not read the upstream search_path: ${err instanceof Error ? err.message : String(err)}`);
        return 1;
      }
    }

    const result = replayStatements(input.byUser, users, active, shadow, { searchPath: searchPath!, searchPathText });
    const report = { input, result, activeFile: displayFile(policy.file), candidateFile: displayFile(candidate.file), usersFile: displayFile(users.file), searchPath: searchPathText };
    console.log(format === 'json' ? renderJson(report) : renderText(report));
    const counts = differenceCounts(result);
    return counts.newly_refused + counts.newly_allowed + counts.rewritten_differently > 0 ? 1 : 0;
  },
};
