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
import { displayFile } from '../config/errors.js';
import { loosenings, ruleLoosenings } from '../policy/loosening.js';
import type { Config, PolicyFile, UsersFile } from '../config/types.js';
import { LockoutTracker } from '../auth/lockout.js';
import { parseCaBundle } from '../auth/client-certificate.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { UsedCodes } from '../auth/used-codes.js';
import { OidcTokenVerifier } from '../auth/oidc-token.js';
import { resolveSecret } from '../secrets/seal.js';
import { PgError, SqlState } from '../errors.js';
import { writeErrorResponse } from '../protocol/backend-messages.js';
import { createLogger, type Logger } from '../observe/log.js';
import { ProxyMetrics } from '../observe/metrics.js';
import { startAdmin } from '../observe/admin.js';
import { DecisionEngine, CatalogUnavailableError } from '../engine/engine.js';
import { ShadowPolicy } from '../engine/shadow.js';
import { CancelKeys } from './cancel-keys.js';
import { sessionIds } from './session-id.js';
import { noAudit, type AuditSink } from '../audit/record.js';
import { AuditLog } from '../audit/writer.js';
import type { ProxyContext } from './context.js';
import type { WorkerLink } from './worker-link.js';
import { ClientSession, ADMIN_TERMINATION } from './connection.js';
import type { LiveSession } from './session-info.js';
import { drainSessions } from './drain.js';
import { UpstreamPool } from '../upstream/pool.js';
import { adminToken } from '../observe/admin-token.js';
import type { ControlTarget } from '../observe/admin-control.js';
import { startConfiguredPortal } from '../portal/start.js';
import { SsoCredentialStore, ssoStateFile } from '../sso/credential-store.js';

export interface ProxyHandle {
  host: string;
  port: number;
  /** Port of the admin HTTP endpoint, when configured. */
  adminPort?: number;
  /** Port of the portal (HTTPS pages for people), when configured. */
  portalPort?: number;
  readonly metrics: ProxyMetrics;
  /** True once a policy and catalog are loaded (the proxy can serve statements). */
  ready(): boolean;
  /** Re-reads users and policy (what SIGHUP does); false when the new files were rejected. */
  reload(): Promise<boolean>;
  /** What the admin control API acts on in this process (under `workers: N` the primary asks each worker through it). */
  readonly control: ControlTarget;
  /**
   * Graceful shutdown: new connections are refused with 57P03, idle sessions
   * end at once with 57P01, a running statement finishes first; at `timeoutMs`
   * the rest are ended (default: shutdownTimeoutSeconds). Then closes like close().
   */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  configFile: string;
  logger?: Logger;
  /** Watch users and policy files and reload on change (default true). */
  watch?: boolean;
  /** Set in a worker of `workers: N`: lockout, cancel keys and the fake-verifier secret are shared through it, and the primary runs the admin endpoint. */
  worker?: WorkerLink;
  /** The clock of password-reset tokens and SSO passwords (default Date.now; tests move it). */
  now?: () => number;
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
  // The candidate of `shadow:`: a file that does not load stops startup here, as a bad policy does.
  const shadowAtStart = config.shadow ? loadPolicy(config.shadow, users) : undefined;

  let masterKey: Uint8Array | undefined;
  const key = () => (masterKey ??= loadMasterKey(config.secrets));
  const upstreamPassword = resolveSecret(config.upstream.password, key, `${displayFile(config.file)}: upstream.password`);
  const adminTokenValue = adminToken(config, key);
  const sessions = new Set<LiveSession>();
  const metrics = new ProxyMetrics();
  // The audit log: this process writes it, or under `workers: N` the primary does (records go there).
  const auditLog = config.audit && !worker ? await AuditLog.open(config.audit, { metrics, logger }) : undefined;
  const audit: AuditSink = worker?.audit ?? auditLog ?? noAudit;
  const closeAudit = () => auditLog?.close() ?? worker?.audit?.close();
  const active = new DecisionEngine(config, upstreamPassword, logger);
  active.onVerifierRefusal = (detail) => logger.error('rewrite verification refused a statement (analyzer gap)', { relation: detail });
  metrics.watchCache(() => active.cache.stats());
  const shadow = config.shadow
    ? new ShadowPolicy({ config, upstreamPassword, logger, metrics, audit, active })
    : undefined;
  // Passwords issued by the portal (the primary's, under workers: N) after a browser SSO login.
  const ssoCredentials = config.sso
    ? new SsoCredentialStore(ssoStateFile(config.users), { now: opts.now, onError: (error) => logger.error('SSO password state unusable; no SSO password is accepted', { error }) })
    : undefined;

