// `pgveil seal`: seals a secret read from stdin with the master key, for
// pasting into a config file ("sealed:…").
import { ConfigError } from '../config/errors.js';
import { loadMasterKeyInfo, MASTER_KEY_ENV } from '../secrets/master-key.js';
import { seal } from '../secrets/seal.js';
import { parseArgs, stringOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { promptHidden, readAllStdin, stripOneNewline } from './read-secret.js';

const usage = `usage: pgveil seal [--config FILE] < secret

  --config FILE   the pgveil.yaml whose secrets.masterKeyFile holds the key;
                  may be left out when ${MASTER_KEY_ENV} is set

Reads the secret from stdin (one trailing newline is dropped; at a terminal
it is asked for without echo) and prints "sealed:…" for the config file.
${MASTER_KEY_ENV} (base64) takes precedence over secrets.masterKeyFile.
Exit codes: 0 done, 1 no usable key or empty input, 2 usage or configuration error.`;

export const command: Command = {
  summary: 'seal a secret read from stdin with the master key',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const configFile = stringOption(args, 'config');
    if (configFile === undefined && !process.env[MASTER_KEY_ENV]) {
      throw new UsageError(`missing --config (or set ${MASTER_KEY_ENV})`);
    }

    let masterKeyFile: string | undefined;
    if (configFile !== undefined) {
      try {
        const { loadConfig } = await import('../config/load.js');
        masterKeyFile = loadConfig(configFile).secrets.masterKeyFile;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(`pgveil seal: configuration error\n${err.message}`);
        return 2;
      }
    }
    const info = loadMasterKeyInfo({ masterKeyFile });
    for (const w of info.warnings) console.error(`pgveil seal: warning: ${w}`);

    const secret = process.stdin.isTTY
      ? await promptHidden('Secret to seal: ')
      : stripOneNewline(await readAllStdin());
    if (secret === '') {
      console.error('pgveil seal: nothing to seal: the input is empty');
      return 1;
    }
    process.stdout.write(seal(secret, info.key) + '\n');
    return 0;
  },
};
