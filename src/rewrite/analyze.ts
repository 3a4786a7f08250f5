// Walks a parsed statement the way PostgreSQL resolves it (CTE scopes, then
// search_path), decides for every relation and function whether it may be
// used, and records the text edits that replace each protected relation with
// its guarded subquery. The first refusal wins; nothing is forwarded then.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import { descendantsOf, effectiveSearchPath, functionCandidates, functionKey, parseSearchPath, resolveRelation } from '../catalog/resolve.js';
import type { Profile, TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { PgError, SqlState } from '../errors.js';
import { governingTable, hasOwnRulesBelow, readGuard } from './protection.js';
import { isUtf8, refusedFunctions, refusedSystemRelations, settableParameters, sizeFunctions, systemRelationRefusal } from './functions.js';
import { viewFunctionRules } from './view-functions.js';
import { closeParens, constantEnd, keywordBefore, matchingParen, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import { composeGuarded, quoteIdent, type GuardedParts } from './replacement.js';
import { systemGuard } from './system-guards.js';
import { hiddenRelations, visibilityCondition } from './catalog-visibility.js';
import { pushableConjuncts, queryFrame, type QueryFrame } from './pushdown.js';
import { rewriteCopyFrom, rewriteInsert, rewriteWrite, WriteRefusal } from './writes.js';
import { child, list, nameList, nodeOf, num, rangeVar, str, stringValue, type Body } from './tree.js';
import { firstArgumentEnd, tableSampleClause } from './clause-text.js';
import { scanSync } from 'libpg-query';
import type { ObjectEffect } from './effects.js';
import { lastAtOrBefore } from './splice.js';

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

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
  /** The (cached) pieces of the guarded subquery of a protected relation. */
  replacement(rel: CatalogRelation, table: TableProfile, inh: boolean): GuardedParts;
}

export interface Analysis {
  edits: Edit[];
  /** String indices of unqualified references the analysis resolved to a CTE. */
  cteReferences: number[];
  refusal?: PgError;
  /** False when a decision depended on a constant's value: cache by full text only. */
  shapeSafe: boolean;
  /** Canonical names of the relations the statement uses (for audit and explain). */
  relations: Set<string>;
  /** Names of the policy rules that applied (for explain). */
  applied: string[];
  /** The search_path each statement was resolved with, in statement order. */
  searchPaths: string[][];
  /** Set when a statement may change search_path; `value` when the new value is known. */
  searchPathChange?: { value?: string[] };
  /**
   * Prepared statements and cursors the statements create (PREPARE, DECLARE),
   * use (EXECUTE, FETCH, MOVE) or drop (DEALLOCATE, CLOSE, DISCARD ALL): the
   * session records them once upstream confirms, and refuses using one made
   * under an older policy or search_path.
   */
  objects: ObjectEffect[];
  /** Some statement ends a transaction or rolls back to a savepoint (may undo a SET). */
  endsTransaction?: boolean;
  /** The rewrite embeds the session's user: never share it through the cache. */
  perUser?: boolean;
  /** Some relation was named without its schema: the outcome depends on search_path. */
  usesSearchPath?: boolean;
}

const systemSchemas = new Set(['pg_catalog', 'information_schema']);

/** Statement types that are read-only or session bookkeeping; anything not here and not handled is refused. */
const passStatements = new Set(['VariableShowStmt', 'UnlistenStmt']);

class Refusal extends Error {
  constructor(readonly error: PgError) { super(error.message); }
}

function refuse(message: string, hint?: string): never {
  throw new Refusal(new PgError(SqlState.InsufficientPrivilege, message, {
    hint: hint ?? 'pgveil refuses statements it cannot prove safe under the active policy.',
  }));
}

/** CTE names visible at a point of the tree, innermost first. */
class Scope {
  constructor(private readonly names: ReadonlySet<string>, private readonly parent?: Scope) {}
  has(name: string): boolean {
    return this.names.has(name) || (this.parent?.has(name) ?? false);
  }
  with(names: Iterable<string>): Scope {
    return new Scope(new Set(names), this);
  }
}
const emptyScope = new Scope(new Set());

export class Analyzer {
  readonly result: Analysis = {
    edits: [], cteReferences: [], shapeSafe: true, relations: new Set(), applied: [], searchPaths: [], objects: [],
  };
  private searchPath: string[];
  private searchPathKnown = true;
  /** Index of the statement being analysed within its message. */
  private statementIndex = 0;
  /** String index just past the current statement's last token. */
  private stmtEnd = 0;
  /** The SELECTs being walked, innermost last: where a guarded relation's predicates may be pushed from. */
  private readonly frames: QueryFrame[] = [];
  private protectedUsed = false;
  /** String indices where the text's tokens (not comments, not `;`) end: scanned once per message, not per write. */
  private tokenEnds?: Float64Array;

  /** @param searchPathKnown false while a change of search_path is still in flight upstream */
  constructor(private readonly text: SqlText, private readonly ctx: AnalysisContext, searchPath: string[], searchPathKnown = true) {
    this.searchPath = searchPath;
    this.searchPathKnown = searchPathKnown;
  }

  /** Analyses every statement of a parse result; returns the analysis (with `refusal` set on refusal). */
  run(stmts: unknown[]): Analysis {
    try {
      for (const [index, raw] of stmts.entries()) {
        this.statementIndex = index;
        const stmt = child(raw as Body, 'stmt');
        const loc = num(raw as Body, 'stmt_location') ?? 0;
        const len = num(raw as Body, 'stmt_len') ?? 0;
        let end = len ? this.text.index(loc + len) : this.text.text.length;
        while (end > 0 && /[\s;]/.test(this.text.text[end - 1])) end--;
        this.stmtEnd = end;
        this.result.searchPaths.push(this.searchPath);
        if (stmt) this.statement(stmt);
      }
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.result.refusal = err.error;
      this.result.edits.length = 0;
    }
    return this.result;
  }

  private statement(stmt: Body): void {
    const node = nodeOf(stmt);
    if (!node) return;
    const [type, body] = node;
    switch (type) {
      case 'SelectStmt':
        if (child(body, 'intoClause')) refuse('SELECT INTO creates a table and is not allowed through pgveil');
        this.select(body, emptyScope);
        return;
      case 'InsertStmt': case 'UpdateStmt': case 'DeleteStmt': case 'MergeStmt':
        this.dml(type, body, emptyScope);
        return;
      case 'ExplainStmt': this.explain(body); return;
      case 'DeclareCursorStmt':
        this.result.shapeSafe = false;
        // CURSOR_OPT_HOLD (0x20): a WITH HOLD cursor outlives its transaction.
        this.object({ op: 'create', kind: 'portal', name: str(body, 'portalname') ?? '', holdable: ((num(body, 'options') ?? 0) & 0x20) !== 0 });
        this.walk(body.query, emptyScope);
        return;
      case 'PrepareStmt':
        this.result.shapeSafe = false;
        this.object({ op: 'create', kind: 'statement', name: str(body, 'name') ?? '', holdable: false });
        this.statement(child(body, 'query') ?? {});
        return;
      case 'ExecuteStmt':
        this.result.shapeSafe = false;
        if (!this.searchPathKnown) {
          refuse('cannot EXECUTE a prepared statement while search_path is changing', 'Postgres would re-resolve its names under the new search_path; send the SET separately first.');
        }
        this.object({ op: 'use', kind: 'statement', name: str(body, 'name') ?? '' });
        this.walk(body.params, emptyScope);
        this.searchPathKnown = false; // the prepared statement may set it (the session knows whether it does)
        return;
      case 'FetchStmt':
        this.result.shapeSafe = false;
        this.object({ op: 'use', kind: 'portal', name: str(body, 'portalname') ?? '' });
        this.searchPathKnown = false; // the cursor's query may set it (the session knows whether it does)
        return;
      case 'TransactionStmt': {
        this.result.shapeSafe = false;
        const kind = str(body, 'kind') ?? '';
        // Ending a transaction or rolling back to a savepoint undoes SET LOCAL / SETs made inside it.
        if (/COMMIT|ROLLBACK|PREPARE/.test(kind)) {
          this.result.endsTransaction = true;
          this.searchPathKnown = false;
        }
        return;
      }
      case 'DeallocateStmt':
        this.result.shapeSafe = false;
        this.object({ op: 'drop', kind: 'statement', name: body.isall === true || !str(body, 'name') ? null : (str(body, 'name') as string) });
        return;
      case 'ClosePortalStmt':
        this.result.shapeSafe = false;
        this.object({ op: 'drop', kind: 'portal', name: str(body, 'portalname') ?? null });
        return;
      case 'CopyStmt': this.result.shapeSafe = false; this.copy(body); return;
      case 'VariableSetStmt': this.result.shapeSafe = false; this.set(body); return;
      case 'DiscardStmt':
        this.result.shapeSafe = false;
        // Only DISCARD ALL drops prepared statements and cursors and resets settings; PLANS, SEQUENCES and TEMP do neither.
        if (str(body, 'target') === 'DISCARD_ALL') {
          this.object({ op: 'drop', kind: 'statement', name: null });
          this.object({ op: 'drop', kind: 'portal', name: null });
          this.changeSearchPath(undefined);
        }
        return;
      case 'ListenStmt':
        this.result.shapeSafe = false;
        if (this.ctx.listenChannels.has(str(body, 'conditionname') ?? '')) return;
        refuse('LISTEN is not allowed through pgveil on this channel', 'Notifications are a channel between sessions (THREATS C4); a DBA can list channels under channels.listen in the policy.');
      case 'NotifyStmt':
        refuse('NOTIFY is not allowed through pgveil', 'Notifications are a channel between sessions (THREATS C4).');
    }
    if (passStatements.has(type)) { this.result.shapeSafe = false; return; }
    refuse(`statement type ${type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()} is not allowed through pgveil`);
  }

  private object(effect: DistributiveOmit<ObjectEffect, 'statement'>): void {
    this.result.objects.push({ ...effect, statement: this.statementIndex } as ObjectEffect);
  }

  // ── queries ──────────────────────────────────────────────────────────────

  private select(body: Body, scope: Scope): void {
    const inner = this.withClause(body, scope);
    this.frames.push(queryFrame(body));
    try {
      for (const [key, value] of Object.entries(body)) {
        // FOR UPDATE/SHARE OF names FROM items (aliases), which Postgres matches itself: nothing to resolve.
        if (key === 'withClause' || key === 'lockingClause') continue;
        this.walk(value, inner);
      }
    } finally {
      this.frames.pop();
    }
  }

  /** Scope of a statement's WITH list; also walks the CTE bodies with the scope each one sees. */
  private withClause(body: Body, scope: Scope): Scope {
    const withClause = child(body, 'withClause');
    if (!withClause) return scope;
    const ctes = list(withClause, 'ctes').map((c) => nodeOf(c)?.[1] ?? {});
    const names = ctes.map((c) => str(c, 'ctename') ?? '');
    const recursive = withClause.recursive === true;
    ctes.forEach((cte, i) => {
      // A recursive WITH sees all its names; a plain one only the earlier ones.
      this.walk(cte.ctequery, scope.with(recursive ? names : names.slice(0, i)));
    });
    return scope.with(names);
  }

  private dml(type: string, body: Body, scope: Scope): void {
    const inner = this.withClause(body, scope);
    const target = child(body, 'relation');
    if (target) this.writeTarget(type, target, body);
    for (const [key, value] of Object.entries(body)) {
      if (key === 'withClause' || key === 'relation') continue;
      this.walk(value, inner);
    }
  }

  /** UPDATE/DELETE under writes: allow: see writes.ts. */
  private guardedWrite(type: string, body: Body, target: Body, rel: CatalogRelation, table: TableProfile): void {
    if (this.ctx.catalog.writeGuarded?.has(rel.oid)) refuse(`writes to ${rel.name} are not allowed through pgveil: it has triggers, rules or defaults that run functions`);
    const rv = rangeVar(target);
    if (type === 'DeleteStmt' && this.ctx.catalog.referencedRelations?.has(rel.oid)) {
      refuse(`DELETE from ${rel.name} is not allowed through pgveil: other tables reference it by foreign key`, 'A foreign-key violation would reveal rows of other orgs that reference yours.');
    }
    if (type === 'CopyStmt' && rv.inh && hasOwnRulesBelow(this.ctx.profile, this.ctx.catalog, rel, descendantsOf(this.ctx.catalog, rel.oid))) {
      refuse(`cannot copy into ${rel.name} with its partitions: some of them have policy rules of their own`, 'Copy into the partitions one by one.');
    }
    const uniqueColumns = this.ctx.catalog.uniqueColumns?.get(rel.oid) ?? new Set<string>();
    // The rewrite appends after the statement's last token: trailing comments must not swallow it.
    this.tokenEnds ??= tokenEnds(this.text);
    this.stmtEnd = this.tokenEnds[lastAtOrBefore(this.tokenEnds, this.stmtEnd)] ?? 0;
    try {
      const edits = type === 'CopyStmt'
        ? rewriteCopyFrom({ body, rel, table, stmtEnd: this.stmtEnd, uniqueColumns })
        : type === 'InsertStmt'
        ? rewriteInsert({ text: this.text, body, rv, rel, table, stmtEnd: this.stmtEnd, uniqueColumns })
        : rewriteWrite({
          text: this.text, verb: type === 'UpdateStmt' ? 'UPDATE' : 'DELETE', body, rv, rel, table,
          parts: this.ctx.replacement(rel, table, rv.inh), stmtEnd: this.stmtEnd, uniqueColumns,
        });
      this.result.edits.push(...edits);
    } catch (err) {
      if (err instanceof WriteRefusal) refuse(err.message);
      throw err;
    }
    this.markProtected(rel, table);
  }

  private writeTarget(type: string, target: Body, body?: Body): void {
    const rv = rangeVar(target);
    const rel = this.resolve(rv.schemaname, rv.relname, rv.location);
    const verb = type.replace('Stmt', '').toUpperCase();
    const key = canonicalRelation(rel.schema, rel.name);
    this.result.relations.add(key);
    if (systemSchemas.has(rel.schema)) refuse(`${verb} on system catalog ${rel.name} is not allowed through pgveil`);
    const table = this.tableOf(rel);
    if (table) {
      if (!table.access) refuse(`permission denied for table ${rel.name}`);
      if (this.ctx.profile.writes === 'deny') {
        refuse(`permission denied for table ${rel.name}`, `${verb} on tables protected by the policy is not allowed (defaults.writes: deny).`);
      }
      if ((type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'InsertStmt' || type === 'CopyStmt') && body) {
        this.guardedWrite(type, body, target, rel, table);
        return;
      }
      refuse(`${verb} on protected table ${rel.name} is not supported with writes: allow in this pgveil version`, 'INSERT, UPDATE, DELETE and COPY FROM are rewritten; MERGE into protected tables is refused.');
    }
    this.checkUnprotected(rel);
    this.qualify(rv, rel);
    if (this.ctx.catalog.writeGuarded?.has(rel.oid)) {
      refuse(`${verb} on ${rel.name} is not allowed through pgveil: it has triggers, rules or defaults that run functions`, 'Such code runs with the service role\'s rights, outside the policy.');
    }
  }

  /**
   * EXPLAIN of a statement over a protected table is refused: ANALYZE counts
   * other orgs' rows ("Rows Removed by Filter"), estimates come from
   * statistics of every org's rows, and even the plan's shape (bitmap or
   * index scan) changes with how often a value occurs in other orgs
   * (THREATS B5, B7). EXPLAIN of anything else passes.
   */
  private explain(body: Body): void {
    this.result.shapeSafe = false;
    const query = child(body, 'query') ?? {};
    if (nodeOf(query)?.[0] === 'ExecuteStmt') {
      refuse('EXPLAIN EXECUTE is not allowed through pgveil', 'pgveil cannot see which tables the prepared statement reads.');
    }
    const before = this.protectedUsed;
    this.protectedUsed = false;
    this.statement(query);
    if (this.protectedUsed) {
      refuse('EXPLAIN of a statement that reads a protected table is not allowed through pgveil',
        'Plans and estimates are computed from statistics over every org\'s rows; a DBA can inspect the rewrite with `pgveil explain`.');
    }
    this.protectedUsed = this.protectedUsed || before;
  }

  private copy(body: Body): void {
    if (body.is_program === true || str(body, 'filename') !== undefined) {
      refuse('COPY to or from a server file or program is not allowed through pgveil', 'Use COPY … TO STDOUT / FROM STDIN (psql: \\copy).');
    }
    const relation = child(body, 'relation');
    if (!relation) { this.walk(body.query, emptyScope); return; }
    if (body.is_from === true) { this.writeTarget('CopyStmt', relation, body); return; }
    const rv = rangeVar(relation);
    const rel = this.resolve(rv.schemaname, rv.relname, rv.location);
    const table = this.tableOf(rel);
    this.result.relations.add(canonicalRelation(rel.schema, rel.name));
    if (!table) { this.checkUnprotected(rel); this.qualify(rv, rel); return; }
    if (!table.access) refuse(`permission denied for table ${rel.name}`);
    if (rv.inh && hasOwnRulesBelow(this.ctx.profile, this.ctx.catalog, rel, descendantsOf(this.ctx.catalog, rel.oid))) {
      refuse(`cannot copy ${rel.name} with its partitions: some of them have policy rules of their own`, `Copy the partitions one by one.`);
    }
    // COPY t [(cols)] TO STDOUT  →  COPY (SELECT cols FROM <guarded> AS t) TO STDOUT
    const sql = this.text.text;
    const start = this.text.index(rv.location);
    let end = this.nameEnd(rv, start);
    const cols = nameList(body, 'attlist');
    if (cols.length) {
      const open = skipSpace(sql, end);
      const close = sql.indexOf(')', open);
      if (sql.charCodeAt(open) !== 40 || close === -1) refuse('cannot rewrite this COPY statement');
      end = close + 1;
    }
    const select = cols.length ? cols.map(quoteIdent).join(', ') : '*';
    const guarded = composeGuarded(this.ctx.replacement(rel, table, rv.inh), undefined, []);
    this.markProtected(rel, table);
    this.result.edits.push({
      start, end, text: `(SELECT ${select} FROM ${guarded} AS ${quoteIdent(rv.relname)})`, generated: true,
      skeleton: `(SELECT ${select} FROM ${STAND_IN} AS ${quoteIdent(rv.relname)})`,
    });
  }

  private set(body: Body): void {
    const name = (str(body, 'name') ?? '').toLowerCase();
    const kind = str(body, 'kind');
    if (kind === 'VAR_RESET_ALL') { this.changeSearchPath(undefined); return; }
    if (name === 'transaction' || name === 'session characteristics') return;
    if (!settableParameters.has(name)) refuse(`SET ${name} is not allowed through pgveil`, 'Only presentation and timeout settings (and search_path) may be changed.');
    if (name === 'application_name' && kind === 'VAR_SET_VALUE') { this.prefixApplicationName(list(body, 'args')[0]); return; }
    if (name === 'client_encoding') {
      const value = str(child(nodeOf(list(body, 'args')[0])?.[1] ?? {}, 'sval') ?? {}, 'sval');
      if (kind === 'VAR_SET_VALUE' && (value === undefined || !isUtf8(value))) refuse('pgveil supports only client_encoding UTF8');
      return;
    }
    if (name !== 'search_path') return;
    if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') { this.changeSearchPath(undefined); return; }
    const values = list(body, 'args').map((a) => {
      const c = nodeOf(a);
      return c && c[0] === 'A_Const' ? str(child(c[1], 'sval') ?? {}, 'sval') : undefined;
    });
    this.changeSearchPath(values.some((v) => v === undefined) ? undefined : (values as string[]));
  }

  /**
   * application_name upstream always starts with `pgveil:<user>:` so DBAs can
   * tell who runs what (SPEC §3); a user may change only the rest (C1).
   */
  private prefixApplicationName(arg: unknown): void {
    const prefix = this.ctx.applicationNamePrefix;
    if (!prefix) return;
    const c = nodeOf(arg);
    const value = c && c[0] === 'A_Const' ? str(child(c[1], 'sval') ?? {}, 'sval') : undefined;
    if (value === undefined) refuse('application_name can only be set to a constant through pgveil');
    const start = this.text.index(num((c as [string, Body])[1], 'location') ?? -1);
    const end = constantEnd(this.text.text, start);
    if (end === -1) refuse('cannot rewrite this application_name');
    const full = Buffer.from(prefix + value).subarray(0, 63).toString('utf8').replace(/\uFFFD$/, '');
    this.result.edits.push({ start, end, text: `'${full.replace(/'/g, "''")}'`, generated: false });
    this.result.perUser = true;
  }

  /**
   * A statement that may change search_path. Whether and when it takes
   * effect upstream is not knowable from the text — a set_config in a WHERE
   * false, a SET LOCAL undone by COMMIT — so the rest of the message treats
   * search_path as unknown (unqualified names refused), and the session
   * reads upstream's value again before trusting it.
   */
  private changeSearchPath(value: string[] | undefined): void {
    // pg_catalog listed after another schema would let that schema shadow the
    // functions and types pgveil's filters and masks use (THREATS C5).
    const catalogAt = value?.indexOf('pg_catalog') ?? -1;
    if (value && catalogAt > 0 && value.slice(0, catalogAt).some((s) => s !== 'pg_temp')) {
      refuse('search_path must not put another schema before pg_catalog', 'Leave pg_catalog out (it is then searched first) or list it first.');
    }
    this.result.searchPathChange = { value };
    this.searchPathKnown = false;
  }

  // ── the generic walk ─────────────────────────────────────────────────────

  private walk(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) { for (const v of value) this.walk(v, scope); return; }
    const node = nodeOf(value);
    if (!node) {
      if (value && typeof value === 'object') for (const v of Object.values(value)) this.walk(v, scope);
      return;
    }
    const [type, body] = node;
    switch (type) {
      case 'SelectStmt': this.select(body, scope); return;
      case 'InsertStmt': case 'UpdateStmt': case 'DeleteStmt': case 'MergeStmt': this.dml(type, body, scope); return;
      case 'RangeVar': this.read(body, scope); return;
      case 'FuncCall': this.func(body); break;
      case 'A_Expr': this.operator(body, 'name'); break;
      case 'TypeCast': this.cast(body); break;
      case 'SubLink': this.operator(body, 'operName'); break;
      case 'ColumnRef': this.functionalNotation(list(body, 'fields').slice(1)); this.columnRef(body); return;
      case 'A_Indirection': this.functionalNotation(list(body, 'indirection')); break;
      case 'RangeTableSample': {
        const rel = child(child(body, 'relation') ?? {}, 'RangeVar');
        if (!rel) break;
        // The clause's arguments first: its text may move into a system relation's guard.
        this.walk([body.args, body.repeatable], scope);
        this.read(rel, scope, body);
        return;
      }
    }
    for (const v of Object.values(body)) if (v && typeof v === 'object') this.walk(v, scope);
  }

  /** A relation read in FROM (or any other read position); `sample`: the TABLESAMPLE node around it. */
  private read(body: Body, scope: Scope, sample?: Body): void {
    const rv = rangeVar(body);
    if (rv.catalogname) refuse('cross-database references are not supported');
    if (!rv.schemaname && scope.has(rv.relname)) {
      this.result.cteReferences.push(this.text.index(rv.location));
      return;
    }
    const rel = this.resolve(rv.schemaname, rv.relname, rv.location);
    this.result.relations.add(canonicalRelation(rel.schema, rel.name));
    const table = readGuard(this.ctx.profile, this.ctx.catalog, rel, rv.inh);
    if (!table) {
      // Governed by rules that leave this user every row and value: read as it is (still not through a reader view).
      if (!this.tableOf(rel)) this.checkUnprotected(rel);
      const visible = systemSchemas.has(rel.schema)
        ? visibilityCondition(rel.schema, rel.name, hiddenRelations(this.ctx.profile, this.ctx.catalog))
        : undefined;
      const oids = this.ctx.catalog.protectedOids ?? [];
      let guard = systemGuard(this.ctx.catalog, rel, oids, visible);
      const clause = guard && sample ? tableSampleClause(this.text, sample) : undefined;
      if (clause === null) refuse(`cannot rewrite this TABLESAMPLE clause on ${rel.name}`);
      if (clause) guard = systemGuard(this.ctx.catalog, rel, oids, visible, clause.text);
      if (guard) this.systemEdit(rv, guard, clause ?? undefined);
      else this.qualify(rv, rel);
      return;
    }
    if (sample) refuse(`TABLESAMPLE on protected table ${rel.name} is not allowed`, 'Sample a subquery instead.');
    if (!table.access) refuse(`permission denied for table ${rel.name}`);
    if (rv.inh && hasOwnRulesBelow(this.ctx.profile, this.ctx.catalog, rel, descendantsOf(this.ctx.catalog, rel.oid))) {
      refuse(`cannot read ${rel.name} with its partitions here: some of them have policy rules of their own`, `Read the partitions one by one, or ${rel.name} with ONLY.`);
    }
    this.markProtected(rel, table);
    this.guardedEdit(body, rv, rel, table);
  }

  /**
   * A system relation replaced by its guard subquery (same alias rules as a
   * protected table). A TABLESAMPLE clause belongs to the relation, so it
   * moves inside the guard (a subquery cannot be sampled): the edit then runs
   * from the name to the clause's end, and the alias is written after the guard.
   */
  private systemEdit(rv: ReturnType<typeof rangeVar>, guard: string, clause?: { start: number; end: number; text: string }): void {
    if (!rv.inh) refuse(`cannot rewrite ONLY ${rv.relname}`);
    const start = this.text.index(rv.location);
    const end = clause ? clause.end : this.nameEnd(rv, start);
    const tableKw = clause ? undefined : keywordBefore(this.text.text, start, 'table');
    const prefix = tableKw && tableKw.parens === 0 ? 'SELECT * FROM ' : '';
    const alias = clause || !rv.alias ? ` AS ${quoteIdent(rv.alias ?? rv.relname)}` : '';
    let moved: Edit['moved'];
    if (clause) {
      if (this.result.edits.some((e) => e.start < clause.end && e.end > start)) refuse(`cannot rewrite this TABLESAMPLE clause on ${rv.relname}`);
      moved = [{ from: clause.start, to: prefix.length + guard.indexOf(clause.text), length: clause.text.length }];
    }
    this.result.edits.push({
      start: prefix ? (tableKw as { start: number }).start : start, end,
      text: `${prefix}${guard}${alias}`, generated: true, moved,
      skeleton: `${prefix}${STAND_IN}${alias}`,
    });
  }

  private guardedEdit(node: Body, rv: ReturnType<typeof rangeVar>, rel: CatalogRelation, table: TableProfile): void {
    const sql = this.text.text;
    const nameStart = this.text.index(rv.location);
    let start = nameStart;
    let end = this.nameEnd(rv, nameStart);
    let prefix = '';
    if (!rv.inh) {
      const only = keywordBefore(sql, nameStart, 'only');
      if (!only) refuse('cannot rewrite this reference to a protected table');
      start = only.start;
      if (only.parens) {
        end = closeParens(sql, end, only.parens);
        if (end === -1) refuse('cannot rewrite this reference to a protected table');
      }
    } else {
      const tableKw = keywordBefore(sql, nameStart, 'table');
      if (tableKw && tableKw.parens === 0) { start = tableKw.start; prefix = 'SELECT * FROM '; }
    }
    const parts = this.ctx.replacement(rel, table, rv.inh);
    const pushed = pushableConjuncts(this.text, this.ctx.catalog, this.frames[this.frames.length - 1], node, rv, rel, table);
    const alias = rv.alias ?? rv.relname;
    // Compose the subquery, noting where each moved predicate lands in it.
    let text = prefix + parts.head + (pushed.length ? ` AS ${quoteIdent(alias)}` : '');
    const moved: NonNullable<Edit['moved']> = [];
    if (pushed.length === 0) {
      text = prefix + composeGuarded(parts, undefined, []);
    } else {
      text += ` WHERE ${parts.filters.length ? parts.filters.join(' AND ') + ' AND ' : ''}`;
      pushed.forEach((p, i) => {
        text += `${i ? ' AND ' : ''}(`;
        moved.push({ from: p.start, to: text.length, length: p.end - p.start });
        text += `${sql.slice(p.start, p.end)})`;
        this.result.edits.push({ start: p.start, end: p.end, text: 'true', generated: false });
      });
      text += ' OFFSET 0)';
    }
    const aliasSuffix = rv.alias ? '' : ` AS ${quoteIdent(rv.relname)}`;
    this.result.edits.push({ start, end, text: text + aliasSuffix, generated: true, moved: moved.length ? moved : undefined, skeleton: prefix + STAND_IN + aliasSuffix });
  }


  /**
   * An unprotected relation named without its schema is sent with the schema
   * pgveil resolved it to (THREATS A2): should pgveil's idea of search_path
   * ever differ from upstream's, the statement reads what pgveil checked or
   * fails, and a prepared statement cannot re-resolve to another relation.
   */
  private qualify(rv: ReturnType<typeof rangeVar>, rel: CatalogRelation): void {
    if (rv.schemaname) return;
    const start = this.text.index(rv.location);
    const end = qualifiedNameEnd(this.text.text, start, 1);
    if (end === -1) refuse(`cannot schema-qualify ${rv.relname}`);
    const schema = rel.schema.startsWith('pg_temp_') ? 'pg_temp' : quoteIdent(rel.schema);
    this.result.edits.push({ start, end, text: `${schema}.${this.text.text.slice(start, end)}`, generated: false });
  }

  /** End of a RangeVar's name, including a trailing inheritance `*`. */
  private nameEnd(rv: ReturnType<typeof rangeVar>, start: number): number {
    const sql = this.text.text;
    const parts = 1 + (rv.schemaname ? 1 : 0) + (rv.catalogname ? 1 : 0);
    const end = qualifiedNameEnd(sql, start, parts);
    if (end === -1) refuse('cannot rewrite this reference to a protected table');
    const star = skipSpace(sql, end);
    return sql.charCodeAt(star) === 42 && rv.inh ? star + 1 : end;
  }

  /** `x.f` and `(x).f` may call a function f(x) when x has no column f (functional notation). */
  private functionalNotation(fields: unknown[]): void {
    for (const f of fields) {
      const name = stringValue(f);
      if (name !== undefined) this.checkUserFunction(undefined, name);
    }
  }

  /** `schema.table.column` pointing at a protected table is re-pointed at the guarded subquery's alias. */
  private columnRef(body: Body): void {
    const fields = list(body, 'fields');
    // pgveil's own aliases (the raw write target, the new rows) are not the user's to name (B9).
    if (fields.length > 1 && /^pgveil_/.test(stringValue(fields[0]) ?? '')) refuse('names starting with pgveil_ are reserved by pgveil');
    if (fields.length < 3) return;
    const names = fields.map((f) => stringValue(f));
    const schema = names[names.length - 3];
    const relname = names[names.length - 2];
    if (schema === undefined || relname === undefined) return;
    if (fields.length > 3) refuse('cross-database column references are not supported');
    const rel = resolveRelation(this.ctx.catalog, schema, relname, this.searchPath);
    if (!rel || !this.tableOf(rel)) return;
    const start = this.text.index(num(body, 'location') ?? -1);
    const tableEnd = qualifiedNameEnd(this.text.text, start, 2);
    const dot = skipSpace(this.text.text, tableEnd);
    if (tableEnd === -1 || this.text.text.charCodeAt(dot) !== 46) refuse('cannot rewrite this column reference');
    this.result.edits.push({ start, end: dot + 1, text: `${quoteIdent(relname)}.`, generated: false });
  }

  private func(body: Body): void {
    const names = nameList(body, 'funcname');
    const fn = names[names.length - 1];
    const schema = names.length > 1 ? names[names.length - 2] : undefined;
    if (schema === 'pgveil') refuse(`function ${names.join('.')} is pgveil's own and cannot be called directly`, 'THREATS B8.');
    const rules = viewFunctionRules(this.ctx.catalog);
    const behind = rules.refused.get(fn);
    const reason = refusedFunctions.get(fn)
      ?? (behind ? `it returns the rows of pg_catalog.${behind.view}, which is refused: ${behind.reason}` : undefined)
      ?? ((fn.startsWith('pg_stat_get_') && !rules.allowedStats.has(fn)) || fn.startsWith('pg_stat_reset') ? 'it shows or resets per-table, per-row or per-session statistics' : undefined);
    if (reason) refuse(`function ${fn} is not allowed through pgveil: ${reason}`);
    if (fn === 'set_config') this.setConfig(body);
    this.checkUserFunction(schema, fn, true);
    if (sizeFunctions.has(fn) && (!schema || schema === 'pg_catalog')) this.guardSize(body);
  }

  /**
   * `pg_table_size(x)` and friends answer NULL for protected relations, their
   * indexes and TOAST (B5), so psql `\dt+` keeps working.
   */
  private guardSize(body: Body): void {
    const oids = this.ctx.catalog.protectedOids ?? [];
    if (!oids.length) return;
    if (JSON.stringify(body.args ?? []).includes('"SubLink"')) refuse('relation-size functions with a subquery argument are not allowed through pgveil');
    const sql = this.text.text;
    const start = this.text.index(num(body, 'location') ?? -1);
    const open = sql.indexOf('(', start);
    const end = open === -1 ? -1 : matchingParen(sql, open);
    if (end === -1) refuse('cannot rewrite this relation-size call');
    const firstEnd = firstArgumentEnd(this.text, open, end, list(body, 'args'));
    if (firstEnd === -1) refuse('cannot rewrite this relation-size call');
    const first = sql.slice(open + 1, firstEnd);
    this.result.shapeSafe = false; // the argument text is repeated
    this.result.edits.push({
      start, end, generated: false,
      text: `(CASE WHEN ((${first})::pg_catalog.regclass::pg_catalog.oid) OPERATOR(pg_catalog.=) ANY ('{${oids.join(',')}}'::pg_catalog.oid[]) THEN NULL ELSE ${sql.slice(start, end)} END)`,
    });
  }

  /**
   * Functions outside pg_catalog/information_schema may run dynamic SQL or
   * read a protected table behind pgveil's back (THREATS A5, B10): refused
   * unless policy.functions.allow lists them. Any overload on the path could
   * be the one Postgres picks, so every candidate must be allowed.
   */
  private checkUserFunction(schema: string | undefined, fn: string, mustExist = false): void {
    const candidates = functionCandidates(this.ctx.catalog, schema, fn, this.searchPath);
    if (mustExist && candidates.length === 0 && this.ctx.catalog.functionSchemas) {
      // Unknown to the catalog (created since it was read?): Postgres would say it does not exist, or run unchecked code.
      throw new Refusal(new PgError('42883', `function ${schema ? `${schema}.` : ''}${fn} does not exist`, {
        hint: 'pgveil checks functions against the catalog it read at the last policy load; a new function needs a reload.',
      }));
    }
    for (const candidate of candidates) {
      if (systemSchemas.has(candidate)) continue;
      const exact = this.ctx.allowedFunctions.has(`${candidate}.${fn}`);
      if (!exact && this.ctx.catalog.readers.get(functionKey(candidate, fn))?.length) {
        refuse(`function ${candidate}.${fn} reads a protected table and is not allowed through pgveil`, 'Ask the DBA to cover it in the policy.');
      }
      if (!exact && !this.ctx.allowedFunctions.has(`${candidate}.*`)) {
        refuse(`function ${candidate}.${fn} is not allowed through pgveil`, 'Functions outside pg_catalog must be listed under functions.allow in the policy.');
      }
    }
  }

  /** A cast may run a user function: a cast WITH FUNCTION, or a domain's CHECK constraint (A5). */
  private cast(body: Body): void {
    const names = nameList(child(body, 'typeName') ?? {}, 'names');
    const type = names[names.length - 1];
    for (const fn of this.ctx.catalog.typeFunctions?.get(type) ?? []) {
      const schema = fn.slice(0, fn.indexOf('.'));
      if (this.ctx.allowedFunctions.has(fn) || this.ctx.allowedFunctions.has(`${schema}.*`)) continue;
      refuse(`a cast to ${type} runs function ${fn}, which is not allowed through pgveil`, 'Functions outside pg_catalog must be listed under functions.allow in the policy.');
    }
  }

  /** User-defined operators are functions too. */
  private operator(body: Body, key: string): void {
    const names = nameList(body, key);
    const op = names[names.length - 1];
    const schemas = this.ctx.catalog.userOperators?.get(op);
    if (!op || !schemas) return;
    const schema = names.length > 1 ? names[names.length - 2] : undefined;
    const path = schema ? [schema] : effectiveSearchPath(this.ctx.catalog, this.searchPath);
    for (const s of path) {
      if (!schemas.has(s) || this.ctx.allowedFunctions.has(`${s}.${op}`) || this.ctx.allowedFunctions.has(`${s}.*`)) continue;
      refuse(`operator ${s}.${op} is not allowed through pgveil`, 'Operators outside pg_catalog must be listed under functions.allow in the policy.');
    }
  }

  private setConfig(body: Body): void {
    this.result.shapeSafe = false;
    const [nameArg, valueArg] = list(body, 'args');
    const constant = (a: unknown) => {
      const c = nodeOf(a);
      return c && c[0] === 'A_Const' ? str(child(c[1], 'sval') ?? {}, 'sval') : undefined;
    };
    const name = constant(nameArg)?.toLowerCase();
    if (!name || !settableParameters.has(name)) refuse('set_config of this setting is not allowed through pgveil', 'Only presentation and timeout settings (and search_path) may be changed.');
    if (name === 'client_encoding') {
      const value = constant(valueArg);
      if (value === undefined || !isUtf8(value)) refuse('pgveil supports only client_encoding UTF8');
    }
    if (name === 'application_name') this.prefixApplicationName(valueArg);
    if (name === 'search_path') {
      const value = constant(valueArg);
      this.changeSearchPath(value === undefined ? undefined : parseSearchPath(value));
    }
  }

  // ── decisions ────────────────────────────────────────────────────────────

  private resolve(schema: string | undefined, name: string, location: number): CatalogRelation {
    if (!schema) this.result.usesSearchPath = true;
    if (!schema && !this.searchPathKnown) {
      refuse(`cannot resolve "${name}": search_path is being changed in this message`, 'Schema-qualify the name, or send the SET separately.');
    }
    const rel = resolveRelation(this.ctx.catalog, schema, name, this.searchPath);
    if (!rel) {
      const shown = schema ? `${schema}.${name}` : name;
      throw new Refusal(new PgError('42P01', `relation "${shown}" does not exist`, { position: location >= 0 ? this.text.index(location) + 1 : undefined }));
    }
    return rel;
  }

  private tableOf(rel: CatalogRelation): TableProfile | undefined {
    return governingTable(this.ctx.profile, this.ctx.catalog, rel);
  }

  /** Rules for relations the policy does not list. */
  private checkUnprotected(rel: CatalogRelation): void {
    if (systemSchemas.has(rel.schema)) {
      const reason = systemRelationRefusal(rel.name);
      if (reason) refuse(`permission denied for ${rel.schema}.${rel.name}: ${reason}`);
      return;
    }
    if (refusedSystemRelations.has(rel.name) && rel.name.startsWith('pg_stat_statements')) {
      refuse(`permission denied for ${rel.name}: it shows statement text that can carry other users' filters`);
    }
    if (rel.schema === 'pgveil') refuse(`permission denied for ${rel.schema}.${rel.name}`);
    if (this.ctx.catalog.readers.get(String(rel.oid))?.length) {
      refuse(`permission denied for ${rel.kind === 'sequence' ? 'sequence' : 'view'} ${rel.name}: it reads a protected table`, 'Ask the DBA to cover it in the policy.');
    }
    if (this.ctx.profile.unlistedRelations === 'deny') {
      refuse(`permission denied for table ${rel.name}`, 'The policy lists the relations that may be used (defaults.unlistedRelations: deny).');
    }
  }

  private markProtected(rel: CatalogRelation, table: TableProfile): void {
    this.protectedUsed = true;
    this.result.applied.push(`${table.relation}: ${table.filters.length} ownership filter(s), ${table.masks.size} mask(s)${rel.rootOid !== rel.oid ? ` (via ${rel.schema}.${rel.name})` : ''}`);
  }
}

/** Ascending string indices just past each token that is not a comment or `;`. */
function tokenEnds(text: SqlText): Float64Array {
  const ends: number[] = [];
  for (const t of scanSync(text.text).tokens) {
    if (t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT' || t.tokenName === 'ASCII_59') continue;
    ends.push(text.index(t.end));
  }
  return Float64Array.from(ends);
}

/** What a guarded subquery looks like to the verifier's parse (see Edit.skeleton). */
const STAND_IN = '(SELECT 1 OFFSET 0)';
