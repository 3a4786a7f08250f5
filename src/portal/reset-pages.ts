// The portal's password-reset pages, under the path of `reset.linkBase`:
//   GET  <base>          the "forgot password" form (a user name)
//   POST <base>          answers the same page whatever happens; the request runs afterwards
//   GET  <base>/<token>  the new-password form (410 for an unknown, used or expired token)
//   POST <base>/<token>  fields `password` and `confirm`: 200 done, 400 naming the broken rule, 410 bad token
import type { AuditSink } from '../audit/record.js';
import { loadUsers } from '../config/load.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import { completeReset } from '../reset/complete.js';
import { requestReset } from '../reset/request.js';
import { ResetTokenStore, resetStateFile } from '../reset/token-store.js';
import { escapeHtml, page } from './html.js';
import type { PortalResponse, Route } from './server.js';

/** Forgot-form submissions per client address and window; more are answered alike and dropped. */
const REQUESTS_PER_WINDOW = 5;
const WINDOW_MS = 15 * 60_000;

export interface ResetPagesOptions {
  config: Config;
  audit: AuditSink;
  logger: Logger;
  unlock: (user: string) => Promise<unknown>;
  reload: () => Promise<boolean>;
  now?: () => number;
}

export function resetRoutes(opts: ResetPagesOptions): Route[] {
  const { config, audit, logger } = opts;
  const now = opts.now ?? Date.now;
  const base = new URL(config.reset!.linkBase).pathname.replace(/\/+$/, '');
  const basePattern = new RegExp(`^${escapeRegExp(base)}/?$`);
  const tokenPattern = new RegExp(`^${escapeRegExp(base)}/([A-Za-z0-9_-]{1,100})$`);
  const store = new ResetTokenStore(resetStateFile(config.users), now);
  const recent = new Map<string, number[]>();

  /** True while this address is within its share of forgot-form submissions. */
  const allowed = (address: string): boolean => {
    const t = now();
    for (const [key, times] of recent) if (times.every((at) => t - at > WINDOW_MS)) recent.delete(key);
    const times = (recent.get(address) ?? []).filter((at) => t - at <= WINDOW_MS);
    times.push(t);
    recent.set(address, times);
    return times.length <= REQUESTS_PER_WINDOW;
  };

  const sentPage: PortalResponse = {
    status: 200,
    html: page('Check your mail', '<p>If that account has a registered e-mail address, a link to choose a new password is on its way. It works once and only for a short time.</p>'),
  };

  return [
    { method: 'GET', pattern: basePattern, handle: () => ({ status: 200, html: forgotForm(base) }) },
    {
      method: 'POST',
      pattern: basePattern,
      handle(req) {
        const name = (req.form.get('user') ?? '').trim();
        if (name === '' || name.length > 256) return { status: 400, html: forgotForm(base, 'Enter your database user name.') };
        if (!allowed(req.address)) {
          audit.record({ event: 'password_reset', user: name, step: 'rate_limited' });
          return sentPage;
        }
        // Answered before anything is looked up or sent: neither the text nor the time tells whether the user exists.
        setImmediate(() => {
          void (async () => {
            const account = loadUsers(config.users, config).users.get(name);
            const { outcome, error } = await requestReset({ config, account, name, audit, now });
            if (outcome === 'mail_failed') logger.error('password-reset mail could not be sent', { user: name, error });
          })().catch((err: unknown) => logger.error('password-reset request failed', { error: err instanceof Error ? err.message : String(err) }));
        });
        return sentPage;
      },
    },
    {
      method: 'GET',
      pattern: tokenPattern,
      handle(req) {
        return store.userOf(req.params[0]) ? { status: 200, html: newPasswordForm() } : goneResponse();
      },
    },
    {
      method: 'POST',
      pattern: tokenPattern,
      async handle(req) {
        const result = await completeReset({ ...opts, now }, req.params[0], req.form.get('password') ?? '', req.form.get('confirm') ?? '');
        if (result.status === 'bad_token') return goneResponse();
        if (result.status === 'rejected') return { status: 400, html: newPasswordForm(result.problems) };
        if (result.status === 'not_loaded') {
          logger.error('a reset password was written to the users file, but the reload was rejected: fix the files (the old password works until then)', { user: result.user });
          return {
            status: 503,
            html: page('Password saved, not active yet', '<p>Your new password is saved, but pgveil could not load it: its configuration needs an administrator. Until then your old password still works. Try the new one later, or contact your administrator.</p>'),
          };
        }
        return { status: 200, html: page('Password changed', '<p>Your new password works now. Use it the next time you connect to the database.</p>') };
      },
    },
  ];
}

function forgotForm(base: string, problem?: string): string {
  return page('Forgot your database password?', `${problem ? `<p class="problem">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="${escapeHtml(base)}">
<label for="user">Database user name</label><input id="user" name="user" autocomplete="username" required>
<button type="submit">Send me a reset link</button>
</form>`);
}

/** Posts back to the page's own URL (the token stays in the path only). */
function newPasswordForm(problems: string[] = []): string {
  const list = problems.length ? `<ul class="problem">${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>` : '';
  return page('Choose a new password', `${list}
<form method="post">
<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" required>
<label for="confirm">New password again</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required>
<button type="submit">Set password</button>
</form>`);
}

function goneResponse(): PortalResponse {
  return { status: 410, html: page('This link no longer works', '<p>The link was already used, has expired, or is not a reset link. Ask for a new one on the reset page.</p>') };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
