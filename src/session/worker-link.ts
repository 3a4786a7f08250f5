// A worker's side of `workers: N` (docs/configuration.md): the channel to the primary
// that forked it. What must hold across processes goes through here —
// authentication failures (the primary counts them, threat D1 in docs/threat-model.md), the secret
// behind fake verifiers (the same in every worker, so an unknown user looks
// the same whichever worker answers, D2), failed logins per client address
// (E3), TOTP codes already used (the primary keeps the one table, so a code
// is accepted once whichever worker sees it), CancelRequests that landed on a worker which does not own the
// session, audit records (the primary alone writes the audit file), and the
// admin API's questions and actions (list sessions, end one, unlock a user),
// which the primary serves.
import { LockoutTracker, type LockoutSnapshot } from '../auth/lockout.js';
import type { LockoutConfig } from '../config/types.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { CancelKeys } from './cancel-keys.js';
import type { ControlTarget } from '../observe/admin-control.js';
import type { AuditEvent, AuditSink } from '../audit/record.js';
import { ForwardedAudit } from './worker-audit.js';
import type { CodeClaims } from '../auth/used-codes.js';

/** What a failure is counted against: a user name (D1) or a client address (E3). */
export type LockoutScope = 'user' | 'address';

/** Primary → worker. */
export type PrimaryMessage =
  | {
    type: 'init'; workerId: number; workerCount: number; fakeVerifierSecret: string;
    /** Starts of this worker id so far, this one included (session ids stay unique across restarts). */
    incarnation: number;
    lockout: LockoutConfig; addressLockout: LockoutConfig; locks: Record<LockoutScope, LockoutSnapshot['locks']>;
    /** With an `audit:` section: what statement records carry, and whether the log is blocked now. */
    audit?: { statements: AuditSink['statements']; blocked: boolean };
  }
  | { type: 'audit-blocked'; blocked: boolean }
  | { type: 'locked'; scope: LockoutScope; key: string; until: number }
  | { type: 'cancel'; processId: number; secretKey: string }
  | { type: 'code-claimed'; id: number; ok: boolean }
  | { type: 'unlock'; scope: LockoutScope; key: string }
  | { type: 'ask'; id: number; what: 'metrics' | 'ready' | 'sessions' | 'reload' }
  | { type: 'ask'; id: number; what: 'terminate'; session: string };

/** Worker → primary. */
export type WorkerMessage =
  | { type: 'auth-failure'; scope: LockoutScope; key: string }
  | { type: 'auth-success'; scope: LockoutScope; key: string }
  | { type: 'cancel'; processId: number; secretKey: string }
  | { type: 'claim-code'; id: number; user: string; step: number }
  | { type: 'audit'; records: AuditEvent[] }
  | { type: 'hello' }
  | { type: 'listening' }
  | { type: 'answer'; id: number; value: unknown };

/**
 * The lockout a worker enforces: failures and successes are reported to the
 * primary, and the primary's decisions (locks) are applied here. A lock takes
 * effect in every worker as soon as the primary's message arrives.
 */
class SharedLockout extends LockoutTracker {
  constructor(cfg: LockoutConfig, private readonly scope: LockoutScope) {
    super(cfg);
  }
  /** Reported to the primary, which decides on the lock: never locks here. */
  override recordFailure(key: string): boolean {
    send({ type: 'auth-failure', scope: this.scope, key });
    return false;
  }
  override recordSuccess(key: string): void {
    send({ type: 'auth-success', scope: this.scope, key });
  }
}

/**
 * Used TOTP codes, decided by the primary: each claim is a question to it,
 * answered in the order the primary receives them, so two workers cannot
 * both accept one code. No answer (the primary is gone) is a refusal.
 */
class SharedUsedCodes implements CodeClaims {
  private readonly pending = new Map<number, (ok: boolean) => void>();
  private nextId = 1;

  claim(user: string, step: number): Promise<boolean> {
    if (!process.connected) return Promise.resolve(false);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      send({ type: 'claim-code', id, user, step });
    });
  }

  answered(id: number, ok: boolean): void {
    this.pending.get(id)?.(ok);
    this.pending.delete(id);
  }

  /** The primary went away: every open claim is refused. */
  refuseAll(): void {
    for (const resolve of this.pending.values()) resolve(false);
    this.pending.clear();
  }
}

