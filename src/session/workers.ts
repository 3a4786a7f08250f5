// The primary of `workers: N` (docs/configuration.md; README, Workers): forks N processes that
// share the listening port through node:cluster and keeps what must be one
// across them. It counts authentication failures per user (threat D1 in docs/threat-model.md) and
// per client address (E3) and tells every worker when one is locked; it routes a CancelRequest that landed
// on the wrong worker to the one named in the key's top bits (one hop: the
// owner only looks the key up); it runs the admin endpoint, whose /metrics
// sums every worker's registry at scrape time and whose control API asks every
// worker for its sessions, routes an end-session to the worker named in the
// session id, and lifts a lockout here and in every worker. It alone writes
// the audit log: workers send their records in batches, lockouts are recorded
// here, and every worker is told when the log becomes blocked or writable
// again. A worker that dies is started again; SIGHUP is passed on;
// SIGTERM/SIGINT drain all workers (the audit log is closed after the last).
// It also holds the TOTP time steps already used, so a code is accepted once
// whichever worker a client reaches.
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import client from 'prom-client';
import { LockoutTracker } from '../auth/lockout.js';
import { UsedCodes } from '../auth/used-codes.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import { startAdmin } from '../observe/admin.js';
import { adminActionsCounter, auditMetrics, lockoutsCounter } from '../observe/metrics.js';
import { adminToken } from '../observe/admin-token.js';
import { startConfiguredPortal } from '../portal/start.js';
import type { ControlTarget } from '../observe/admin-control.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { noAudit } from '../audit/record.js';
import { AuditLog } from '../audit/writer.js';
import { MAX_WORKERS, workerOfProcessId } from './cancel-keys.js';
import type { SessionInfo } from './session-info.js';
import { workerOfSession } from './session-id.js';
import type { LockoutScope, PrimaryMessage, WorkerMessage } from './worker-link.js';

/** Processes to run for a `workers` setting ("auto" = one per core). */
export function workerCount(setting: Config['workers']): number {
  return Math.min(MAX_WORKERS, setting === 'auto' ? os.availableParallelism() : setting);
}

const ASK_TIMEOUT_MS = 2000;
const RESTART_DELAY_MS = 1000;
/** How long past shutdownTimeoutSeconds a draining worker gets before it is killed. */
const STOP_GRACE_MS = 10_000;

export interface Primary {
  /** Resolves when every worker has exited after a stop. */
  readonly stopped: Promise<void>;
  stop(): void;
  reload(): void;
}

