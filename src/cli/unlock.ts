// `pgveil unlock --config FILE <user>`: lifts a user's lockout (and forgets
// its failed logins) in the running pgveil, through its admin control API.
import { parseArgs, requireOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { adminClient, withAdmin } from './admin-client.js';

const usage = `usage: pgveil unlock --config <file> <user>

  --config <file>  the pgveil.yaml the running pgveil was started with (its
                   admin.host, admin.port and admin.token are used)
  <user>           the user name to unlock

Exit codes: 0 done (also when the user was not locked), 1 the token was
refused or the admin API could not be reached, 2 usage or configuration error
(e.g. no admin.token).`;

export const command: Command = {
  summary: 'lift a user\'s lockout in the running pgveil (admin API)',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    const configFile = requireOption(args, 'config');
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length ? 'one user at a time' : 'missing <user>');
    const user = args.positionals[0];
    return withAdmin('unlock', async () => {
      const admin = adminClient(configFile);
      const { status, body } = await admin.request('POST', '/unlock', { user });
      if (status !== 200) { console.error(`pgveil unlock: ${String(body.error ?? `unexpected answer ${status}`)}`); return 1; }
      console.log(body.wasLocked ? `unlocked ${user}` : `${user} was not locked (its failed logins are forgotten)`);
      return 0;
    });
  },
};
