// `pgveil reset-request --config FILE <user>`: mails the user a single-use,
// time-limited link to the portal's page for choosing a new password.
import type { AuditEvent, AuditSink } from '../audit/record.js';
import { parseArgs, requireOption, UsageError } from './args.js';
import type { Command } from './main.js';

const usage = `usage: pgveil reset-request --config <file> <user>

  --config <file>  the pgveil.yaml with smtp: and reset: (and the users.yaml it names)
  <user>           the user to send the link to: its users.yaml email, or its
                   name when that is an address

The token is kept (hashed) in <users.yaml>.reset.json; a newer request for
the same user makes older links stop working.
Exit codes: 0 mail sent, 1 not sent (no such user, disabled, no address,
or the mail server failed: the reason on stderr), 2 usage or configuration error.`;

const explain: Record<string, string> = {
  unknown_user: 'no such user in users.yaml',
  user_disabled: 'the user is disabled',
  no_email: 'the user has no email in users.yaml and its name is not an address; nothing was sent',
};

export const command: Command = {
  summary: 'e-mail a user a single-use password-reset link',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value' });
    const configFile = requireOption(args, 'config');
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length ? 'one user at a time' : 'missing <user>');
    const name = args.positionals[0];
    const { loadConfig, loadUsers } = await import('../config/load.js');
    const config = loadConfig(configFile);
    if (!config.reset || !config.smtp) {
      console.error('pgveil reset-request: the config has no reset: section (and smtp:); password reset is off');
      return 2;
    }
    const account = loadUsers(config.users, config).users.get(name);
    const { requestReset, resetAddress } = await import('../reset/request.js');
    // The running pgveil alone writes the audit log: the steps wait in the state file until it records them.
    const steps: AuditEvent[] = [];
    const audit: AuditSink = { record: (e) => steps.push(e), statements: 'none', blocked: () => false };
    const { outcome, error } = await requestReset({ config, account, name, audit });
    const { ResetTokenStore, resetStateFile } = await import('../reset/token-store.js');
    await new ResetTokenStore(resetStateFile(config.users)).queueSteps(
      steps.flatMap((e) => (e.event === 'password_reset' ? [{ user: e.user, step: e.step }] : [])));
    if (outcome === 'mail_sent') {
      console.log(`reset link for ${name} sent to ${resetAddress(account!)} (valid ${config.reset.ttlMinutes} minutes)`);
      return 0;
    }
    if (outcome === 'mail_failed') {
      console.error(`pgveil reset-request: the mail could not be sent through ${config.smtp.host}:${config.smtp.port}: ${error}; no link is valid`);
      return 1;
    }
    console.error(`pgveil reset-request: ${explain[outcome]}`);
    return 1;
  },
};
