// Walks a parsed statement the way PostgreSQL resolves it (CTE scopes, then
// search_path), decides for every relation and function whether it may be
// used, and records the text edits that replace each protected relation with
// its guarded subquery. The first refusal wins; nothing is forwarded then.
// This is the core: the walk, name resolution and the decisions every class
// of statement shares; each class has its module (analyze-queries.ts,
// analyze-writes.ts, analyze-utility.ts, analyze-calls.ts).
import type { CatalogRelation } from '../catalog/types.js';
import { resolveRelation } from '../catalog/resolve.js';
import type { TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { PgError } from '../errors.js';
import { governingTable } from './protection.js';
import { refusedSystemRelations, systemRelationRefusal } from './functions.js';
import { qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import { quoteIdent } from './replacement.js';
import type { QueryFrame } from './pushdown.js';
import type { Node, RawStmt, SelectStmt } from '@pgsql/types';
import { fenceless, fenceView, type FenceView } from './fence.js';
import type { GuardedParts } from './replacement.js';
import { SKIP, asNode, visit, type RangeVarBody, type Visitor } from './tree.js';
import {
  emptyScope, refuse, Refusal, systemSchemas,
  type Analysis, type AnalysisContext, type AnalyzerState, type Scope, type StatementObjectEffect,
} from './analyze-context.js';
import { columnRef, read, select } from './analyze-queries.js';
import { dml } from './analyze-writes.js';
import * as utility from './analyze-utility.js';
import { cast, func, functionalNotation, operator } from './analyze-calls.js';

export type { Analysis, AnalysisContext, Edit, Findings, StatementRules } from './analyze-context.js';

/** Statement types that are read-only or session bookkeeping; anything not here and not handled is refused. */
const passStatements = new Set(['VariableShowStmt', 'UnlistenStmt']);

export class Analyzer implements AnalyzerState {
  readonly result: Analysis = {
    // Not cacheable by shape until every statement of the message has said it is (run).
    edits: [], cteReferences: [], shapeSafe: false, relations: new Set(), applied: [], searchPaths: [], objects: [],
  };
  searchPathKnown: boolean;
  stmtEnd = 0;
  readonly frames: QueryFrame[] = [];
  protectedUsed = false;
  constantDependent = false;
  /** Index of the statement being analysed within its message. */
  private statementIndex = 0;
  /** The statement being analysed when it is a SELECT (the only kind whose guards may go unfenced), and what fence.ts found in it. */
  private plainSelect: SelectStmt | undefined;
  private fenceFindings: FenceView | undefined;

  /** @param searchPathKnown false while a change of search_path is still in flight upstream */
  constructor(readonly text: SqlText, readonly ctx: AnalysisContext, readonly searchPath: string[], searchPathKnown = true) {
    this.searchPathKnown = searchPathKnown;
  }

  /** Analyses every statement of a parse result; returns the analysis (with `refusal` set on refusal). */
  run(stmts: unknown[]): Analysis {
    try {
      let byShape = true;
      for (const [index, raw] of stmts.entries()) {
        this.statementIndex = index;
        const { stmt, stmt_location: loc = 0, stmt_len: len = 0 } = raw as RawStmt;
        let end = len ? this.text.index(loc + len) : this.text.text.length;
        while (end > 0 && /[\s;]/.test(this.text.text[end - 1])) end--;
        this.stmtEnd = end;
        this.result.searchPaths.push(this.searchPath);
        if (stmt && !this.statement(stmt)) byShape = false;
      }
      this.result.shapeSafe = byShape && !this.constantDependent;
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.result.refusal = err.error;
      this.result.edits.length = 0;
    }
    return this.result;
  }

  /**
   * Analyses one statement. The answer says whether its outcome may be
   * cached by shape, i.e. holds for every text differing only in constants:
   * each kind answers explicitly, so one added later is not cached by shape
   * unless it says so.
   */
  statement(stmt: Node | undefined): boolean {
    const node = asNode(stmt);
    if (!node) return false;
    const [type, body] = node;
    switch (type) {
      case 'SelectStmt':
        if (body.intoClause) refuse('SELECT INTO creates a table and is not allowed through pgveil');
        this.plainSelect = body;
        try {
          select(this, body, emptyScope);
        } finally {
          this.plainSelect = this.fenceFindings = undefined;
        }
        return true;
      case 'InsertStmt': case 'UpdateStmt': case 'DeleteStmt': case 'MergeStmt':
        dml(this, type, body, emptyScope);
        return true;
      // Utility statements: their effects (objects, settings, transactions) are the session's to track, per text.
      case 'ExplainStmt': utility.explain(this, body); return false;
      case 'DeclareCursorStmt': utility.declareCursor(this, body); return false;
      case 'PrepareStmt': utility.prepare(this, body); return false;
      case 'ExecuteStmt': utility.execute(this, body); return false;
      case 'FetchStmt': utility.fetch(this, body); return false;
      case 'TransactionStmt': utility.transaction(this, body); return false;
      case 'DeallocateStmt': utility.deallocate(this, body); return false;
      case 'ClosePortalStmt': utility.closePortal(this, body); return false;
      case 'CopyStmt': utility.copy(this, body); return false;
      case 'VariableSetStmt': utility.set(this, body); return false;
      case 'DiscardStmt': utility.discard(this, body); return false;
      case 'ListenStmt': utility.listen(this, body); return false;
      case 'NotifyStmt': return utility.notify();
    }
    if (passStatements.has(type)) return false;
    refuse(`statement type ${type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()} is not allowed through pgveil`);
  }

  object(effect: StatementObjectEffect): void {
    this.result.objects.push({ ...effect, statement: this.statementIndex } as Analysis['objects'][number]);
  }

  // ── the generic walk ─────────────────────────────────────────────────────

  /** The scope the walker's handlers see: walk() sets it and puts back the outer one. */
  private walkScope: Scope = emptyScope;
  private readonly walker: Visitor = {
    SelectStmt: (body) => { select(this, body, this.walkScope); return SKIP; },
    InsertStmt: (body) => { dml(this, 'InsertStmt', body, this.walkScope); return SKIP; },
    UpdateStmt: (body) => { dml(this, 'UpdateStmt', body, this.walkScope); return SKIP; },
    DeleteStmt: (body) => { dml(this, 'DeleteStmt', body, this.walkScope); return SKIP; },
    MergeStmt: (body) => { dml(this, 'MergeStmt', body, this.walkScope); return SKIP; },
    RangeVar: (body) => { read(this, body, this.walkScope); return SKIP; },
    FuncCall: (body) => { func(this, body); },
    A_Expr: (body) => { operator(this, body.name); },
    TypeCast: (body) => { cast(this, body); },
    SubLink: (body) => { operator(this, body.operName); },
    ColumnRef: (body) => { functionalNotation(this, body.fields?.slice(1) ?? []); columnRef(this, body); return SKIP; },
    A_Indirection: (body) => { functionalNotation(this, body.indirection ?? []); },
    RangeTableSample: (body) => {
      const rel = asNode(body.relation);
      if (rel?.[0] !== 'RangeVar') return undefined;
      // The clause's arguments first: its text may move into a system relation's guard.
      this.walk([body.args, body.repeatable], this.walkScope);
      read(this, rel[1], this.walkScope, body);
      return SKIP;
    },
  };

  /** Walks a subtree with the shared visitor: statements, relations, calls and operators each go to their module. */
  walk(value: unknown, scope: Scope): void {
    const outer = this.walkScope;
    this.walkScope = scope;
    try {
      visit(value, this.walker);
    } finally {
      this.walkScope = outer;
    }
  }

  // ── names and decisions ──────────────────────────────────────────────────

  resolve(schema: string | undefined, name: string, location: number): CatalogRelation {
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

  tableOf(rel: CatalogRelation): TableProfile | undefined {
    return governingTable(this.ctx.profile, this.ctx.catalog, rel);
  }

  checkUnprotected(rel: CatalogRelation): void {
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

  markProtected(rel: CatalogRelation, table: TableProfile): void {
    this.protectedUsed = true;
    this.result.applied.push(`${table.relation}: ${table.filters.length} ownership filter(s), ${table.masks.size} mask(s)${rel.rootOid !== rel.oid ? ` (via ${rel.schema}.${rel.name})` : ''}`);
  }

  fenceless(table: TableProfile, parts: GuardedParts): boolean {
    if (!this.plainSelect) return false;
    // Worked out on the statement's first protected relation: statements without one never pay for it.
    const view = this.fenceFindings ??= fenceView(this.plainSelect, this.ctx.catalog, this.searchPath, this.ctx.parameterTypes);
    if (view.valueDependent) this.constantDependent = true;
    return fenceless(view, table, parts.filtersHaveSubqueries);
  }

  // ── edits every class of statement uses ──────────────────────────────────

  /**
   * An unprotected relation named without its schema is sent with the schema
   * pgveil resolved it to (threat A2): should pgveil's idea of search_path
   * ever differ from upstream's, the statement reads what pgveil checked or
   * fails, and a prepared statement cannot re-resolve to another relation.
   */
  qualify(rv: RangeVarBody, rel: CatalogRelation): void {
    if (rv.schemaname) return;
    const start = this.text.index(rv.location);
    const end = qualifiedNameEnd(this.text.text, start, 1);
    if (end === -1) refuse(`cannot schema-qualify ${rv.relname}`);
    const schema = rel.schema.startsWith('pg_temp_') ? 'pg_temp' : quoteIdent(rel.schema);
    this.result.edits.push({ start, end, text: `${schema}.${this.text.text.slice(start, end)}`, generated: false });
  }

  nameEnd(rv: RangeVarBody, start: number): number {
    const sql = this.text.text;
    const parts = 1 + (rv.schemaname ? 1 : 0) + (rv.catalogname ? 1 : 0);
    const end = qualifiedNameEnd(sql, start, parts);
    if (end === -1) refuse('cannot rewrite this reference to a protected table');
    const star = skipSpace(sql, end);
    return sql.charCodeAt(star) === 42 && rv.inh ? star + 1 : end;
  }
}
