// Upstream statement reuse (docs/architecture.md): statements whose cached
// rewrite pgveil can prepare run upstream as pgveil's own prepared
// statements, parsed once per upstream connection, so upstream skips parse
// and analysis:
// - a simple Query with an upstream form (cache/parameter-form.ts) runs as
//   Close-unnamed/Bind/Describe/Execute/Sync with its constants bound; the
//   ParseComplete, BindComplete and CloseComplete of that cycle are dropped,
//   so the client gets a Query's answer;
// - a client's Parse of the unnamed statement (one plain SELECT, first in
//   its cycle, nothing in flight before it) goes as sent the first time,
//   followed by a Parse of pgveil's statement of the same text and types
//   (its ParseComplete dropped). Once that is prepared, such a Parse becomes
//   a Parse of the unnamed statement as the bare `SELECT` — it drops the old
//   unnamed statement and fails in an aborted transaction exactly as the
//   client's would, at a fraction of the cost — and the client's Binds and
//   Describes of the unnamed statement name pgveil's (mappedUnnamed) until
//   the client parses, closes or loses its unnamed statement.
//
// Statements are named `pgveil:<n>` (clients may not use the prefix:
// engine/reserved-names.ts), never reused for another text, at most `max`
// per connection (the least recently used is closed), all closed when the
// policy changes, forgotten when the client's DISCARD ALL or DEALLOCATE ALL
// drops them, and gone with the pool's DISCARD ALL after the session. One
// whose Parse is still unanswered is not used: that statement goes as sent.
import { Backend } from '../protocol/codes.js';
import { TxStatus } from '../protocol/codes.js';
import { writeBindOf, writeCloseStatement, writeDescribeStatement, writePreparedRun, writeTypedParse } from '../protocol/prepared-run.js';
import { PgError, SqlState } from '../errors.js';
import { reservedStatementName } from '../engine/reserved-names.js';
import type { SessionEffects } from '../engine/effects.js';
import { writeParse, writeParseText } from '../protocol/frontend-messages.js';
import { RESERVED_STATEMENT_PREFIX } from '../engine/reserved-names.js';
import type { Decision, Reusable } from '../engine/engine.js';
import { literalTypes } from '../cache/parameter-form.js';
import type { ProxyMetrics } from '../observe/metrics.js';

const enum State { Pending, Ready, Gone }
type Allowed = Exclude<Decision, { kind: 'refuse' }>;
interface Prepared { readonly name: string; readonly key: string; state: State }

/** A cycle pgveil changed: a simple Query run as a prepared statement, or a mapped unnamed Parse. */
interface Changed {
  readonly cycle: number;
  readonly query: boolean;
  /** The statement this cycle parses (Pending until its ParseComplete). */
  readonly parsing: Prepared | undefined;
  parsed: boolean;
  /** Answers of pgveil's own messages still to come first (Closes of evicted statements). */
  drop: number;
  /** A new statement parsed beside the client's: the client's ParseComplete came (pgveil's is next). */
  clientParsed: boolean;
}

/** Stands in for a client's Parse of a statement pgveil has prepared: the unnamed statement as the bare SELECT. */
const STAND_IN_PARSE = writeParseText('', 'SELECT');

/** The answers a Query never gets, watched only while a changed cycle is in flight. */
const TRANSLATED = [Backend.ParseComplete, Backend.BindComplete, Backend.CloseComplete, Backend.NoData];

export class StatementReuse {
  /** By key (form text and types), least recently used first (a Map keeps insertion order). */
  private readonly byKey = new Map<string, Prepared>();
  private readonly changed: Changed[] = [];
  /** Close messages owed upstream (evicted statements, an older policy's), sent ahead of the next change. */
  private owed: Buffer[] = [];
  /** The Parse of the statement take() just made. */
  private newParse?: Buffer;
  private named = 0;
  private generation = -1;
  /** Query cycles (any kind) sent, and answered with ReadyForQuery. */
  private sent = 0;
  private done = 0;
  /** pgveil's statement the client's unnamed statement is, if it is one. */
  private unnamed?: Prepared;

  constructor(
    private readonly max: number, private readonly watched: Uint8Array, private readonly metrics: ProxyMetrics,
    private readonly engine: { readonly generation: number },
  ) {}

