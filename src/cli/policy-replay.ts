// `pgveil policy replay --config FILE --policy CANDIDATE <audit files or dirs…>`:
// re-decides the statements an audit log recorded (with `statements: full`)
// for each user under the active policy and under the candidate, reads the
// upstream catalog once as `serve` and `explain` do, and reports per user
// what the candidate newly refuses, newly allows and rewrites differently.
// Exit codes: 0 no difference, 1 a difference (or upstream could not be
// read), 2 usage or configuration error, or nothing in the files to replay.
import type { Command } from './main.js';
import { choiceOption, parseArgs, requireOption, UsageError } from './args.js';
import { loadAll, loadPolicy } from '../config/load.js';
import { displayFile } from '../config/errors.js';
import { differenceCounts, replayStatements } from '../engine/replay.js';
import { loadEngines, searchPathOption, sessionSearchPath } from './offline-engine.js';
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
    const format = choiceOption(args, 'format', ['text', 'json']);
    if (!args.positionals.length) throw new UsageError('missing the audit files to replay');
    const givenSearchPath = searchPathOption(args);

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

    // The candidate over the active policy's catalog when it fits: upstream is read once.
    const loaded = await loadEngines('policy replay', config, users, [policy, candidate]);
    if (typeof loaded === 'number') return loaded;
    const [active, shadow] = loaded.engines;
    const searchPath = await sessionSearchPath('policy replay', config, loaded.upstreamPassword, givenSearchPath);
    if (!searchPath) return 1;

    const result = replayStatements(input.byUser, users, active, shadow, { searchPath: searchPath.path, searchPathText: searchPath.text });
    const report = { input, result, activeFile: displayFile(policy.file), candidateFile: displayFile(candidate.file), usersFile: displayFile(users.file), searchPath: searchPath.text };
    console.log(format === 'json' ? renderJson(report) : renderText(report));
    const counts = differenceCounts(result);
    return counts.newly_refused + counts.newly_allowed + counts.rewritten_differently > 0 ? 1 : 0;
  },
};
