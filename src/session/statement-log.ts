// The life of each statement a session runs, from the client's message to
// the last answer for it: the latency histograms, the refusal counter and
// the audit log's statement records are fed from here.
//
// What one statement is: a simple Query message (all its statements: one
// record, rows summed over its CommandCompletes, done at ReadyForQuery), or
// one protocol Execute (done at its CommandComplete, EmptyQueryResponse or
// PortalSuspended; it carries its Parse's decision, fingerprint and text).
// A refusal is a statement too: done when the client has its error (at once
// when pgveil answers it, at the cycle's end when a stand-in carries it).
// Statements still open when the session ends are recorded then.
//
// Statements in flight sit in a ring of reused slots in arrival order
// (upstream answers in order), so steady traffic allocates nothing here
// beyond the audit records themselves.
import type { AuditEvent, StatementDecision } from '../audit/record.js';
import type { AuditFacts } from '../engine/audit-facts.js';
import { AUDIT_BLOCKED_CODE, refusalReason } from '../engine/refusal-reason.js';
import { SqlState, type PgError } from '../errors.js';
import type { ProxyContext } from './context.js';

interface Slot {
  /** The query cycle (Query, or messages up to Sync) it was sent in. */
  cycle: number;
  /** An Execute: done at its own completion; a Query: at its cycle's ReadyForQuery. */
  extended: boolean;
  started: number;
  /** When it went upstream; NaN for a refusal (not timed as upstream work). */
  forwarded: number;
  decision: StatementDecision;
  facts: AuditFacts | undefined;
  text: string | undefined;
  error: PgError | undefined;
  rows: number | undefined;
}

export interface SessionIdentity {
  readonly id: string;
  readonly user: string;
  readonly org?: string;
}

export class StatementLog {
  private ring: Slot[] = [];
  private head = 0;
  private size = 0;
  private cyclesSent = 0;
  private cyclesDone = 0;
  /** Statements the client sent (each Query and each Execute). */
  count = 0;

  constructor(private readonly ctx: ProxyContext, private readonly session: SessionIdentity) {}

  /** Audit statement records want row counts (the session then reads CommandComplete tags). */
  get wantsRows(): boolean {
    return this.ctx.audit.statements !== 'none';
  }

  /** A statement went upstream as it is or rewritten. */
  forwarded(started: number, forwardedAt: number, extended: boolean, decision: 'forward' | 'rewrite', facts: AuditFacts | undefined, text: string | undefined): void {
    this.count++;
    const slot = this.push();
    slot.extended = extended;
    slot.started = started;
    slot.forwarded = forwardedAt;
    slot.decision = decision === 'forward' ? 'forwarded' : 'rewritten';
    slot.facts = facts;
    slot.text = text;
    slot.error = undefined;
  }

  /**
   * pgveil refused a statement. `answeredNow`: the client has the error
   * already; otherwise a stand-in upstream rejects carries it, and the
   * statement is done when that cycle ends.
   */
  refused(started: number, error: PgError, facts: AuditFacts | undefined, text: string | undefined, extended: boolean, answeredNow: boolean): void {
    this.count++;
    this.ctx.metrics.refusals.inc({ reason: refusalReason(error) });
    const slot = answeredNow ? scratch : this.push();
    slot.extended = extended;
    slot.started = started;
    slot.forwarded = NaN;
    slot.decision = error.code === SqlState.SyntaxError ? 'syntax_error' : 'refused';
    slot.facts = facts;
    slot.text = text;
    slot.error = error;
    if (answeredNow) {
      slot.rows = undefined;
      this.finish(slot, performance.now());
    }
  }

  /** A Query or Sync went upstream: the cycle is closed. */
  cycleSent(): void {
    this.cyclesSent++;
  }

  /** CommandComplete (with its row count when read), EmptyQueryResponse or PortalSuspended from upstream. */
  completion(rows: number | undefined): void {
    if (this.size === 0) return;
    const slot = this.ring[this.head];
    if (slot.cycle !== this.cyclesDone || slot.error) return;
    if (rows !== undefined) slot.rows = (slot.rows ?? 0) + rows;
    if (slot.extended) this.finish(this.shift(), performance.now());
  }

  /** ReadyForQuery: everything of that cycle is done (after an error upstream skips the rest of the cycle). */
  cycleDone(): void {
    const cycle = this.cyclesDone++;
    if (this.size === 0 || this.ring[this.head].cycle > cycle) return;
    const now = performance.now();
    while (this.size > 0 && this.ring[this.head].cycle <= cycle) this.finish(this.shift(), now);
  }

  /** The session ended: statements still open are recorded as they stand. */
  close(): void {
    const now = performance.now();
    while (this.size > 0) this.finish(this.shift(), now);
  }

  private finish(slot: Slot, now: number): void {
    const metrics = this.ctx.metrics;
    metrics.statementSeconds.observe((now - slot.started) / 1000);
    if (!Number.isNaN(slot.forwarded)) metrics.upstreamSeconds.observe((now - slot.forwarded) / 1000);
    const audit = this.ctx.audit;
    // A refusal because the audit log cannot be written is not queued for it: the statement did not run.
    const write = slot.error ? slot.error.code !== AUDIT_BLOCKED_CODE : audit.statements !== 'none';
    if (write) audit.record(this.recordOf(slot, now, audit.statements));
    slot.facts = undefined; // let go of what the record no longer needs
    slot.text = undefined;
    slot.error = undefined;
  }

  private recordOf(slot: Slot, now: number, mode: 'none' | 'fingerprint' | 'full'): AuditEvent {
    const { session } = this;
    return {
      event: 'statement',
      session: session.id,
      user: session.user,
      org: session.org,
      fingerprint: mode === 'fingerprint' ? slot.facts?.fingerprint : undefined,
      text: mode === 'full' ? slot.text : undefined,
      relations: slot.facts?.relations ?? noRelations,
      decision: slot.decision,
      code: slot.error?.code,
      reason: slot.error?.message,
      durationMs: Math.round((now - slot.started) * 1000) / 1000,
      rows: slot.rows,
    };
  }

  private push(): Slot {
    if (this.size === this.ring.length) this.grow();
    const slot = this.ring[(this.head + this.size) % this.ring.length];
    this.size++;
    slot.cycle = this.cyclesSent;
    slot.rows = undefined;
    return slot;
  }

  private shift(): Slot {
    const slot = this.ring[this.head];
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return slot;
  }

  private grow(): void {
    const ordered: Slot[] = [];
    for (let i = 0; i < this.size; i++) ordered.push(this.ring[(this.head + i) % this.ring.length]);
    const more = Math.max(4, this.ring.length);
    for (let i = 0; i < more; i++) ordered.push(emptySlot());
    this.ring = ordered;
    this.head = 0;
  }
}

function emptySlot(): Slot {
  return { cycle: 0, extended: false, started: 0, forwarded: NaN, decision: 'forwarded', facts: undefined, text: undefined, error: undefined, rows: undefined };
}

/** Shared by every record of a statement without relations (records are only read, never changed). */
const noRelations: readonly string[] = Object.freeze([]);

/** The slot of a refusal recorded at once (never queued; sessions run on one thread). */
const scratch = emptySlot();