  /** A simple Query allowed: the messages that run it as its prepared form, or undefined (send it as it is, or as `decision.sql`). */
  query(decision: Allowed, sql: string, txStatus: number): Buffer | undefined {
    this.unnamed = undefined; // a Query destroys the unnamed statement
    if (decision.effects) this.noteDrops(decision.effects);
    if (decision.kind !== 'rewrite' || !decision.reusable || txStatus === TxStatus.Failed) return undefined;
    return this.run(decision.reusable, sql, this.engine.generation);
  }

  /**
   * A Parse allowed (the parameter types at [typesStart, end) of `buf`): the
   * messages to send for it, or undefined (send it as it is, or with
   * `decision.sql`). `txStatus` is known only when it is first in its cycle
   * and nothing is in flight, the one case mapped onto pgveil's statement.
   */
  parse(decision: Allowed, name: string, buf: Buffer, typesStart: number, end: number, txStatus: number | undefined): Buffer | undefined {
    if (decision.effects) this.noteDrops(decision.effects);
    if (name !== '') return undefined;
    this.unnamed = undefined;
    if (decision.kind !== 'rewrite' || !decision.plainSelect || txStatus === undefined || txStatus === TxStatus.Failed) return undefined;
    return this.mapUnnamedParse(decision.sql, buf, typesStart, end, this.engine.generation);
  }

  /** A Bind allowed by the gate: the Bind to send instead (naming pgveil's statement), a refusal, or undefined (send it as it is). */
  bind(statement: string, buf: Buffer, bodyStart: number, end: number): Buffer | PgError | undefined {
    if (statement !== '' || this.unnamed === undefined) return undefined;
    return this.unnamed.state === State.Gone ? unnamedMissing() : writeBindOf(buf, bodyStart, end, this.unnamed.name);
  }

  /** A Describe: the Describe to send instead (naming pgveil's statement), a refusal (a reserved name), or undefined. */
  describe(target: 'statement' | 'portal', name: string): Buffer | PgError | undefined {
    if (target !== 'statement') return undefined;
    const reserved = reservedStatementName(name);
    if (reserved) return reserved;
    if (name !== '' || this.unnamed === undefined) return undefined;
    return this.unnamed.state === State.Gone ? unnamedMissing() : writeDescribeStatement(this.unnamed.name);
  }

  /** A Close: the refusal of a reserved name, else undefined (closing the unnamed statement ends its mapping). */
  close(target: 'statement' | 'portal', name: string): PgError | undefined {
    if (target !== 'statement') return undefined;
    if (name === '') this.unnamed = undefined;
    return reservedStatementName(name);
  }

  /** The messages that run a simple Query's `sql` as its prepared form, or undefined: send it as a Query. */
  private run(reusable: Reusable, sql: string, generation: number): Buffer | undefined {
    if (this.max === 0) return undefined;
    const { form, constants } = reusable;
    const types = literalTypes(form, sql, constants);
    const key = form.typedPerStatement ? `${form.text}\u0000${types.join(',')}` : form.text;
    const prepared = this.take(key, generation, (name) => writeTypedParse(name, form.text, types));
    if (!prepared) return undefined;
    const ahead = this.track(true, prepared, 0);
    return writePreparedRun(ahead.length ? Buffer.concat(ahead) : undefined, prepared.name, sql, constants, form.order);
  }

  /**
   * A client's Parse of the unnamed statement, first in its cycle, of the
   * rewritten `text` with the parameter types at [typesStart, end) of `buf`:
   * the messages to send instead, or undefined (send it as it is).
   */
  private mapUnnamedParse(text: string, buf: Buffer, typesStart: number, end: number, generation: number): Buffer | undefined {
    if (this.max === 0) return undefined;
    const key = `${text}\u0000P${buf.toString('latin1', typesStart, end)}`;
    const prepared = this.take(key, generation, (name) => writeParse(name, text, buf, typesStart, end));
    if (!prepared) return undefined;
    // [Closes owed], then the client's Parse and pgveil's (new), or the bare SELECT standing for the client's (ready).
    const parse = this.newParse;
    const ahead = this.track(false, prepared, 0);
    if (parse) ahead.push(writeParse('', text, buf, typesStart, end), parse);
    else { ahead.push(STAND_IN_PARSE); this.unnamed = prepared; }
    return ahead.length === 1 ? ahead[0] : Buffer.concat(ahead);
  }

  /** The client's unnamed statement is replaced (a refusal's sentinel). */
  unnamedGone(): void {
    this.unnamed = undefined;
  }

  /** Every Query or Sync sent upstream (after run() or mapUnnamedParse()). */
  cycleSent(): void {
    this.sent++;
  }

