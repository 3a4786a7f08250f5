// Idle upstream connections of the service role, kept after a session ends
// and handed to the next one, so a new client session skips the upstream
// backend start and SCRAM login (tens of milliseconds of server CPU each).
//
// A connection another user had is a channel between users (threat C4):
// temp tables, prepared statements, WITH HOLD cursors, LISTENs, advisory
// locks and settings outlive a session on its backend. So a connection comes
// back only from a session that left it in step: every cycle it sent whole
// (the answers still under way are read and dropped first, within the
// reset's timeout), none half-sent, no cancel, no FATAL. It is reset
// (`DISCARD ALL`, after a `ROLLBACK` when a transaction was or may be open)
// and then checked: each of
// those counted on the backend itself must be zero and the role must be the
// service role again. A connection that fails any step, answers out of turn
// while idle, or waits longer than upstream.pool.idleTimeoutSeconds is
// closed. Sessions only share connections opened with the same startup
// parameters; application_name, which names the user, is set per session
// (`set_config`), so a `RESET` can only ever fall back to the neutral name.
import { serialize } from 'pg-protocol';
import { TxStatus } from '../protocol/codes.js';
import { sqlLiteral } from '../policy/literals.js';
import type { UpstreamConfig } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { connectUpstream, UpstreamError, type UpstreamConnection } from './connect.js';
import { exchange } from './raw-exchange.js';

/** application_name of an upstream connection between sessions (each session sets its own). */
export const POOLED_APPLICATION_NAME = 'pgveil';

/**
 * The database's and the service role's stored settings (ALTER DATABASE /
 * ROLE … SET). A backend reads them only when it starts, so a connection
 * opened before they changed is not reused: a new session gets them, as it
 * would without the pool.
 */
const STORED_SETTINGS = `(SELECT coalesce(string_agg(s.setdatabase || '/' || s.setrole || '/' || s.setconfig::text, ';' ORDER BY s.setdatabase, s.setrole), '')
    FROM pg_catalog.pg_db_role_setting s
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
      AND s.setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)))`;

/** Everything a session can leave on its backend that DISCARD ALL must have removed, counted; then the role and search_path. */
export const CHECK_CLEAN = `SELECT
  (SELECT count(*) FROM pg_catalog.pg_prepared_statements) AS prepared_statements,
  (SELECT count(*) FROM pg_catalog.pg_cursors) AS cursors,
  (SELECT count(*) FROM pg_catalog.pg_listening_channels()) AS listens,
  (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()) AS advisory_locks,
  (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()) AS temp_relations,
  (SELECT count(*) FROM pg_catalog.pg_settings WHERE source = 'session') AS changed_settings,
  current_user = session_user AS own_role,
  pg_catalog.current_setting('search_path') AS search_path`;
const LEFTOVER_NAMES = ['prepared statements', 'cursors', 'LISTEN channels', 'advisory locks', 'temp relations', 'changed settings'];
const RESET = ['DISCARD ALL', CHECK_CLEAN];
const RESET_AFTER_TRANSACTION = ['ROLLBACK', ...RESET];
const TERMINATE = serialize.end();

export interface PoolSettings { maxIdle: number; idleTimeoutSeconds: number }

interface Parked { conn: UpstreamConnection; timer: NodeJS.Timeout }
/** A session waiting for a connection being reset (cheaper than a new login); undefined: open one. */
interface Waiter { key: string; give: (conn: UpstreamConnection | undefined) => void }

