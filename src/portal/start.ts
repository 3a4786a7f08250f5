// Starts the portal when `portal:` is configured, with the pages the other
// sections turn on (today: password reset, when `reset:` is set).
import type { AuditSink } from '../audit/record.js';
import type { Config } from '../config/types.js';
import { listenFailure } from '../session/server.js';
import type { Logger } from '../observe/log.js';
import { resetRoutes } from './reset-pages.js';
import { startPortal, type PortalHandle, type Route } from './server.js';

export interface PortalDeps {
  audit: AuditSink;
  logger: Logger;
  unlock: (user: string) => Promise<unknown>;
  reload: () => Promise<unknown>;
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
  deps.logger.info('portal listening', { host: portal.host, port: handle.port, pages: config.reset ? ['password reset'] : [] });
  return handle;
}