/** Forks the workers (each loads the config itself) and resolves once all of them listen. */
export async function startWorkers(config: Config, logger: Logger): Promise<Primary> {
  const count = workerCount(config.workers);
  const usedCodes = new UsedCodes();
  const trackers: Record<LockoutScope, LockoutTracker> = {
    user: new LockoutTracker(config.auth.lockout),
    address: new LockoutTracker(config.auth.addressLockout),
  };
  const fakeVerifierSecret = randomBytes(32).toString('hex');
  const own = new client.Registry();
  const lockouts = lockoutsCounter(own);
  const adminActions = adminActionsCounter(own);
  const token = adminToken(config, () => loadMasterKey(config.secrets));
  const audit = config.audit ? await AuditLog.open(config.audit, { logger, metrics: auditMetrics(own) }) : undefined;
  const workers = new Map<number, Worker>();
  const asks = new Map<number, (value: unknown) => void>();
  let nextAsk = 1;
  let stopping = false;

  const broadcast = (m: PrimaryMessage) => { for (const w of workers.values()) if (w.isConnected()) w.send(m); };
  audit?.onBlockedChange((blocked) => broadcast({ type: 'audit-blocked', blocked }));

  const onMessage = (m: WorkerMessage) => {
    switch (m.type) {
      case 'auth-failure': {
        const tracker = trackers[m.scope];
        if (!tracker.recordFailure(m.key)) return;
        if (m.scope === 'user') lockouts.inc();
        else logger.warn('client address blocked after too many failed logins', { address: m.key });
        const until = tracker.lockedUntil(m.key) ?? Date.now();
        audit?.record({ event: 'lockout', scope: m.scope, key: m.key, until: new Date(until).toISOString() });
        broadcast({ type: 'locked', scope: m.scope, key: m.key, until });
        return;
      }
      case 'audit':
        for (const record of m.records) audit?.record(record);
        return;
      case 'auth-success':
        trackers[m.scope].recordSuccess(m.key);
        return;
      case 'cancel': {
        const owner = workers.get(workerOfProcessId(m.processId));
        if (owner?.isConnected()) owner.send({ type: 'cancel', processId: m.processId, secretKey: m.secretKey } satisfies PrimaryMessage);
        return;
      }
      case 'answer':
        asks.get(m.id)?.(m.value);
        asks.delete(m.id);
    }
  };

  type Question = { what: 'metrics' | 'ready' | 'sessions' | 'reload' } | { what: 'terminate'; session: string };
  /** Asks one worker; no answer in time counts as undefined. */
  const ask = (w: Worker, question: Question): Promise<unknown> => new Promise<unknown>((resolve) => {
    const id = nextAsk++;
    const timer = setTimeout(() => { asks.delete(id); resolve(undefined); }, ASK_TIMEOUT_MS);
    asks.set(id, (value) => { clearTimeout(timer); resolve(value); });
    if (w.isConnected()) w.send({ type: 'ask', id, ...question } satisfies PrimaryMessage);
  });
  const askAll = (what: 'metrics' | 'ready' | 'sessions' | 'reload'): Promise<unknown[]> => Promise.all([...workers.values()].map((w) => ask(w, { what })));

  const control: ControlTarget = {
    sessions: async () => (await askAll('sessions')).filter((s): s is SessionInfo[] => Array.isArray(s)).flat(),
    async terminate(id) {
      const owner = workers.get(workerOfSession(id) ?? -1);
      return owner !== undefined && (await ask(owner, { what: 'terminate', session: id })) === true;
    },
    async unlock(user) {
      const wasLocked = trackers.user.unlock(user);
      broadcast({ type: 'unlock', scope: 'user', key: user });
      return wasLocked;
    },
  };

  const starts = new Map<number, number>();
  const fork = (id: number): Promise<void> => new Promise((resolve, reject) => {
    const worker = cluster.fork();
    const incarnation = (starts.get(id) ?? 0) + 1;
    starts.set(id, incarnation);
    workers.set(id, worker);
    let listening = false;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'hello') {
        worker.send({
          type: 'init', workerId: id, workerCount: count, fakeVerifierSecret, incarnation,
          lockout: config.auth.lockout, addressLockout: config.auth.addressLockout,
          locks: { user: trackers.user.snapshot().locks, address: trackers.address.snapshot().locks },
          audit: audit ? { statements: audit.statements, blocked: audit.blocked() } : undefined,
        } satisfies PrimaryMessage);
      } else if (m.type === 'claim-code') {
        // Decided here, one claim at a time, so a code is accepted once across all workers.
        if (worker.isConnected()) worker.send({ type: 'code-claimed', id: m.id, ok: usedCodes.claimNow(m.user, m.step) } satisfies PrimaryMessage);
      } else if (m.type === 'listening' && !listening) {
        listening = true;
        resolve();
      } else onMessage(m);
    });
    worker.on('exit', (code, signal) => {
      if (workers.get(id) === worker) workers.delete(id);
      if (!listening) reject(new Error(`worker ${id} exited before it was listening (code ${code ?? signal})`));
      if (stopping) { if (workers.size === 0) allExited(); return; }
      if (!listening) return;
      logger.warn('worker exited; starting a new one', { worker: id, code, signal });
      setTimeout(() => { if (!stopping) fork(id).catch((err: Error) => logger.error('worker restart failed', { worker: id, error: err.message })); }, RESTART_DELAY_MS).unref();
    });
  });

  let allExited: () => void = () => {};
  // The workers' last records (their sessions' ends) arrive before they exit; then the log is closed.
  const stopped = new Promise<void>((resolve) => { allExited = resolve; }).then(() => audit?.close());
  let admin: Awaited<ReturnType<typeof startAdmin>> | undefined;
  let portal: Awaited<ReturnType<typeof startConfiguredPortal>> | undefined;

  // Each worker drains its own sessions on SIGTERM; the admin endpoint stays up
  // meanwhile (/readyz says 503) and closes once every worker has exited.
  void stopped.then(() => admin?.close());
  void stopped.then(() => portal?.close());
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (workers.size === 0) { allExited(); return; }
    for (const w of workers.values()) w.process.kill('SIGTERM');
    setTimeout(() => { for (const w of workers.values()) w.process.kill('SIGKILL'); }, config.shutdownTimeoutSeconds * 1000 + STOP_GRACE_MS).unref();
  };

  try {
    await Promise.all(Array.from({ length: count }, (_, i) => fork(i + 1)));
  } catch (err) {
    stop();
    await stopped;
    throw err;
  }

  if (config.admin) {
    admin = await startAdmin({
      ...config.admin,
      upstream: config.upstream,
      metrics: async () => {
        const perWorker = (await askAll('metrics')).filter((m): m is client.MetricObjectWithValues<client.MetricValue<string>>[] => Array.isArray(m));
        return client.AggregatorRegistry.aggregate([await own.getMetricsAsJSON(), ...perWorker]);
      },
      policyLoaded: async () => (await askAll('ready')).every((r) => r === true) && workers.size === count,
      auditBlocked: () => audit?.blocked() ?? false,
      draining: () => stopping,
      control: token === undefined ? undefined : { ...control, token, audit: audit ?? noAudit, logger, actions: adminActions },
    });
  }
  const reload = () => { for (const w of workers.values()) w.process.kill('SIGHUP'); };
  try {
    // A reset's new password must work on every worker before the person is told so (a login that hit a
    // worker still on the old users.yaml would fail and count toward a lockout): each worker is asked to
    // reload and answers when done (one that does not answer in time still has its file watcher).
    portal = await startConfiguredPortal(config, { audit: audit ?? noAudit, logger, unlock: control.unlock, reload: async () => (await askAll('reload')).every((applied) => applied === true) });
  } catch (err) {
    stop();
    await stopped;
    throw err;
  }
  logger.info('pgveil workers listening', { workers: count, port: config.listen.port, adminPort: admin?.port });
  return {
    stopped,
    stop,
    reload,
  };
}