export class UpstreamPool {
  /** Oldest first; the newest (warmest) is handed out first. */
  private readonly idle: Parked[] = [];
  /** Connections being reset: closed with the pool. */
  private readonly resetting = new Set<UpstreamConnection>();
  /** Connections reset behind the cycles of a session that ended with them still running: closed with the pool; no session waits for them. */
  private readonly draining = new Set<UpstreamConnection>();
  /** Sessions waiting for one of them, in arrival order. */
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    private readonly cfg: UpstreamConfig, private readonly settings: PoolSettings, private readonly password: () => string | undefined,
    private readonly metrics: ProxyMetrics, private readonly logger: Logger,
  ) {}

  /** A connection for a new session: a pooled one opened with the same `params`, or a new login; either way named `applicationName`. */
  async acquire(params: Record<string, string>, applicationName: string): Promise<UpstreamConnection> {
    const key = poolKey(params);
    for (;;) {
      // An idle connection, else one whose reset is under way and not promised to an earlier session.
      const pooled = this.take(key) ?? (this.resettingFor(key) > this.waitersFor(key) ? await this.nextReset(key) : undefined);
      if (!pooled) break;
      try {
        await this.claim(pooled, applicationName);
        this.metrics.upstreamConnections.inc({ how: 'reused' });
        return pooled;
      } catch (err) {
        this.drop(pooled, 'claim failed', err, 'info');
      }
    }
    const conn = await connectUpstream(this.cfg, this.password(), { ...params, application_name: POOLED_APPLICATION_NAME });
    conn.poolKey = key;
    try {
      await this.claim(conn, applicationName, true);
    } catch (err) {
      closeUpstream(conn);
      throw new UpstreamError(err instanceof Error ? err.message : String(err));
    }
    this.metrics.upstreamConnections.inc({ how: 'new' });
    return conn;
  }

  /**
   * The session is over and left the connection in step (every answer read
   * but those to `unanswered` whole cycles, Sync'd or simple Queries), in
   * transaction state `txStatus`: reset, check, keep. The reset goes behind
   * those cycles, whose answers are read and dropped first. `running`: some
   * of them are the client's own, which may run for long: no session waits
   * for the connection meanwhile, and the transaction state is unknown. The
   * caller has detached its listeners.
   */
  release(conn: UpstreamConnection, txStatus: number, unanswered = 0, running = false): void {
    if (this.closed || this.settings.maxIdle === 0 || conn.poolKey === undefined || conn.socket.destroyed) { closeUpstream(conn); return; }
    const under = running ? this.draining : this.resetting;
    under.add(conn);
    const queries = txStatus === TxStatus.Idle && !running ? RESET : RESET_AFTER_TRANSACTION;
    const key = conn.poolKey;
    exchange(conn, queries, this.cfg.connectTimeoutMs, unanswered).then((result) => {
      under.delete(conn);
      if (this.closed) { closeUpstream(conn); return; }
      const leftover = whatIsLeft(result.txStatus, result.rows);
      if (leftover) { this.resetFailed(conn, key, 'not clean after DISCARD ALL', leftover, 'warn'); return; }
      conn.searchPath = result.rows[0][7]!;
      this.metrics.upstreamResets.inc({ outcome: 'clean' });
      if (!this.handOver(key, conn)) this.park(conn);
    }, (err: unknown) => {
      under.delete(conn);
      if (running) this.drop(conn, 'the ended session\'s statements could not be drained', err, 'info'); // nobody waits for it
      else this.resetFailed(conn, key, 'reset failed', err, 'info');
    });
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** Closes every pooled connection; later releases close theirs. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.give(undefined);
    for (const parked of this.idle.splice(0)) { clearTimeout(parked.timer); closeUpstream(parked.conn); }
    for (const conn of [...this.resetting, ...this.draining]) closeUpstream(conn);
    this.resetting.clear();
    this.draining.clear();
    this.metrics.upstreamIdle.set(0);
  }

  private resettingFor(key: string): number {
    let n = 0;
    for (const conn of this.resetting) if (conn.poolKey === key) n++;
    return n;
  }

  private waitersFor(key: string): number {
    let n = 0;
    for (const waiter of this.waiters) if (waiter.key === key) n++;
    return n;
  }

  /** Resolves with the next connection of `key` whose reset ends clean, or undefined (it failed; the pool closed). */
  private nextReset(key: string): Promise<UpstreamConnection | undefined> {
    return new Promise((give) => this.waiters.push({ key, give }));
  }

  /** Gives a connection just reset (or, on a failed reset, undefined) to the first session waiting for `key`; false when none waits. */
  private handOver(key: string, conn: UpstreamConnection | undefined): boolean {
    const i = this.waiters.findIndex((w) => w.key === key);
    if (i < 0) return false;
    this.waiters.splice(i, 1)[0].give(conn);
    return true;
  }

  /** The connection is closed, and a session waiting for a reset of `key` opens its own. */
  private resetFailed(conn: UpstreamConnection, key: string, what: string, detail: unknown, level: 'info' | 'warn'): void {
    this.drop(conn, what, detail, level);
    this.handOver(key, undefined);
  }

  private park(conn: UpstreamConnection): void {
    const { socket } = conn;
    socket.removeAllListeners('data');
    // Nothing is asked while idle, so any byte (a FATAL from pg_terminate_backend, a notice) or a close ends it.
    const unexpected = () => this.unpark(conn, 'upstream spoke or closed while idle');
    socket.once('data', unexpected);
    socket.once('error', unexpected);
    socket.once('close', unexpected);
    const timer = setTimeout(() => this.unpark(conn, undefined), this.settings.idleTimeoutSeconds * 1000);
    timer.unref();
    this.idle.push({ conn, timer });
    if (this.idle.length > this.settings.maxIdle) this.unpark(this.idle[0].conn, undefined);
    else this.metrics.upstreamIdle.set(this.idle.length);
  }

  /** Takes the newest idle connection opened with `key`, its idle watch removed. */
  private take(key: string): UpstreamConnection | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const parked = this.idle[i];
      if (parked.conn.poolKey !== key) continue;
      this.idle.splice(i, 1);
      this.metrics.upstreamIdle.set(this.idle.length);
      clearTimeout(parked.timer);
      const { socket } = parked.conn;
      socket.removeAllListeners('data');
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      if (!socket.destroyed) return parked.conn;
    }
    return undefined;
  }

  /** An idle connection leaves the pool: timed out or the oldest over maxIdle (`why` undefined), or misbehaving. */
  private unpark(conn: UpstreamConnection, why: string | undefined): void {
    const i = this.idle.findIndex((p) => p.conn === conn);
    if (i < 0) return;
    clearTimeout(this.idle[i].timer);
    this.idle.splice(i, 1);
    this.metrics.upstreamIdle.set(this.idle.length);
    if (why) {
      this.metrics.upstreamResets.inc({ outcome: 'dropped' });
      this.logger.info('pooled upstream connection closed', { reason: why });
    }
    closeUpstream(conn);
  }

  /**
   * Sets the session's application_name, which also proves the connection
   * still answers, and reads the stored settings: a new connection notes
   * them, a pooled one whose stored settings changed since it started is refused.
   */
  private async claim(conn: UpstreamConnection, applicationName: string, isNew = false): Promise<void> {
    const set = `SELECT pg_catalog.set_config('application_name', ${sqlLiteral(applicationName)}, false)`;
    const result = await exchange(conn, [set, `SELECT ${STORED_SETTINGS}`], this.cfg.connectTimeoutMs);
    if (result.txStatus.some((s) => s !== TxStatus.Idle)) throw new UpstreamError('upstream is not idle after setting application_name');
    const stored = result.rows[1]?.[0];
    if (isNew) conn.storedSettings = stored;
    else if (stored === undefined || stored !== conn.storedSettings) throw new UpstreamError('the stored settings (ALTER DATABASE / ROLE … SET) changed since it started');
  }

  /** Closes a connection that failed its reset, check or claim; only a check that finds leftovers is unexpected enough to warn. */
  private drop(conn: UpstreamConnection, what: string, err: unknown, level: 'info' | 'warn'): void {
    this.metrics.upstreamResets.inc({ outcome: 'dropped' });
    this.logger[level](`upstream connection not reused: ${what}`, { detail: err instanceof Error ? err.message : String(err) });
    closeUpstream(conn);
  }
}

