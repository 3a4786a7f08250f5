// Password-guessing lockout (threat D1 in docs/threat-model.md): `maxFailures` failures within
// `windowSeconds` lock the name for `lockSeconds`. Names are attacker-chosen
// (unknown users count too, so lockouts do not reveal which users exist), so
// memory is bounded: long names are hashed, expired entries are pruned, and
// past `maxEntries` the least recently failed names are forgotten. Locks
// live in their own map, so a flood of fresh failing names cannot evict
// (and so unlock) a locked user.
//
// All state is plain data with a snapshot()/restore() pair, so a
// multi-process version can keep one tracker in the primary and have
// workers send it failures, or ship snapshots between processes.
import { createHash } from 'node:crypto';
import type { LockoutConfig } from '../config/types.js';

export interface LockoutSnapshot {
  version: 1;
  /** [name key, failure times in ms, oldest first]. */
  failures: Array<[string, number[]]>;
  /** [name key, locked until (ms)]. */
  locks: Array<[string, number]>;
}

export interface LockoutOptions {
  /** Most names tracked in each of the failure and lock tables (default 100 000). */
  maxEntries?: number;
}

const MAX_KEY_CHARS = 128;

export class LockoutTracker {
  // Map iteration order is insertion order: entries are re-inserted on every
  // update, so the first entries are always the oldest, which makes both
  // pruning and eviction a walk from the front.
  private readonly failures = new Map<string, number[]>();
  private readonly locks = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(private readonly cfg: LockoutConfig, private readonly now: () => number = Date.now, opts: LockoutOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 100_000);
  }

  isLocked(user: string): boolean {
    const key = keyOf(user);
    const until = this.locks.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.locks.delete(key);
    return false;
  }

  /**
   * Counts a failed attempt; true when this failure locked the name. Attempts
   * while locked are not counted and do not extend the lock: the lock period
   * is the fixed price of a burst.
   */
  recordFailure(user: string): boolean {
    if (this.cfg.maxFailures <= 0) return false;
    const key = keyOf(user);
    const now = this.now();
    this.prune(now);
    if (this.isLocked(user)) return false;
    const since = now - this.cfg.windowSeconds * 1000;
    const times = (this.failures.get(key) ?? []).filter((t) => t > since);
    times.push(now);
    this.failures.delete(key);
    if (times.length >= this.cfg.maxFailures) {
      this.lock(key, now + this.cfg.lockSeconds * 1000);
      return true;
    }
    // Only the last maxFailures times can matter.
    this.failures.set(key, times.slice(-this.cfg.maxFailures));
    evictOldest(this.failures, this.maxEntries);
    return false;
  }

  /** Applies a lock decided elsewhere: under `workers: N` the primary counts and each worker enforces. */
  applyLock(user: string, until: number): void {
    this.lock(keyOf(user), until);
  }

  /** When the name's lock ends (ms), for telling other processes; undefined when it is not locked. */
  lockedUntil(user: string): number | undefined {
    return this.isLocked(user) ? this.locks.get(keyOf(user)) : undefined;
  }

  private lock(key: string, until: number): void {
    this.locks.delete(key);
    this.locks.set(key, until);
    evictOldest(this.locks, this.maxEntries);
  }

  /** Lifts the name's lock and forgets its failures (an operator's unlock); true when it was locked. */
  unlock(user: string): boolean {
    const wasLocked = this.isLocked(user);
    const key = keyOf(user);
    this.locks.delete(key);
    this.failures.delete(key);
    return wasLocked;
  }

  /** Forgets earlier failures of the name; an active lock stays until it runs out. */
  recordSuccess(user: string): void {
    this.failures.delete(keyOf(user));
  }

  /** Number of names currently tracked (failures + locks), for metrics. */
  get size(): number {
    return this.failures.size + this.locks.size;
  }

  snapshot(): LockoutSnapshot {
    this.prune(this.now());
    return {
      version: 1,
      failures: [...this.failures].map(([k, times]) => [k, [...times]]),
      locks: [...this.locks],
    };
  }

  /** Replaces the state with a snapshot (e.g. one taken in another process). */
  restore(snapshot: LockoutSnapshot): void {
    if (snapshot.version !== 1) throw new Error(`unsupported lockout snapshot version ${String(snapshot.version)}`);
    this.failures.clear();
    this.locks.clear();
    for (const [k, times] of snapshot.failures) this.failures.set(k, [...times]);
    for (const [k, until] of snapshot.locks) this.locks.set(k, until);
    this.prune(this.now());
    evictOldest(this.failures, this.maxEntries);
    evictOldest(this.locks, this.maxEntries);
  }

  /** Drops expired locks and failure histories, oldest first. */
  private prune(now: number): void {
    for (const [key, until] of this.locks) {
      if (until > now) break;
      this.locks.delete(key);
    }
    const since = now - this.cfg.windowSeconds * 1000;
    for (const [key, times] of this.failures) {
      if (times[times.length - 1] > since) break;
      this.failures.delete(key);
    }
  }
}

function evictOldest<V>(map: Map<string, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}

// Names up to 128 characters are kept as they are (readable in a snapshot);
// longer ones as a hash, so an attacker cannot make each entry large.
function keyOf(user: string): string {
  if (user.length <= MAX_KEY_CHARS) return user;
  return 'sha256:' + createHash('sha256').update(user, 'utf8').digest('base64');
}
