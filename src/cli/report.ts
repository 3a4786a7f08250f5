// `pgveil report --config FILE [--format md|html] [--output FILE]`: the
// effective-access matrix of the configured users and policy. Works from the
// files alone, like `pgveil check` (no upstream): relations and columns are
// the ones the policy names.
// Exit codes: 0 written, 2 usage or configuration error.
import { writeFileSync } from 'node:fs';
import type { Command } from './main.js';
import { choiceOption, parseArgs, requireOption, stringOption, UsageError } from './args.js';
import { loadAll } from '../config/load.js';
import { compileCheckedPolicy } from '../policy/check.js';
import { effectiveAccess } from '../policy/effective-access.js';
import { markdownReport } from '../report/markdown.js';
import { htmlReport } from '../report/html.js';
import { reportSources } from '../report/sources.js';

const usage = `usage: pgveil report --config <file> [--format md|html] [--output <file>]

  --config <file>    the pgveil.yaml whose users and policy to report on
  --format md|html   Markdown (default) or one self-contained HTML page
  --output <file>    write the report there instead of standard output`;

export const command: Command = {
  summary: 'the effective-access matrix: every user and group × listed table (access, row filter, columns)',
  usage,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { config: 'value', format: 'value', output: 'value' });
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const configFile = requireOption(args, 'config');
    const format = choiceOption(args, 'format', ['md', 'html']);
    const output = stringOption(args, 'output');

    const { config, users, policy } = loadAll(configFile);
    const compiled = compileCheckedPolicy(policy, users, 1);
    const matrix = effectiveAccess(compiled, users);
    const sources = reportSources(config.policy, config.users);
    const report = format === 'html' ? htmlReport(matrix, sources) : markdownReport(matrix, sources);
    if (output === undefined) process.stdout.write(report);
    else writeFileSync(output, report);
    return 0;
  },
};