/** Says what the reset left behind, or undefined when the connection is clean. */
export function whatIsLeft(txStatus: number[], rows: Array<Array<string | undefined>>): string | undefined {
  if (txStatus.some((s) => s !== TxStatus.Idle)) return 'a transaction is still open';
  const row = rows[0];
  if (rows.length !== 1 || row.length !== 8) return 'the check returned no single row';
  const found = LEFTOVER_NAMES.flatMap((name, i) => (row[i] === '0' ? [] : [`${row[i] ?? 'unknown'} ${name}`]));
  if (row[6] !== 't') found.push('a role other than the service role');
  if (row[7] === undefined) found.push('no search_path');
  return found.length ? found.join(', ') : undefined;
}

/** The startup parameters as one string: sessions share connections opened with the same ones. */
function poolKey(params: Record<string, string>): string {
  return Object.keys(params).filter((k) => k !== 'application_name').sort().map((k) => `${k}=${params[k]}`).join('\0');
}

/** Ends a connection politely (Terminate), whatever state it is in. */
export function closeUpstream(conn: UpstreamConnection): void {
  const { socket } = conn;
  if (socket.destroyed) return;
  socket.on('error', () => {}); // a reset while it closes is of no interest (and must not throw)
  if (socket.writable) socket.end(TERMINATE);
  socket.destroySoon();
}