  const ctx: ProxyContext = {
    config,
    users: () => users,
    engine: active,
    shadow,
    lockout: worker?.lockout ?? new LockoutTracker(config.auth.lockout),
    addressLockout: worker?.addressLockout ?? new LockoutTracker(config.auth.addressLockout),
    cancelKeys: worker?.cancelKeys ?? new CancelKeys(),
    usedCodes: worker?.usedCodes ?? new UsedCodes(),
    oidc: config.auth.oidc ? OidcTokenVerifier.create(config.auth.oidc, { ca: config.auth.oidc.ca === undefined ? undefined : readFileSync(config.auth.oidc.ca) }) : undefined,
    ssoCredentials,
    routeCancel: worker ? (processId, secretKey) => worker.routeCancel(processId, secretKey) : undefined,
    ...buildTls(config),
    upstreamPassword: () => upstreamPassword,
    upstreamPool: new UpstreamPool(config.upstream, config.upstream.pool, () => upstreamPassword, metrics, logger),
    fakeVerifierSecret: worker?.fakeVerifierSecret ?? randomBytes(32),
    logger,
    metrics,
    nextSessionId: sessionIds(worker?.workerId ?? 0, worker?.incarnation),
    audit,
    sessions,
  };
  const control: ControlTarget = {
    sessions: async () => [...sessions].map((s) => s.info()),
    async terminate(id) {
      const session = [...sessions].find((s) => s.id === id);
      session?.terminate(ADMIN_TERMINATION, 'terminated');
      return session !== undefined;
    },
    unlock: async (user) => ctx.lockout.unlock(user),
  };

  /** A verifier that changed in users.yaml (pgveil passwd --write, an edit) is a password change. */
  const auditPasswordChanges = (before: UsersFile, after: UsersFile): void => {
    for (const [name, user] of after.users) {
      const old = before.users.get(name);
      if (old && user.password !== undefined && old.password !== user.password) audit.record({ event: 'password_change', user: name, via: 'users_file' });
    }
  };

  /** Loads users + policy + catalog as the next generation; the old one stays on any failure. */
  const apply = async (nextUsers: UsersFile, nextPolicy: PolicyFile): Promise<void> => {
    await active.load(nextUsers, nextPolicy);
    users = nextUsers;
    metrics.policyGeneration.set(active.generation);
    for (const session of [...sessions]) {
      if (session.credentialOrg !== undefined) {
        // A token login is not in users.yaml; it ends only when its organization is gone.
        if (!Object.hasOwn(users.organizations, session.credentialOrg)) session.terminate('terminating connection because the organization was removed', 'user_disabled');
        continue;
      }
      const account = session.user ? users.users.get(session.user) : undefined;
      if (session.user && (!account || account.disabled)) session.terminate(`terminating connection because the user was ${account ? 'disabled' : 'removed'}`, 'user_disabled');
    }
  };

  /**
   * Loads the shadow policy beside the active one just loaded (from `file`,
   * or read now). At startup a bad candidate stops pgveil; later it is
   * logged and the previous candidate stays. False when it was rejected.
   */
  const loadShadow = async (nextUsers: UsersFile, file?: PolicyFile, startup = false): Promise<boolean> => {
    if (!shadow || !config.shadow) return true;
    try {
      await shadow.load(nextUsers, file ?? loadPolicy(config.shadow, nextUsers));
      logger.info('shadow policy loaded', { generation: shadow.generation });
      return true;
    } catch (err) {
      if (startup && !(err instanceof CatalogUnavailableError)) throw err;
      metrics.reloadFailures.inc();
      logger.error('shadow policy rejected; keeping the previous one (it is never enforced)', { error: err instanceof Error ? err.message : String(err) });
      return false;
    }
  };