/** What startProxy needs to know about the running proxy to answer the primary. */
export interface ServedProxy {
  readonly metrics: ProxyMetrics;
  readonly control: ControlTarget;
  ready(): boolean;
  /** Rereads users and policy now (a password reset on the primary's portal waits for every worker). */
  reload(): Promise<boolean>;
}

export class WorkerLink {
  readonly workerId: number;
  readonly workerCount: number;
  readonly incarnation: number;
  readonly lockout: SharedLockout;
  readonly addressLockout: SharedLockout;
  readonly cancelKeys: CancelKeys;
  readonly usedCodes = new SharedUsedCodes();
  readonly fakeVerifierSecret: Buffer;
  /** Where this worker's audit records go (to the primary); undefined without an `audit:` section. */
  readonly audit?: ForwardedAudit;

  private constructor(init: Extract<PrimaryMessage, { type: 'init' }>) {
    this.workerId = init.workerId;
    this.workerCount = init.workerCount;
    this.incarnation = init.incarnation;
    this.fakeVerifierSecret = Buffer.from(init.fakeVerifierSecret, 'hex');
    this.cancelKeys = new CancelKeys(init.workerId);
    this.lockout = new SharedLockout(init.lockout, 'user');
    this.addressLockout = new SharedLockout(init.addressLockout, 'address');
    if (init.audit) this.audit = new ForwardedAudit(init.audit.statements, init.audit.blocked, (records, sent) => send({ type: 'audit', records }, sent));
    // locks taken before this worker started
    this.lockout.restore({ version: 1, failures: [], locks: init.locks.user });
    this.addressLockout.restore({ version: 1, failures: [], locks: init.locks.address });
  }

  /** Says hello and waits for the primary's init message (asked for only once this worker listens for it). */
  static connect(): Promise<WorkerLink> {
    if (!process.send) return Promise.reject(new Error('not running as a pgveil worker'));
    return new Promise((resolve) => {
      const onInit = (m: PrimaryMessage) => {
        if (m.type !== 'init') return;
        process.off('message', onInit);
        resolve(new WorkerLink(m));
      };
      process.on('message', onInit);
      send({ type: 'hello' });
    });
  }

  /** Hands a CancelRequest for another worker's session to the primary. */
  routeCancel(processId: number, secretKey: Buffer): void {
    send({ type: 'cancel', processId, secretKey: secretKey.toString('hex') });
  }

  /** Starts answering the primary for a proxy that is now listening. */
  serve(proxy: ServedProxy): void {
    process.on('message', (m: PrimaryMessage) => {
      switch (m.type) {
        case 'locked':
          (m.scope === 'user' ? this.lockout : this.addressLockout).applyLock(m.key, m.until);
          return;
        case 'audit-blocked':
          this.audit?.setBlocked(m.blocked);
          return;
        case 'code-claimed':
          this.usedCodes.answered(m.id, m.ok);
          return;
        case 'cancel':
          // Routed here because this worker issued the key; the key is checked like any other.
          this.cancelKeys.lookup(m.processId, Buffer.from(m.secretKey, 'hex'))?.cancel();
          return;
        case 'unlock':
          // The primary lifted the lock it decided; this worker's copy goes too.
          (m.scope === 'user' ? this.lockout : this.addressLockout).unlock(m.key);
          return;
        case 'ask':
          void answerOf(proxy, m).then((value) => send({ type: 'answer', id: m.id, value }), () => send({ type: 'answer', id: m.id, value: undefined }));
      }
    });
    process.on('disconnect', () => this.usedCodes.refuseAll());
    send({ type: 'listening' });
  }
}

/** What an `ask` from the primary gets back. */
function answerOf(proxy: ServedProxy, m: Extract<PrimaryMessage, { type: 'ask' }>): Promise<unknown> {
  switch (m.what) {
    case 'ready': return Promise.resolve(proxy.ready());
    case 'metrics': return proxy.metrics.registry.getMetricsAsJSON();
    case 'sessions': return proxy.control.sessions();
    case 'terminate': return proxy.control.terminate(m.session);
    case 'reload': return proxy.reload();
  }
}

function send(m: WorkerMessage, sent?: () => void): void {
  // A primary that has gone away cannot be told; the worker exits on 'disconnect'.
  if (process.connected && process.send) process.send(m, undefined, undefined, () => sent?.());
  else sent?.();
}
