// Starts the portal when `portal:` is configured, with the pages the other
// sections turn on (today: password reset, when `reset:` is set).
import type { AuditSink } from '../audit/record.js';
import type { Config } from '../config/types.js';
import { listenFailure } from '../session/server.js';
import type { Logger } from '../observe/log.js';
import { resetRoutes } from './reset-pages.js';
import { startPortal, type PortalHandle, type Route } from './server.js';
import { watchFiles } from '../config/watch.js';
import { ResetTokenStore, resetStateFile } from '../reset/token-store.js';

export interface PortalDeps {
  audit: AuditSink;
  logger: Logger;
  unlock: (user: string) => Promise<unknown>;
  /** Makes the running pgveil read users.yaml now; false when the files were rejected (the old ones stay). */
  reload: () => Promise<boolean>;
  /** The clock of reset tokens (tests move it). */
  now?: () => number;
}

export async function startConfiguredPortal(config: Config, deps: PortalDeps): Promise<PortalHandle | undefined> {
  if (!config.portal) return undefined;
  const routes: Route[] = [];
  if (config.reset) routes.push(...resetRoutes({ config, ...deps }));
  const portal = config.portal;
  const handle = await startPortal(portal, routes, deps.logger)
    .catch((err: NodeJS.ErrnoException) => { throw err.code ? new Error(listenFailure(err, 'portal', portal)) : err; });
  const stopSteps = config.reset ? recordQueuedSteps(config, deps) : () => {};
  deps.logger.info('portal listening', { host: portal.host, port: handle.port, pages: config.reset ? ['password reset'] : [] });
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