  // Until the upstream's catalog has been read once, nothing is loaded: the
  // files read so far wait here, and failures to reach the upstream are
  // waiting (logged at warn when the reason changes), not rejected reloads.
  let waiting: { users: UsersFile; policy: PolicyFile } | undefined = { users, policy: loaded.policy };
  let waitReason: string | undefined;
  const upstreamAt = `${config.upstream.host}:${config.upstream.port}`;
  /** One attempt at the first load; at startup (`startup`) a policy error is thrown, later it is logged. */
  const firstLoad = async (startup = false): Promise<boolean> => {
    const next = waiting!;
    try {
      await apply(next.users, next.policy);
    } catch (err) {
      if (startup && !(err instanceof CatalogUnavailableError)) throw err;
      const reason = err instanceof CatalogUnavailableError ? active.catalogError ?? err.message : err instanceof Error ? err.message : String(err);
      if (reason !== waitReason) {
        waitReason = reason;
        if (err instanceof CatalogUnavailableError) logger.warn(`waiting for the upstream at ${upstreamAt} to read its catalog: ${reason}`, { retrySeconds: 2 });
        else logger.error('the users and policy do not fit the upstream catalog; fix the files (they are reloaded on change)', { error: reason });
      }
      return false;
    }
    waiting = undefined;
    clearInterval(retry);
    // At startup, the file checked above; a first load that had to wait for upstream reads it again.
    await loadShadow(next.users, startup ? shadowAtStart : undefined, startup);
    logger.info('upstream catalog read; ready', { upstream: upstreamAt, generation: active.generation });
    audit.record({ event: 'policy_reload', generation: active.generation, outcome: 'applied' });
    return true;
  };

  let reloading: Promise<boolean> = Promise.resolve(true);
  const reload = (): Promise<boolean> => {
    // Reloads run one after another, each reading the files as they are then.
    reloading = reloading.then(async () => {
      try {
        const nextUsers = loadUsers(config.users, config);
        const nextPolicy = loadPolicy(config.policy, nextUsers);
        if (waiting) {
          waiting = { users: nextUsers, policy: nextPolicy };
          return await firstLoad();
        }
        const previous = active.current;
        const previousUsers = users;
        await apply(nextUsers, nextPolicy);
        auditPasswordChanges(previousUsers, nextUsers);
        const current = active.current;
        const loosened = previous && current
          ? [...loosenings(previous.compiled, current.compiled), ...ruleLoosenings(previous.rules, current.rules)] : [];
        // Applied either way (the file is valid); a loosening must not pass unnoticed.
        if (loosened.length) logger.warn('policy reload loosened the policy', { generation: active.generation, loosened });
        else logger.info('configuration reloaded', { generation: active.generation });
        audit.record({ event: 'policy_reload', generation: active.generation, outcome: 'applied', loosened: loosened.length ? loosened : undefined });
        await loadShadow(nextUsers); // reloaded with the active one: it is compared against what is enforced now
        return true;
      } catch (err) {
        metrics.reloadFailures.inc();
        const error = err instanceof Error ? err.message : String(err);
        logger.error('reload rejected; keeping the previous users and policy', { error });
        audit.record({ event: 'policy_reload', generation: active.generation, outcome: 'rejected', error });
        return false;
      }
    });
    return reloading;
  };

  // The first load: a bad policy stops startup; an unreachable upstream is retried every 2 s.
  let retry: NodeJS.Timeout | undefined;
  const firstLoaded = await firstLoad(true).catch(async (err: unknown) => { await closeAudit(); throw err; });
  if (!firstLoaded) {
    retry = setInterval(() => { reloading = reloading.then(() => (waiting ? firstLoad() : true)); }, 2000);
  }

