// The listener: loads the configuration, builds what sessions share, accepts
// clients, and reloads users and policy on change (an invalid file is
// rejected with a logged error and the old one stays).
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadModule } from 'libpg-query';
import { loadAll, loadPolicy, loadUsers } from '../config/load.js';
import { watchFiles } from '../config/watch.js';
import { loosenings } from '../policy/loosening.js';
import type { Config, PolicyFile, UsersFile } from '../config/types.js';
import { LockoutTracker } from '../auth/lockout.js';
import { parseCaBundle } from '../auth/client-certificate.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import { PgError, SqlState } from '../errors.js';
import { writeErrorResponse } from '../protocol/backend-messages.js';
import { createLogger, type Logger } from '../observe/log.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { startAdmin } from '../observe/admin.js';
import { ActivePolicy, CatalogUnavailableError } from './active-policy.js';
import { CancelKeys } from './cancel-keys.js';
import type { ProxyContext } from './context.js';
import type { WorkerLink } from './worker-link.js';
import { ClientSession } from './session.js';

export interface ProxyHandle {
  host: string;
  port: number;
  /** Port of the admin HTTP endpoint, when configured. */
  adminPort?: number;
  readonly metrics: ProxyMetrics;
  /** True once a policy and catalog are loaded (the proxy can serve statements). */
  ready(): boolean;
  /** Re-reads users and policy (what SIGHUP does); false when the new files were rejected. */
  reload(): Promise<boolean>;
  close(): Promise<void>;
}

export interface StartOptions {
  configFile: string;
  logger?: Logger;
  /** Watch users and policy files and reload on change (default true). */
  watch?: boolean;
  /** Set in a worker of `workers: N`: lockout, cancel keys and the fake-verifier secret are shared through it, and the primary runs the admin endpoint. */
  worker?: WorkerLink;
}

function buildTls(config: Config): { secureContext?: tls.SecureContext; serverCertificate?: Buffer; clientCas: X509Certificate[] } {
  if (config.tls.mode === 'disable' || !config.tls.cert || !config.tls.key) return { clientCas: [] };
  const cert = readFileSync(config.tls.cert);
  const secureContext = tls.createSecureContext({
    cert,
    key: readFileSync(config.tls.key),
    ca: config.tls.clientCa ? readFileSync(config.tls.clientCa) : undefined,
    minVersion: config.tls.minVersion,
  });
  const clientCas = config.tls.clientCa ? parseCaBundle(readFileSync(config.tls.clientCa, 'utf8')) : [];
  return { secureContext, serverCertificate: new X509Certificate(cert).raw, clientCas };
}

