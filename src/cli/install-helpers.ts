// `pgveil install-helpers --config FILE`: prints the SQL a DBA runs once
// upstream (as a superuser) to install the keyed scramble/hash helpers.
// The SQL carries the key, so it goes to stdout only, never to a file.
import { parseArgs, requireOption } from './args.js';
import type { Command } from './main.js';
import { scrambleInstallSqlForConfig } from '../policy/scramble-install.js';

export const command: Command = {
  summary: 'print the SQL that installs the scramble/hash helpers upstream',
  usage: [
    'usage: pgveil install-helpers --config <file>',
    '',
    '  --config <file>  the pgveil.yaml whose policy.yaml holds secrets.scrambleKey',
    '',
    'Pipe the output into psql as a superuser, e.g.:',
    '  pgveil install-helpers --config pgveil.yaml | psql -v ON_ERROR_STOP=1 -X -q -f - "dbname=analytics user=postgres"',
  ].join('\n'),
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    const sql = scrambleInstallSqlForConfig(requireOption(args, 'config'));
    // psql may exit early (it could not connect): a closed pipe is its error to report, not a crash here.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err; });
    await new Promise<void>((resolve) => process.stdout.write(sql, () => resolve()));
    return 0;
  },
};
