// pgveil's record of the prepared statements and portals that exist in the
// upstream session, each stamped with the policy generation and search_path
// it was rewritten under (threats A8, C3 in docs/threat-model.md). The record changes only when
// upstream confirms an operation (ParseComplete, BindComplete, CloseComplete,
// a statement's CommandComplete); an operation upstream skipped or refused
// changes nothing. While an operation is unconfirmed, every state it may
// leave is considered possible, and an object is usable only when every
// possibility is fresh. Names are keyed as upstream keys them: truncated to
// NAMEDATALEN-1 = 63 bytes.
import type { ObjectKind } from './effects.js';

export interface Stamp {
  generation: number;
  /** The search_path its relation names were resolved under. */
  searchPath: string;
  /** It names a relation without its schema (Postgres re-plans such a statement when search_path changes). */
  usesSearchPath: boolean;
  /** Running it may change search_path. */
  changesSearchPath: boolean;
  /** Portals only: WITH HOLD, survives the end of its transaction. */
  holdable: boolean;
  /** Statements only: what running it does to other objects (a prepared `DEALLOCATE x`). */
  runs?: readonly PendingChange[];
}

/** A change an operation makes once confirmed: create (with its stamp) or drop (`key` null = all of the kind). */
export interface PendingChange {
  kind: ObjectKind;
  key: string | null;
  stamp?: Stamp;
}

interface PendingOp extends PendingChange {
  /** The query cycle (Query, or messages up to Sync) it was sent in. */
  cycle: number;
}

/** How upstream will answer the operations of a message. */
export const enum Confirmation { Parse, Bind, Close }

const NAMEDATALEN_BYTES = 63;

/**
 * The key upstream stores a statement or portal name under: its first 63
 * bytes. A name that fits is its own key (no allocation on the hot path); a
 * cut that splits a character keys the raw bytes, marked so that no whole
 * name can collide with it.
 */
export function upstreamKey(name: string): string {
  if (name.length <= 21 || Buffer.byteLength(name, 'utf8') <= NAMEDATALEN_BYTES) return name; // 21 UTF-16 units ≤ 63 bytes
  const cut = Buffer.from(name, 'utf8').subarray(0, NAMEDATALEN_BYTES);
  const text = cut.toString('utf8');
  return Buffer.byteLength(text, 'utf8') === NAMEDATALEN_BYTES && !text.includes('\uFFFD') ? text : `\u0000${cut.toString('latin1')}`;
}

/** `key` as the user would recognise it, for error messages. */
export function shownName(key: string): string {
  return key.startsWith('\u0000') ? Buffer.from(key.slice(1), 'latin1').toString('utf8') : key;
}

/** One object shape for every operation (a spread of differently shaped changes costs a map lookup per message on the hot path). */
function pendingOp(change: PendingChange, cycle: number): PendingOp {
  return { kind: change.kind, key: change.key, stamp: change.stamp, cycle };
}

export class UpstreamObjects {
  private readonly confirmed = { statement: new Map<string, Stamp>(), portal: new Map<string, Stamp>() };
  /** Every unconfirmed operation, in the order sent. */
  private readonly pending: PendingOp[] = [];
  /** Unconfirmed Parse, Bind and Close operations: upstream answers each in order. */
  private readonly byMessage: [PendingOp[], PendingOp[], PendingOp[]] = [[], [], []];
  /** Unconfirmed statement-level changes: confirmed by the n-th completion of their cycle. */
  private readonly byCompletion: Array<{ cycle: number; index: number; ops: PendingOp[] }> = [];
  private completionsSeen = 0;

  /** A protocol message that upstream answers with ParseComplete, BindComplete or CloseComplete. */
  sentMessage(confirmation: Confirmation, cycle: number, change: PendingChange): void {
    const op = pendingOp(change, cycle);
    this.pending.push(op);
    this.byMessage[confirmation].push(op);
  }

  /** Changes made by the `index`-th statement (or Execute) of a cycle, confirmed by its CommandComplete. */
  sentStatement(cycle: number, index: number, changes: readonly PendingChange[]): void {
    if (!changes.length) return;
    const ops = changes.map((c) => pendingOp(c, cycle));
    this.pending.push(...ops);
    this.byCompletion.push({ cycle, index, ops });
  }

  /** ParseComplete, BindComplete or CloseComplete arrived. */
  confirmMessage(confirmation: Confirmation): void {
    const op = this.byMessage[confirmation].shift();
    if (op) this.apply(op);
  }

  /** CommandComplete (or EmptyQueryResponse, PortalSuspended) of the current cycle arrived. */
  completion(cycle: number, completed: boolean): void {
    const index = this.completionsSeen++;
    const head = this.byCompletion[0];
    if (!head || head.cycle !== cycle || head.index !== index) return;
    this.byCompletion.shift();
    for (const op of head.ops) completed ? this.apply(op) : this.forget(op);
  }

  /** An ErrorResponse in `cycle`: upstream failed or skips everything of it not yet confirmed. */
  failed(cycle: number): void {
    for (const queue of this.byMessage) while (queue.length && queue[0].cycle === cycle) this.forget(queue.shift() as PendingOp);
    while (this.byCompletion.length && this.byCompletion[0].cycle === cycle) {
      for (const op of (this.byCompletion.shift() as { ops: PendingOp[] }).ops) this.forget(op);
    }
  }

  /** ReadyForQuery ended `cycle`; `idle`: no transaction is open, so only holdable portals remain. */
  cycleEnded(cycle: number, idle: boolean): void {
    this.failed(cycle); // nothing of it can still be confirmed
    this.completionsSeen = 0;
    if (idle) for (const [key, stamp] of this.confirmed.portal) if (!stamp.holdable) this.confirmed.portal.delete(key);
  }

  /**
   * Every stamp the object may have when upstream reaches a message of
   * `cycle`: within one cycle, an operation sent earlier has happened if the
   * message runs at all (an error skips the rest); an operation of an
   * earlier cycle may or may not have.
   */
  possible(kind: ObjectKind, key: string, cycle: number): Stamp[] {
    let same: PendingOp | undefined;
    const earlier: Stamp[] = [];
    for (const op of this.pending) {
      if (op.kind !== kind || (op.key !== null && op.key !== key)) continue;
      if (op.cycle === cycle) same = op;
      else if (op.stamp) earlier.push(op.stamp);
    }
    if (same) return same.stamp ? [same.stamp] : [];
    const current = this.confirmed[kind].get(key);
    if (current) earlier.unshift(current);
    return earlier;
  }

  /** For tests and metrics: confirmed names of a kind. */
  names(kind: ObjectKind): string[] {
    return [...this.confirmed[kind].keys()].map(shownName);
  }

  private apply(op: PendingOp): void {
    this.forget(op);
    const map = this.confirmed[op.kind];
    if (op.stamp) map.set(op.key as string, op.stamp);
    else if (op.key === null) map.clear();
    else map.delete(op.key);
  }

  private forget(op: PendingOp): void {
    const at = this.pending.indexOf(op);
    if (at >= 0) this.pending.splice(at, 1);
  }
}