export async function startProxy(opts: StartOptions): Promise<ProxyHandle> {
  const logger = opts.logger ?? createLogger();
  const worker = opts.worker;
  await loadModule();
  const loaded = loadAll(opts.configFile);
  const config = loaded.config;
  let users: UsersFile = loaded.users;

  let masterKey: Uint8Array | undefined;
  const key = () => (masterKey ??= loadMasterKey(config.secrets));
  const upstreamPassword = resolveSecret(config.upstream.password, key);
  const sessions = new Set<{ user?: string; terminate(reason: string): void }>();
  const metrics = new ProxyMetrics();
  const active = new ActivePolicy(config, upstreamPassword, logger);
  active.onVerifierRefusal = (detail) => logger.error('rewrite verification refused a statement (analyzer gap)', { relation: detail });
  metrics.watchCache(() => active.cache.stats());

  const ctx: ProxyContext = {
    config,
    users: () => users,
    policy: active,
    lockout: worker?.lockout ?? new LockoutTracker(config.auth.lockout),
    addressLockout: worker?.addressLockout ?? new LockoutTracker(config.auth.addressLockout),
    cancelKeys: worker?.cancelKeys ?? new CancelKeys(),
    routeCancel: worker ? (processId, secretKey) => worker.routeCancel(processId, secretKey) : undefined,
    ...buildTls(config),
    upstreamPassword: () => upstreamPassword,
    fakeVerifierSecret: worker?.fakeVerifierSecret ?? randomBytes(32),
    logger,
    metrics,
    sessions,
  };

  /** Loads users + policy + catalog as the next generation; the old one stays on any failure. */
  const apply = async (nextUsers: UsersFile, nextPolicy: PolicyFile): Promise<void> => {
    await active.load(nextUsers, nextPolicy);
    users = nextUsers;
    metrics.policyGeneration.set(active.generation);
    for (const session of [...sessions]) {
      const account = session.user ? users.users.get(session.user) : undefined;
      if (session.user && (!account || account.disabled)) session.terminate('terminating connection because the user was disabled');
    }
  };

  let reloading: Promise<boolean> = Promise.resolve(true);
  const reload = (): Promise<boolean> => {
    // Reloads run one after another, each reading the files as they are then.
    reloading = reloading.then(async () => {
      try {
        const nextUsers = loadUsers(config.users, config);
        const previous = active.current?.compiled;
        await apply(nextUsers, loadPolicy(config.policy, nextUsers));
        const loosened = previous && active.current ? loosenings(previous, active.current.compiled) : [];
        // Applied either way (the file is valid); a loosening must not pass unnoticed.
        if (loosened.length) logger.warn('policy reload loosened the policy', { generation: active.generation, loosened });
        else logger.info('configuration reloaded', { generation: active.generation });
        return true;
      } catch (err) {
        metrics.reloadFailures.inc();
        logger.error('reload rejected; keeping the previous users and policy', { error: err instanceof Error ? err.message : String(err) });
        return false;
      }
    });
    return reloading;
  };

  // The first load: a bad policy stops startup; an unreachable upstream is retried.
  let retry: NodeJS.Timeout | undefined;
  try {
    await apply(users, loaded.policy);
  } catch (err) {
    if (!(err instanceof CatalogUnavailableError)) throw err;
    logger.warn('upstream catalog not readable yet; retrying every 2 s', { error: err.message });
    retry = setInterval(() => {
      void reload().then((ok) => { if (ok) { clearInterval(retry); retry = undefined; } });
    }, 2000);
  }

  const ready = () => active.current !== undefined;
  // Each worker takes an equal share of maxClients, so all of them together never exceed it.
  const maxClients = worker ? Math.max(1, Math.floor(config.limits.maxClients / worker.workerCount)) : config.limits.maxClients;
  // Refused connections still negotiate SSL and get their error as the answer
  // to the StartupMessage (libpq and drivers read it there); past
  // maxClients of them at once (a flood), the error is written at accept.
  let refusing = 0;
  const server = net.createServer((socket) => {
    const blocked = ctx.addressLockout.isLocked(socket.remoteAddress ?? '');
    if (!blocked && sessions.size < maxClients) {
      new ClientSession(socket, ctx);
      return;
    }
    metrics.connectionsRefused.inc({ reason: blocked ? 'address_blocked' : 'too_many_clients' });
    const refusal = blocked
      ? new PgError(SqlState.InvalidAuthorizationSpecification, 'too many failed logins from this address; try again later', { severity: 'FATAL' })
      : new PgError(SqlState.TooManyConnections, 'sorry, too many clients already', { severity: 'FATAL' });
    if (refusing >= maxClients) {
      socket.on('error', () => socket.destroy());
      socket.end(writeErrorResponse(refusal));
      return;
    }
    refusing++;
    socket.once('close', () => { refusing--; });
    new ClientSession(socket, ctx, refusal);
  });
  server.on('error', (err) => logger.error('listener error', { error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address() as net.AddressInfo;
  const watcher = opts.watch === false ? undefined : watchFiles([config.users, config.policy], () => { reload(); });
  const admin = config.admin && !worker
    ? await startAdmin({ ...config.admin, metrics: () => Promise.resolve(metrics.registry), upstream: config.upstream, policyLoaded: ready })
    : undefined;
  logger.info('pgveil listening', { host: address.address, port: address.port, tls: config.tls.mode, adminPort: admin?.port });

  return {
    host: address.address,
    port: address.port,
    adminPort: admin?.port,
    metrics,
    ready,
    reload,
    async close() {
      watcher?.close();
      clearInterval(retry);
      await admin?.close();
      for (const session of [...sessions]) session.terminate('terminating connection due to administrator command');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