  /**
   * A ParseComplete, BindComplete, CloseComplete or NoData (watched only
   * while a changed cycle is in flight): true when it answers pgveil's own
   * message (drop it), false when it answers the client's.
   */
  answer(type: number): boolean {
    const c = this.changed[0];
    if (c === undefined || c.cycle !== this.done) return false;
    if (c.query) {
      if (type === Backend.ParseComplete) c.parsed = true;
      return true;
    }
    if (c.drop > 0) { c.drop--; return true; }
    if (!c.parsing || type !== Backend.ParseComplete || c.parsed) return false; // the stand-in's ParseComplete answers the client's Parse
    if (!c.clientParsed) { c.clientParsed = true; return false; }
    c.parsed = true; // pgveil's, right after the client's
    return true;
  }

  /** A ReadyForQuery: a statement parsed in the cycle is usable once its Parse was answered, else gone. */
  cycleDone(): void {
    const c = this.changed[0];
    if (c !== undefined && c.cycle === this.done) {
      this.changed.shift();
      const p = c.parsing;
      if (p && p.state === State.Pending) {
        if (c.parsed) p.state = State.Ready;
        else this.forget(p);
      }
      if (this.changed.length === 0) this.watch(0);
    }
    this.done++;
  }

  /**
   * The client's DISCARD ALL or DEALLOCATE ALL is on its way: pgveil's
   * statements go with it (new names from now on). Should the client's
   * unnamed statement stand for one of them (the drop run as a named
   * statement), upstream holds only the stand-in: binding or describing it
   * is then refused as missing, where PostgreSQL would bind the old one.
   */
  private noteDrops(effects: SessionEffects): void {
    if (!effects.objects.some((e) => e.op === 'drop' && e.kind === 'statement' && e.name === null)) return;
    for (const p of this.byKey.values()) p.state = State.Gone;
    this.byKey.clear();
  }

  /** The ready statement of `key` (bumped), or a new one whose Parse (`parse(name)`) is left in this.newParse; undefined while one is pending. */
  private take(key: string, generation: number, parse: (name: string) => Buffer): Prepared | undefined {
    this.newParse = undefined;
    if (generation !== this.generation) this.closeAll(generation);
    const found = this.byKey.get(key);
    if (found) {
      if (found.state !== State.Ready) return undefined;
      this.byKey.delete(key); // most recently used last
      this.byKey.set(key, found);
      this.metrics.upstreamStatements.count('reused');
      return found;
    }
    const prepared: Prepared = { name: `${RESERVED_STATEMENT_PREFIX}${++this.named}`, key, state: State.Pending };
    for (const [oldKey, oldest] of this.byKey) {
      if (this.byKey.size < this.max) break;
      if (oldest === this.unnamed) continue; // the client's unnamed statement stands for it
      this.byKey.delete(oldKey);
      oldest.state = State.Gone;
      this.owed.push(writeCloseStatement(oldest.name));
    }
    this.byKey.set(key, prepared);
    this.newParse = parse(prepared.name);
    this.metrics.upstreamStatements.count('prepared');
    return prepared;
  }

  /**
   * Notes the cycle being sent as changed, with `extra` answers of pgveil's
   * own to drop after those of the owed Closes; returns the messages to send
   * first: the owed Closes, then (a Query's run) the new statement's Parse.
   */
  private track(query: boolean, prepared: Prepared, extra: number): Buffer[] {
    const ahead = this.owed;
    this.owed = [];
    const drop = ahead.length + extra;
    if (query && this.newParse) ahead.push(this.newParse);
    if (this.changed.length === 0) this.watch(1);
    this.changed.push({ cycle: this.sent, query, parsing: prepared.state === State.Pending ? prepared : undefined, parsed: false, drop, clientParsed: false });
    return ahead;
  }

  private forget(prepared: Prepared): void {
    prepared.state = State.Gone;
    if (this.byKey.get(prepared.key) === prepared) this.byKey.delete(prepared.key);
  }

  private closeAll(generation: number): void {
    for (const p of this.byKey.values()) { p.state = State.Gone; this.owed.push(writeCloseStatement(p.name)); }
    this.byKey.clear();
    this.generation = generation;
  }

  private watch(on: 0 | 1): void {
    for (const type of TRANSLATED) this.watched[type] = on;
  }
}

function unnamedMissing(): PgError {
  return new PgError(SqlState.InvalidSqlStatementName, 'unnamed prepared statement does not exist');
}
