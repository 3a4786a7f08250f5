// `pgveil totp enroll <user>`: makes a TOTP secret for a users.yaml user,
// shows it once (otpauth:// URI and a terminal QR code for an authenticator
// app) and stores it sealed with the master key in the user's entry. A
// running pgveil picks the change up like any users.yaml edit (reload).
import qrcode from 'qrcode-terminal';
import { ConfigError } from '../config/errors.js';
import { newTotpSecret, TotpSecret, totpUri } from '../auth/totp.js';
import { seal } from '../secrets/seal.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { parseArgs, stringOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { editUserEntry, quoted } from './users-yaml-edit.js';

const usage = `usage: pgveil totp enroll --config FILE <user>

  --config FILE   the pgveil.yaml: its users file gets the sealed secret, its
                  secrets.masterKeyFile (or PGVEIL_MASTER_KEY) seals it

Makes a new RFC 6238 secret for an existing user (replacing an earlier one),
prints its otpauth:// URI and a QR code for an authenticator app, and writes
it sealed as the user's totp: key (only that entry changes; comments and
order stay). From then on the user logs in over TLS with the password
immediately followed by the current 6-digit code.
Exit codes: 0 enrolled, 1 the file could not be written, 2 usage or
configuration error (an unknown user included).`;

function qrText(text: string): Promise<string> {
  return new Promise((resolve) => qrcode.generate(text, { small: true }, resolve));
}

export const command: Command = {
  summary: 'enrol a user for a TOTP second factor (prints a QR code, writes users.yaml)',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    const [sub, userName, ...more] = args.positionals;
    if (sub !== 'enroll') throw new UsageError(sub === undefined ? 'missing subcommand (enroll)' : `unknown subcommand "${sub}" (enroll)`);
    if (userName === undefined) throw new UsageError('missing <user>');
    if (more.length) throw new UsageError('only one <user> may be given');
    const configFile = stringOption(args, 'config');
    if (configFile === undefined) throw new UsageError('--config is required');

    const { loadConfig, loadUsers } = await import('../config/load.js');
    let usersFile: string;
    let key: Uint8Array;
    try {
      const config = loadConfig(configFile);
      const users = loadUsers(config.users, config);
      usersFile = users.file;
      if (!users.users.has(userName)) {
        console.error(`pgveil totp: no user "${userName}" in ${usersFile}; add the user first`);
        return 2;
      }
      key = loadMasterKey(config.secrets, process.env, (w) => console.error(`pgveil totp: ${w}`));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      console.error(`pgveil totp: configuration error\n${err.message}`);
      return 2;
    }

    const base32 = newTotpSecret();
    const sealed = seal(base32, key);
    try {
      editUserEntry(usersFile, userName, (entry) => entry.set('totp', quoted(sealed)), (doc) => doc.getIn(['users', userName, 'totp']) === sealed);
    } catch (err) {
      console.error(`pgveil totp: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
    const uri = totpUri(new TotpSecret(base32), userName);
    process.stdout.write(`${uri}\n\n${await qrText(uri)}\n`);
    console.error(`pgveil totp: ${userName} enrolled in ${usersFile}; scan the code with an authenticator app, then log in over TLS with the password followed by the 6-digit code`);
    return 0;
  },
};
