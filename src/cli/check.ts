// `pgveil check --config FILE [--live] [--format text|json]`: validates the
// config and the users and policy files it names, reporting every problem as
// file:line:col. With --live it also connects upstream as the service role
// and reports what a DBA must fix there (src/live-check/).
// Exit codes: 0 all valid (and, with --live, nothing to fix); 1 --live found
// something to fix upstream; 2 a file is invalid, the policy does not fit
// the upstream schema, or the upstream cannot be reached (docs/configuration.md).
import type { Command } from './main.js';
import { choiceOption, parseArgs, requireOption, UsageError } from './args.js';
import { checkAll } from '../config/load.js';
import { displayFile, formatIssue, sortIssues } from '../config/errors.js';
import { runLiveCheck, UpstreamUnreachableError } from '../live-check/run.js';
import { exitCodeOf } from '../live-check/finding.js';
import { renderJson, renderText } from '../live-check/render.js';

const usage = `usage: pgveil check --config <file> [--live] [--format text|json]

  --config <file>   the pgveil.yaml to check (and the users and policy files it names)
  --live            also connect upstream as the service role and report what to fix there
  --format <f>      text (default) or json (--live only: the findings as one JSON document)`;

export const command: Command = {
  summary: 'validate config, users and policy files (exit 2 on problems); --live also checks the upstream (exit 1 on findings)',
  usage,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { config: 'value', live: 'flag', format: 'value' });
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const configFile = requireOption(args, 'config');
    const format = choiceOption(args, 'format', ['text', 'json']);
    const live = args.options.has('live');
    if (format === 'json' && !live) throw new UsageError('--format json needs --live');

    const result = checkAll(configFile, { shadow: true });
    const bad = new Set(result.issues.map((i) => i.file));
    if (format === 'text') for (const file of result.files) if (!bad.has(file)) console.log(`ok: ${displayFile(file)}`);
    for (const issue of sortIssues(result.issues)) console.error(formatIssue(issue));
    if (result.issues.length || !result.loaded) {
      const n = result.issues.length;
      console.error(`${n} problem${n === 1 ? '' : 's'} in ${bad.size} file${bad.size === 1 ? '' : 's'}`);
      return 2;
    }
    if (!live) return 0;
    let report;
    try {
      report = await runLiveCheck(result.loaded);
    } catch (err) {
      if (!(err instanceof UpstreamUnreachableError)) throw err;
      console.error(`pgveil check --live: ${err.message}; nothing was checked upstream`);
      return 2;
    }
    console.log(format === 'json' ? renderJson(report) : renderText(report));
    return exitCodeOf(report.findings);
  },
};
