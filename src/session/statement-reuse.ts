// Upstream statement reuse (docs/architecture.md): a simple-protocol
// statement whose cached rewrite has an upstream form (cache/parameter-form.ts)
// goes upstream as pgveil's own prepared statement — Parse once per upstream
// connection and form, then Bind/Describe/Execute/Sync with the constants as
// parameters — so upstream skips parse and analysis. The client still sees
// a Query's answer: the ParseComplete, BindComplete and CloseComplete of such
// a cycle are read and dropped here; RowDescription, DataRows,
// CommandComplete or ErrorResponse, and ReadyForQuery pass as they come.
//
// Statements are named `pgveil:<n>` (clients may not use the prefix:
// engine/reserved-names.ts), never reused for another text, at most
// `max` per connection (the least recently used is closed), all closed when
// the policy changes, forgotten when the client's DISCARD ALL or DEALLOCATE
// ALL drops them, and gone with the pool's DISCARD ALL after the session.
// A statement whose Parse is still unanswered, or failed, is not bound: that
// statement goes as a Query, as does any statement in a failed transaction.
import { Backend } from '../protocol/codes.js';
import { writeCloseStatement, writePreparedRun, writeTypedParse } from '../protocol/prepared-run.js';
import { RESERVED_STATEMENT_PREFIX } from '../engine/reserved-names.js';
import type { Reusable } from '../engine/engine.js';
import { literalTypes } from '../cache/parameter-form.js';
import type { ProxyMetrics } from '../observe/metrics.js';

interface Prepared { readonly name: string; ready: boolean }

/** A cycle sent as a prepared run: its answers up to ReadyForQuery are translated. */
interface Run { readonly cycle: number; readonly parsing: Prepared | undefined; parsed: boolean }

/** The answers a Query never gets, watched (and dropped) only while a prepared run is in flight. */
const TRANSLATED = [Backend.ParseComplete, Backend.BindComplete, Backend.CloseComplete, Backend.NoData];

export class StatementReuse {
  /** By form text (and parameter types, where they vary by statement), least recently used first (a Map keeps insertion order). */
  private readonly byText = new Map<string, Prepared>();
  private readonly runs: Run[] = [];
  /** Close messages owed upstream (statements of an older policy), sent ahead of the next run. */
  private owed: Buffer[] = [];
  private named = 0;
  private generation = -1;
  /** Query cycles (any kind) sent, and answered with ReadyForQuery. */
  private sent = 0;
  private done = 0;

  constructor(private readonly max: number, private readonly watched: Uint8Array, private readonly metrics: ProxyMetrics) {}

  /**
   * The messages that run `sql` as its prepared form, or undefined: send it
   * as a Query. The caller then counts the cycle (cycleSent).
   */
  run(reusable: Reusable, sql: string, generation: number): Buffer | undefined {
    if (this.max === 0) return undefined;
    if (generation !== this.generation) this.closeAll(generation);
    const { form, constants } = reusable;
    const types = literalTypes(form, sql, constants);
    const key = form.typedPerStatement ? `${form.text}\u0000${types.join(',')}` : form.text;
    let prepared = this.byText.get(key);
    let prefix: Buffer | undefined;
    if (prepared) {
      if (!prepared.ready) return undefined;
      this.byText.delete(key); // most recently used last
      this.byText.set(key, prepared);
      this.metrics.upstreamStatements.inc({ how: 'reused' });
    } else {
      prepared = { name: `${RESERVED_STATEMENT_PREFIX}${++this.named}`, ready: false };
      for (const [text, oldest] of this.byText) {
        if (this.byText.size < this.max) break;
        this.byText.delete(text);
        this.owed.push(writeCloseStatement(oldest.name));
      }
      this.byText.set(key, prepared);
      this.owed.push(writeTypedParse(prepared.name, form.text, types));
      this.metrics.upstreamStatements.inc({ how: 'prepared' });
    }
    if (this.owed.length) {
      prefix = this.owed.length === 1 ? this.owed[0] : Buffer.concat(this.owed);
      this.owed = [];
    }
    if (this.runs.length === 0) this.watch(1);
    this.runs.push({ cycle: this.sent, parsing: prefix && !prepared.ready ? prepared : undefined, parsed: false });
    return writePreparedRun(prefix, prepared.name, sql, constants, form.order);
  }

  /** Every Query or Sync sent upstream (after run(), when it ran one). */
  cycleSent(): void {
    this.sent++;
  }

  /**
   * A ParseComplete, BindComplete, CloseComplete or NoData (watched only
   * while runs are in flight): true when it answers a run (drop it), false
   * when it answers the client's own messages.
   */
  answer(type: number): boolean {
    const run = this.runs[0];
    if (run === undefined || run.cycle !== this.done) return false;
    if (type === Backend.ParseComplete) run.parsed = true;
    return true;
  }

  /** A ReadyForQuery: a run's statement is usable once its Parse was answered, else forgotten. */
  cycleDone(): void {
    const run = this.runs[0];
    if (run !== undefined && run.cycle === this.done) {
      this.runs.shift();
      const prepared = run.parsing;
      if (prepared) {
        if (run.parsed) prepared.ready = true;
        else for (const [text, p] of this.byText) if (p === prepared) { this.byText.delete(text); break; }
      }
      if (this.runs.length === 0) this.watch(0);
    }
    this.done++;
  }

  /** The client's DISCARD ALL or DEALLOCATE ALL is on its way: pgveil's statements are gone with it (new names from now on). */
  forgetAll(): void {
    this.byText.clear();
  }

  private closeAll(generation: number): void {
    for (const prepared of this.byText.values()) this.owed.push(writeCloseStatement(prepared.name));
    this.byText.clear();
    this.generation = generation;
  }

  private watch(on: 0 | 1): void {
    for (const type of TRANSLATED) this.watched[type] = on;
  }
}
