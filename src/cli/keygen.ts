// `pgveil keygen`: a new 256-bit master key, printed or written to a file
// only its owner can read. An existing file is never overwritten without
// --force: losing the old key loses every value sealed with it.
import { chmodSync, writeFileSync } from 'node:fs';
import { generateMasterKey } from '../secrets/master-key.js';
import { parseArgs, stringOption, UsageError } from './args.js';
import type { Command } from './main.js';

const usage = `usage: pgveil keygen [--out FILE] [--force]

  --out FILE   write the key to FILE (created with mode 0600) instead of
               printing it; point secrets.masterKeyFile at FILE
  --force      with --out, replace FILE if it exists (everything sealed
               with the old key can no longer be opened)

Prints a new random 256-bit master key (base64) on stdout. Use it as
PGVEIL_MASTER_KEY or put it in the file named by secrets.masterKeyFile.
Exit codes: 0 done, 1 the file could not be written, 2 usage error.`;

export const command: Command = {
  summary: 'print a new 256-bit master key',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { out: 'value', force: 'flag' });
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const out = stringOption(args, 'out');
    const force = args.options.has('force');
    if (force && out === undefined) throw new UsageError('--force needs --out');
    const key = generateMasterKey();
    if (out === undefined) {
      process.stdout.write(key + '\n');
      return 0;
    }
    try {
      writeFileSync(out, key + '\n', { mode: 0o600, flag: force ? 'w' : 'wx' });
      chmodSync(out, 0o600); // a replaced file keeps its old mode otherwise
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        console.error(`pgveil keygen: ${out} already exists; not replacing a master key (use --force to replace it)`);
      } else {
        console.error(`pgveil keygen: cannot write ${out} (${code ?? 'error'})`);
      }
      return 1;
    }
    console.error(`pgveil keygen: wrote a new master key to ${out} (mode 0600)`);
    return 0;
  },
};
