// What the parts of the analysis share (analyze.ts drives them, the
// analyze-*.ts modules handle one class of statement each): the result they
// fill, the Analyzer state they read and change, the refusal they throw and
// the CTE scopes they resolve names in.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { PgError, SqlState } from '../errors.js';
import type { ObjectEffect } from './effects.js';
import type { QueryFrame } from './pushdown.js';
import type { GuardedParts } from './replacement.js';
import type { SqlText } from './sql-text.js';
import type { Node } from '@pgsql/types';
import type { RangeVarBody } from './tree.js';

export interface Edit {
  /** String indices into the original text. */
  start: number;
  end: number;
  text: string;
  /** True for pgveil's guarded subqueries (the verifier allows protected references only inside them). */
  generated: boolean;
  /** Original text copied verbatim into `text`: [from, from+length) of the original sits at `to` in `text`. */
  moved?: Array<{ from: number; to: number; length: number }>;
  /**
   * For generated edits: the same construct with a trivial subquery in place
   * of the guarded one. The verifier parses the text with these stand-ins —
   * the user's text around them parses exactly as in the real rewrite, and
   * the parse costs about as much as the original's, not the much longer
   * rewrite's.
   */
  skeleton?: string;
}

/** The policy file's rules about statements themselves (the same for every user). */
export interface StatementRules {
  /** policy.functions.allow: user-defined functions and operators users may call ("schema.name", "schema.*"). */
  allowedFunctions: ReadonlySet<string>;
  /** policy.channels.listen: channels LISTEN may name. */
  listenChannels: ReadonlySet<string>;
}

export interface AnalysisContext extends StatementRules {
  profile: Profile;
  catalog: Catalog;
  /** `pgveil:<user>:` — kept in front of any application_name the user sets (C1). */
  applicationNamePrefix?: string;
  /** A Parse's declared parameter types by position ('' = not declared); absent when none is. */
  parameterTypes?: readonly string[];
  /** The (cached) pieces of the guarded subquery of a protected relation. */
  replacement(rel: CatalogRelation, table: TableProfile, inh: boolean): GuardedParts;
}

/** What the analysis finds out about a message that every outcome of it carries (rewrite.ts). */
export interface Findings {
  /** False when the outcome depends on a constant's value or on session state: never share it across texts of one shape. */
  shapeSafe: boolean;
  /** Canonical names of the relations the statement uses (for audit and explain). */
  relations: Set<string>;
  /** Names of the policy rules that applied (for explain). */
  applied: string[];
  /** Set when a statement may change search_path; `value` when the new value is known. */
  searchPathChange?: { value?: string[] };
  /**
   * Prepared statements and cursors the statements create (PREPARE, DECLARE),
   * use (EXECUTE, FETCH, MOVE) or drop (DEALLOCATE, CLOSE, DISCARD ALL), per
   * statement: the session records them once upstream confirms, and refuses
   * using one made under an older policy or search_path (see effects.ts).
   */
  objects: ObjectEffect[];
  /** Some statement ends a transaction or rolls back to a savepoint (may undo a SET). */
  endsTransaction?: boolean;
  /** The rewrite embeds the session's user (application_name): never share it through the cache, not even across users. */
  perUser?: boolean;
  /** Some relation was named without its schema: the outcome depends on search_path (a prepared statement of it is re-checked when it changes). */
  usesSearchPath?: boolean;
}

export interface Analysis extends Findings {
  edits: Edit[];
  /** String indices of unqualified references the analysis resolved to a CTE. */
  cteReferences: number[];
  refusal?: PgError;
  /** The search_path each statement was resolved with, in statement order. */
  searchPaths: string[][];
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** An object effect of the statement being analysed (its index is added). */
export type StatementObjectEffect = DistributiveOmit<ObjectEffect, 'statement'>;

/**
 * The Analyzer as the analyze-*.ts modules see it: the state of the walk
 * over one message and the steps every class of statement uses.
 */
export interface AnalyzerState {
  readonly text: SqlText;
  readonly ctx: AnalysisContext;
  readonly result: Analysis;
  /** The search_path the message's names resolve with. */
  readonly searchPath: string[];
  /** False while a change of search_path may be in flight: unqualified names are then refused. */
  searchPathKnown: boolean;
  /** String index just past the current statement's last token. */
  stmtEnd: number;
  /** The SELECTs being walked, innermost last: where a guarded relation's predicates may be pushed from. */
  readonly frames: QueryFrame[];
  /** A protected relation was guarded (EXPLAIN resets it around its statement to see whether that one did). */
  protectedUsed: boolean;
  /** A decision depended on a constant's value (an argument repeated in the rewrite, a set_config): cache by full text only. */
  constantDependent: boolean;

  /** Analyses one statement; returns whether its kind may be cached by shape (every kind says so explicitly). */
  statement(stmt: Node | undefined): boolean;
  /** Walks any part of the tree, resolving relations and checking calls. */
  walk(value: unknown, scope: Scope): void;
  resolve(schema: string | undefined, name: string, location: number): CatalogRelation;
  /** The policy rules governing a relation, if any. */
  tableOf(rel: CatalogRelation): TableProfile | undefined;
  /** Rules for relations the policy does not list. */
  checkUnprotected(rel: CatalogRelation): void;
  /** Sends an unqualified name with the schema pgveil resolved it to. */
  qualify(rv: RangeVarBody, rel: CatalogRelation): void;
  /** End of a RangeVar's name, including a trailing inheritance `*`. */
  nameEnd(rv: RangeVarBody, start: number): number;
  markProtected(rel: CatalogRelation, table: TableProfile): void;
  /** Whether this relation's guarded subquery may go without its OFFSET 0 fence in the statement being analysed (fence.ts). */
  fenceless(table: TableProfile, parts: GuardedParts): boolean;
  object(effect: StatementObjectEffect): void;
}

export const systemSchemas: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema']);

/** What a guarded subquery looks like to the verifier's parse (see Edit.skeleton). */
export const STAND_IN = '(SELECT 1 OFFSET 0)';

/** Thrown on the first refusal: the analysis stops, and nothing is forwarded. */
export class Refusal extends Error {
  constructor(readonly error: PgError) { super(error.message); }
}

export function refuse(message: string, hint?: string): never {
  throw new Refusal(new PgError(SqlState.InsufficientPrivilege, message, {
    hint: hint ?? 'pgveil refuses statements it cannot prove safe under the active policy.',
  }));
}

/** CTE names visible at a point of the tree, innermost first. */
export class Scope {
  constructor(private readonly names: ReadonlySet<string>, private readonly parent?: Scope) {}
  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }
  with(names: Iterable<string>): Scope {
    return new Scope(new Set(names), this);
  }
}
export const emptyScope = new Scope(new Set());
