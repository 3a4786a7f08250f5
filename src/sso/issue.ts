// The handler every SSO sign-in page calls with the identity it proved: maps
// it to a database account (account.ts), issues a password that lives
// `portal.credentialMinutes` (credential-store.ts), records an `sso_login`
// audit record either way, and answers the page (pages.ts). A refusal says
// only that the account has no database access; the audit record says why.
import type { AuditSink } from '../audit/record.js';
import { loadUsers } from '../config/load.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import { mapIdentity } from './account.js';
import { SsoCredentialStore, ssoStateFile } from './credential-store.js';
import type { IdentityHandler } from './identity.js';
import { credentialPage, noAccessPage, unavailablePage, type DatabaseAddress } from './pages.js';

export interface IssueDeps {
  audit: AuditSink;
  logger: Logger;
  /** The clock of issued passwords (tests move it). */
  now?: () => number;
  /** The port clients connect to (default listen.port; the real one when that is 0). */
  databasePort?: number;
}

export function ssoIdentityHandler(config: Config, deps: IssueDeps): IdentityHandler {
  const { audit, logger } = deps;
  const lifetimeMinutes = config.portal?.credentialMinutes ?? 480;
  const store = new SsoCredentialStore(ssoStateFile(config.users), {
    now: deps.now,
    onError: (error) => logger.error('SSO password state unusable; it is replaced by the next sign-in', { error }),
  });
  const db: DatabaseAddress = {
    host: new URL(config.portal?.publicUrl ?? 'https://localhost').hostname,
    port: deps.databasePort ?? config.listen.port,
    database: config.upstream.database,
  };

  return async (identity) => {
    const { user, via } = identity;
    try {
      // Read now, not cached: a user disabled a moment ago gets nothing.
      const mapping = mapIdentity(identity, loadUsers(config.users, config));
      if (!mapping.ok) {
        audit.record({ event: 'sso_login', user, org: identity.org, via, outcome: 'refused', reason: mapping.reason });
        logger.warn('SSO sign-in refused', { user, via, reason: mapping.reason });
        return { status: 403, html: noAccessPage() };
      }
      const { account, listed } = mapping;
      const { password, expiresAt } = await store.issue({ user, listed, org: account.org, groups: account.groups, via }, lifetimeMinutes);
      audit.record({ event: 'sso_login', user, org: account.org, via, outcome: 'issued' });
      logger.info('SSO sign-in issued a database password', { user, via, listed, expiresAt: new Date(expiresAt).toISOString() });
      return { status: 200, html: credentialPage(user, password, expiresAt, db) };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      audit.record({ event: 'sso_login', user, org: identity.org, via, outcome: 'error', reason: 'internal' });
      logger.error('SSO sign-in could not issue a password', { user, via, error });
      return { status: 503, html: unavailablePage() };
    }
  };
}
