// Starts the portal when `portal:` is configured: the sign-in page at `/`,
// and the pages the other sections turn on (password reset with `reset:`,
// browser SSO with `sso:`).
import type { AuditSink } from '../audit/record.js';
import type { Config } from '../config/types.js';
import { listenFailure } from '../session/server.js';
import type { Logger } from '../observe/log.js';
import { resetRoutes } from './reset-pages.js';
import { startPortal, type PortalHandle, type Route } from './server.js';
import { watchFiles } from '../config/watch.js';
import { ResetTokenStore, resetStateFile } from '../reset/token-store.js';
import { ssoIdentityHandler } from '../sso/issue.js';
import { signInPage } from '../sso/pages.js';
import { oidcLoginRoutes } from '../sso/oidc-login.js';
import { samlLoginRoutes } from '../sso/saml-login.js';

export interface PortalDeps {
  audit: AuditSink;
  logger: Logger;
  unlock: (user: string) => Promise<unknown>;
  /** Makes the running pgveil read users.yaml now; false when the files were rejected (the old ones stay). */
  reload: () => Promise<boolean>;
  /** The clock of reset tokens and SSO passwords (tests move it). */
  now?: () => number;
  /** The port database clients connect to, for the SSO result page (default listen.port). */
  databasePort?: number;
}

/**
 * The handler the SSO sign-in pages (OIDC, SAML) hand a proven identity to
 * (`ssoIdentityHandler(config, deps)`): it maps it to an account, issues the
 * database password and answers the page.
 */
export { ssoIdentityHandler };

export async function startConfiguredPortal(config: Config, deps: PortalDeps): Promise<PortalHandle | undefined> {
  if (!config.portal) return undefined;
  const routes: Route[] = [{ method: 'GET', pattern: /^\/$/, handle: () => ({ status: 200, html: signInPage(config) }) }];
  if (config.reset) routes.push(...resetRoutes({ config, ...deps }));
  if (config.sso) {
    // One handler for every sign-in method: the OIDC and SAML routes are pushed here, each given it.
    const onIdentity = ssoIdentityHandler(config, deps);
    if (config.sso.oidc) routes.push(...oidcLoginRoutes(config, { onIdentity, audit: deps.audit, logger: deps.logger, now: deps.now }));
    if (config.sso.saml) routes.push(...samlLoginRoutes(config, { onIdentity, audit: deps.audit, logger: deps.logger, now: deps.now }));
  }
  const portal = config.portal;
  const handle = await startPortal(portal, routes, deps.logger)
    .catch((err: NodeJS.ErrnoException) => { throw err.code ? new Error(listenFailure(err, 'portal', portal)) : err; });
  const stopSteps = config.reset ? recordQueuedSteps(config, deps) : () => {};
  const pages = ['sign-in', ...(config.reset ? ['password reset'] : []), ...(config.sso?.oidc ? ['OIDC sign-in'] : []), ...(config.sso?.saml ? ['SAML login'] : [])];
  deps.logger.info('portal listening', { host: portal.host, port: handle.port, pages });
  return { port: handle.port, close: async () => { stopSteps(); await handle.close(); } };
}

/**
 * Records the audit steps `pgveil reset-request` queued in the state file: now
 * (those of requests made while pgveil was down) and whenever the file changes.
 */
function recordQueuedSteps(config: Config, deps: PortalDeps): () => void {
  const store = new ResetTokenStore(resetStateFile(config.users));
  let running = Promise.resolve();
  const take = () => {
    running = running.then(async () => {
      for (const s of await store.takeSteps()) deps.audit.record({ event: 'password_reset', user: s.user, step: s.step, via: 'cli' });
    }).catch((err: unknown) => deps.logger.error('could not read the reset state file', { error: err instanceof Error ? err.message : String(err) }));
  };
  take();
  const watcher = watchFiles([store.file], take);
  return () => watcher.close();
}