  const ready = () => active.current !== undefined;
  // Each worker takes an equal share of maxClients, so all of them together never exceed it.
  const maxClients = worker ? Math.max(1, Math.floor(config.limits.maxClients / worker.workerCount)) : config.limits.maxClients;
  // Refused connections still negotiate SSL and get their error as the answer
  // to the StartupMessage (libpq and drivers read it there); past
  // maxClients of them at once (a flood), the error is written at accept.
  let refusing = 0;
  let draining = false;
  const server = net.createServer((socket) => {
    const address = socket.remoteAddress ?? '';
    const blocked = ctx.addressLockout.isLocked(address);
    if (!draining && !blocked && sessions.size < maxClients) {
      new ClientSession(socket, ctx);
      return;
    }
    const reason = draining ? 'draining' : blocked ? 'address_blocked' : 'too_many_clients';
    metrics.connectionsRefused.inc({ reason });
    const refusal = draining
      ? new PgError(SqlState.CannotConnectNow, 'the database system is shutting down', { severity: 'FATAL' })
      : blocked
        ? new PgError(SqlState.InvalidAuthorizationSpecification, 'too many failed logins from this address; try again later', { severity: 'FATAL' })
        : new PgError(SqlState.TooManyConnections, 'sorry, too many clients already', { severity: 'FATAL' });
    if (refusing >= maxClients) {
      socket.on('error', () => socket.destroy());
      socket.end(writeErrorResponse(refusal));
      return;
    }
    // Past the flood limit a refusal is only counted: logging each would let a flood fill the log.
    ctx.audit.record({ event: 'refused_connection', address, reason });
    logger.warn('connection refused', { reason, address });
    refusing++;
    socket.once('close', () => { refusing--; });
    new ClientSession(socket, ctx, refusal);
  });
  let admin: Awaited<ReturnType<typeof startAdmin>> | undefined;
  let portal: Awaited<ReturnType<typeof startConfiguredPortal>> | undefined;
  try {
    await listen(server, 'listen', config.listen);
    admin = config.admin && !worker
      ? await startAdmin({
        ...config.admin, metrics: () => Promise.resolve(metrics.registry), upstream: config.upstream, policyLoaded: ready,
        auditBlocked: () => audit.blocked(), draining: () => draining,
        control: adminTokenValue === undefined ? undefined : { ...control, token: adminTokenValue, audit, logger, actions: metrics.adminActions },
      })
        .catch((err: NodeJS.ErrnoException) => { throw err.code ? new Error(listenFailure(err, 'admin', config.admin!)) : err; })
      : undefined;
    // Under workers: N the primary serves the portal.
    portal = worker ? undefined : await startConfiguredPortal(config, {
      audit, logger, unlock: control.unlock, reload, now: opts.now, databasePort: (server.address() as net.AddressInfo).port,
    });
  } catch (err) {
    // Nothing may keep the process alive after a failed start (the retry timer would).
    clearInterval(retry);
    server.close();
    await admin?.close();
    await closeAudit();
    throw err;
  }
  server.on('error', (err) => logger.error('listener error', { error: err.message }));
  const address = server.address() as net.AddressInfo;
  const watcher = opts.watch === false ? undefined : watchFiles([config.users, config.policy], () => { reload(); });
  if (opts.watch !== false) ssoCredentials?.watch();
  // An edit of the candidate alone reloads only it: the active policy (and so the sessions' prepared statements) stay.
  const reloadShadow = () => { reloading = reloading.then(() => (waiting ? false : loadShadow(users))); };
  const shadowWatcher = opts.watch === false || !config.shadow ? undefined : watchFiles([config.shadow], reloadShadow);
  logger.info('pgveil listening', { host: address.address, port: address.port, tls: config.tls.mode, adminPort: admin?.port, portalPort: portal?.port });

  const close = async (): Promise<void> => {
    watcher?.close();
    ssoCredentials?.close();
    shadowWatcher?.close();
    shadow?.close();
    clearInterval(retry);
    await admin?.close();
    await portal?.close();
    for (const session of [...sessions]) session.terminate(ADMIN_TERMINATION, 'shutdown');
    ctx.upstreamPool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await closeAudit(); // after the sessions, whose last records it writes
  };
  return {
    host: address.address,
    port: address.port,
    adminPort: admin?.port,
    portalPort: portal?.port,
    metrics,
    ready,
    reload,
    control,
    async drain(timeoutMs = config.shutdownTimeoutSeconds * 1000) {
      draining = true;
      await drainSessions(sessions, timeoutMs, logger);
      await close();
    },
    close,
  };
}

/** Listens, turning the usual failures into one line that says what to do. */
function listen(server: net.Server, key: string, at: { host: string; port: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(new Error(listenFailure(err, key, at)));
    server.once('error', fail);
    server.listen(at.port, at.host, () => { server.off('error', fail); resolve(); });
  });
}

/** `cannot listen on 127.0.0.1:6432 (listen): the port is already in use …`, for the listener and the admin endpoint. */
export function listenFailure(err: NodeJS.ErrnoException, key: string, at: { host: string; port: number }): string {
  const where = `cannot listen on ${at.host}:${at.port} (${key})`;
  switch (err.code) {
    case 'EADDRINUSE': return `${where}: the port is already in use (another pgveil or server is listening there; stop it or change ${key}.port)`;
    case 'EACCES': return `${where}: permission denied (ports below 1024 need privileges; choose another ${key}.port)`;
    case 'EADDRNOTAVAIL': return `${where}: no such address on this machine (check ${key}.host)`;
    default: return `${where}: ${err.message}`;
  }
}
