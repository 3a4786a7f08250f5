// Whether a guarded subquery may go without its OFFSET 0 fence (threat B10
// in docs/threat-model.md). Without the fence PostgreSQL flattens the
// subquery: the ownership filter joins the relation's other scan conditions
// and the planner may order them as it likes, use an index for ORDER BY …
// LIMIT, and join in any order. That is safe only when nothing the user wrote
// can be evaluated on a row before the filter has passed it, so the fence
// stays unless all of this holds for the whole SELECT:
// - every condition (WHERE, JOIN … ON, HAVING, at every level) is built
//   only of columns, constants, parameters, AND/OR/NOT, IS [NOT] NULL and
//   operators that are leakproof in pg_proc for the operand types, found
//   without guessing; a column taken from a subquery, CTE or VALUES output
//   counts only if that output is such an expression too (an outer
//   condition on it can be pushed down into the subquery), so an output
//   like lower(x) or sum(x) is fine until a condition outside uses it;
// - every FROM item is a relation, a join or a subquery;
// and for the relation itself: its filters hold no subquery (one could
// become a join, run after the user's conditions) and the statement names
// none of its masked columns and no whole row of anything (a flattened mask
// is computed per output row instead of per scanned row, and a condition on
// it would run before the filter).
import { UNTYPED_COLUMN, type Catalog } from '../catalog/types.js';
import { resolveRelation } from '../catalog/resolve.js';
import { leakproofFor, numberType } from './pushdown.js';
import { parameterType, UNKNOWN_TYPE } from '../protocol/parameter-types.js';
import type { TableProfile } from '../policy/types.js';
import type { A_Const, A_Expr, ColumnRef, CommonTableExpr, JoinExpr, SelectStmt, TypeCast } from '@pgsql/types';
import { asNode, listItems, names, stringValue, visit } from './tree.js';

/** What one SELECT statement allows, computed once per statement on its first protected relation. */
export interface FenceView {
  /** Every condition is leakproof-evident (and every FROM item one fence.ts can follow). */
  quiet: boolean;
  /** The decision rested on a number the parser reads as int8 or numeric by its value (one kind to the shape cache): cache by full text. */
  valueDependent: boolean;
  /** Column names the statement names anywhere (the last field of each reference). */
  columns: Set<string>;
  /** The statement names a whole row (`t`, `t.*`, `*`). */
  wholeRow: boolean;
}

/** SQL keyword values and the type PostgreSQL gives them. */
const VALUE_FUNCTION_TYPES: Record<string, string> = {
  SVFOP_CURRENT_DATE: 'date', SVFOP_CURRENT_TIMESTAMP: 'timestamptz', SVFOP_CURRENT_TIMESTAMP_N: 'timestamptz',
  SVFOP_LOCALTIMESTAMP: 'timestamp', SVFOP_LOCALTIMESTAMP_N: 'timestamp',
};

/**
 * Column name → type (UNRESOLVED when pgveil cannot tell without guessing). A subquery's unnamed outputs get
 * names PostgreSQL makes up: listed under UNNAMED, they make any other name of the entry unresolved.
 */
type Columns = ReadonlyMap<string, string>;
const UNNAMED = '\u0000';
/** A FROM entry of one query level: its columns when pgveil knows them (undefined = unknown, so nothing typed through it). */
interface Entry { alias: string; columns: Columns | undefined }

interface Level { entries: Entry[]; outer: Level | undefined }

/** Not leakproof-evident: the walk stops and the fences stay (a plain object: no stack trace to capture on a miss). */
const LOUD = Object.freeze({ loud: true });
const loud = (): never => { throw LOUD; };
/** An untyped literal or parameter: it takes the other operand's type. */
const UNKNOWN = '';
/** A column pgveil cannot type without guessing: no operator on it is evident. */
const UNRESOLVED = UNTYPED_COLUMN;
/** Marks a number's type as chosen by its value (int8 or numeric; leakproofFor in pushdown.ts). */
const BY_VALUE = '!';

/** Builtin types a literal may be cast to (the cast runs when PostgreSQL parses the statement). */
const LITERAL_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'text', 'varchar', 'bpchar', 'name', 'date', 'timestamp', 'timestamptz', 'time', 'timetz', 'interval', 'bool', 'uuid', 'bytea']);
const COMPARISONS = new Set(['=', '<>', '<', '>', '<=', '>=']);

export function fenceView(stmt: SelectStmt, catalog: Catalog, searchPath: readonly string[], parameterTypes: readonly string[] = []): FenceView {
  const view: FenceView = { quiet: true, valueDependent: false, columns: new Set(), wholeRow: false };
  const ctes = new Map<string, number>();
  const aliases = new Set<string>();
  const single: string[] = [];
  visit(stmt, {
    CommonTableExpr: (b) => { if (b.ctename) ctes.set(b.ctename, (ctes.get(b.ctename) ?? 0) + 1); },
    RangeVar: (b) => {
      aliases.add(b.alias?.aliasname ?? b.relname ?? '');
      if (b.alias?.colnames?.length) view.wholeRow = true; // `t(a, b, c)` names the columns anew: any could be a masked one
    },
    RangeSubselect: (b) => { aliases.add(b.alias?.aliasname ?? ''); },
    JoinExpr: (b) => { aliases.add(b.alias?.aliasname ?? ''); },
    ColumnRef: (b) => {
      const fields = b.fields ?? [];
      const name = stringValue(fields[fields.length - 1]);
      if (name === undefined) view.wholeRow = true; // t.* or *
      else {
        view.columns.add(name);
        if (fields.length === 1) single.push(name);
      }
    },
  });
  // A bare name that is also a FROM item's name may be that item's whole row.
  if (single.some((name) => aliases.has(name))) view.wholeRow = true;
  const walker = new QualWalker(catalog, searchPath, ctes, parameterTypes);
  try {
    walker.select(stmt, undefined, true);
  } catch (err) {
    if (err !== LOUD) throw err;
    view.quiet = false;
  }
  view.valueDependent = walker.dependence.seen;
  return view;
}

/** Whether this relation's subquery may go without the fence in a statement with `view`. */
export function fenceless(view: FenceView, table: TableProfile, filtersHaveSubqueries: boolean): boolean {
  if (!view.quiet || filtersHaveSubqueries) return false;
  if (table.masks.size === 0) return true;
  if (view.wholeRow) return false;
  for (const column of table.masks.keys()) if (view.columns.has(column)) return false;
  return true;
}

class QualWalker {
  constructor(
    private readonly catalog: Catalog,
    private readonly searchPath: readonly string[],
    /** CTE name → how many WITH lists of the statement define it. */
    private readonly ctes: ReadonlyMap<string, number>,
    private readonly parameterTypes: readonly string[],
  ) {}

  /** A CTE's output columns, for a name only one WITH list defines (so no scope rules are needed to tell which). */
  private readonly cteColumns = new Map<string, Columns | undefined>();

  /** Checks one SELECT; returns its output columns where they are plain columns of known type (for a FROM subquery). */
  select(s: SelectStmt, outer: Level | undefined, outermost: boolean): Columns | undefined {
    for (const cte of s.withClause?.ctes ?? []) {
      const n = asNode(cte);
      const query = n?.[0] === 'CommonTableExpr' ? asNode(n[1].ctequery) : undefined;
      if (query?.[0] !== 'SelectStmt') loud(); // a data-modifying CTE
      const columns = this.select((query as ['SelectStmt', SelectStmt])[1], outer, false);
      const { ctename = '', aliascolnames } = (n as ['CommonTableExpr', CommonTableExpr])[1];
      if (this.ctes.get(ctename) === 1 && !aliascolnames?.length) this.cteColumns.set(ctename, columns);
    }
    if (s.op && s.op !== 'SETOP_NONE') {
      if (!s.larg || !s.rarg) loud();
      this.select(s.larg as SelectStmt, outer, false);
      this.select(s.rarg as SelectStmt, outer, false);
      return undefined;
    }
    const level: Level = { entries: [], outer };
    for (const item of s.fromClause ?? []) this.from(item, level);
    // VALUES outputs are never typed (the select returns no columns for them): any condition on one keeps the fence.
    for (const row of s.valuesLists ?? []) for (const v of listItems(row) ?? loud()) this.output(v, level);
    this.condition(s.whereClause, level);
    this.condition(s.havingClause, level);
    const output = new Map<string, string>();
    let opaque = s.valuesLists !== undefined && s.valuesLists.length > 0;
    const add = (name: string, type: string) => output.set(name, output.has(name) ? UNRESOLVED : type);
    for (const target of s.targetList ?? []) {
      const t = asNode(target);
      const value = t?.[0] === 'ResTarget' ? t[1].val : undefined;
      const named = t?.[0] === 'ResTarget' ? t[1].name : undefined;
      if (outermost) { this.nested(value, level); continue; }
      const ref = asNode(value);
      if (ref?.[0] !== 'ColumnRef') {
        add(named ?? UNNAMED, this.output(value, level));
        continue;
      }
      const fields = ref[1].fields ?? [];
      const last = stringValue(fields[fields.length - 1]);
      if (last !== undefined) { add(named ?? last, columnType(ref[1], level)); continue; }
      // `*` or `t.*`: the columns of every entry of this level, or of the one named.
      const qualifier = fields.length === 2 ? stringValue(fields[0]) : undefined;
      for (const e of level.entries) {
        if (qualifier !== undefined && e.alias !== qualifier) continue;
        if (!e.columns) opaque = true;
        else for (const [name, type] of e.columns) add(name, type);
      }
    }
    // Subqueries anywhere else (ORDER BY, LIMIT, …) run above the scans; their own conditions still count.
    this.nested([s.sortClause, s.groupClause, s.limitCount, s.limitOffset, s.distinctClause, s.windowClause], level);
    return opaque ? undefined : output;
  }

  private from(item: unknown, level: Level): void {
    const n = asNode(item) ?? loud();
    switch (n[0]) {
      case 'RangeVar': {
        const rv = n[1];
        const alias = rv.alias?.aliasname ?? rv.relname ?? '';
        if (rv.catalogname || rv.alias?.colnames?.length) {
          level.entries.push({ alias, columns: undefined });
          return;
        }
        if (!rv.schemaname && this.ctes.has(rv.relname ?? '')) {
          level.entries.push({ alias, columns: this.cteColumns.get(rv.relname ?? '') });
          return;
        }
        const rel = resolveRelation(this.catalog, rv.schemaname, rv.relname ?? '', this.searchPath);
        level.entries.push({ alias, columns: rel?.columnTypes });
        return;
      }
      case 'JoinExpr': {
        const j: JoinExpr = n[1];
        if (j.isNatural || j.usingClause?.length) loud(); // columns compared by operators pgveil would have to guess
        this.from(j.larg, level);
        this.from(j.rarg, level);
        if (j.alias) level.entries.push({ alias: j.alias.aliasname ?? '', columns: undefined });
        this.condition(j.quals, level);
        return;
      }
      case 'RangeSubselect': {
        const q = asNode(n[1].subquery);
        if (q?.[0] !== 'SelectStmt') loud();
        const columns = this.select((q as ['SelectStmt', SelectStmt])[1], level, false);
        level.entries.push({ alias: n[1].alias?.aliasname ?? '', columns: n[1].alias?.colnames?.length ? undefined : columns });
        return;
      }
      default: loud();
    }
  }

  /** A boolean condition: each part evident, comparisons typed. */
  private condition(e: unknown, level: Level): void {
    if (e === undefined) return;
    const n = asNode(e) ?? loud();
    if (n[0] === 'BoolExpr') { for (const arg of n[1].args ?? []) this.condition(arg, level); return; }
    this.typed(e, level);
  }

  /**
   * A subquery output that is not a plain column: its type when it is evident. Anything else is fine as long
   * as no condition outside uses it (an outer condition could be pushed down onto it): its column is then
   * UNRESOLVED, and every condition on an UNRESOLVED column keeps the fence.
   */
  private output(e: unknown, level: Level): string {
    try {
      return this.typed(e, level);
    } catch (err) {
      if (err !== LOUD) throw err;
      this.nested(e, level); // a subquery in it still has conditions of its own
      return UNRESOLVED;
    }
  }

  /** Walks an expression that runs above the scans for the SELECTs nested in it. */
  private nested(e: unknown, level: Level): void {
    visit(e, { SelectStmt: (b) => { this.select(b, level, false); return 1; } });
  }

  /** The type of an evident expression (UNKNOWN for an untyped literal, parameter or unresolved column); throws LOUD when not evident. */
  private typed(e: unknown, level: Level): string {
    const n = asNode(e) ?? loud();
    switch (n[0]) {
      case 'A_Const': return this.constant(n[1]);
      case 'ParamRef': {
        // A declared type is the parameter's own (PostgreSQL picks the operator for it); else it takes its context's.
        const declared = parameterType(this.parameterTypes, n[1].number);
        return declared === UNKNOWN_TYPE ? loud() : declared || UNKNOWN;
      }
      case 'ColumnRef': {
        // Even `t.c IS NULL` or a bare boolean `t.c` would run a flattened mask's expression if c were one.
        const type = columnType(n[1], level);
        return type === UNRESOLVED ? loud() : type;
      }
      case 'TypeCast': return castType(n[1], this.catalog);
      case 'SQLValueFunction': return VALUE_FUNCTION_TYPES[n[1].op ?? ''] ?? loud();
      case 'BoolExpr': for (const arg of n[1].args ?? []) this.typed(arg, level); return 'bool';
      case 'NullTest': this.typed(n[1].arg, level); return 'bool';
      case 'A_Expr': this.operator(n[1], level); return 'bool';
      default: return loud();
    }
  }

  private constant(c: A_Const): string {
    if (c.ival !== undefined) return 'int4';
    if (c.sval !== undefined || c.isnull) return UNKNOWN;
    if (c.boolval !== undefined) return 'bool';
    return numberType(c.fval?.fval ?? loud()) + BY_VALUE;
  }

  /** Comparisons, IN lists, BETWEEN and IS [NOT] DISTINCT FROM whose operators are leakproof for the operand types. */
  private operator(e: A_Expr, level: Level): void {
    const left = this.typed(e.lexpr, level);
    switch (e.kind) {
      case 'AEXPR_OP': this.leakproof(operatorName(e.name), left, this.typed(e.rexpr, level)); return;
      case 'AEXPR_DISTINCT': case 'AEXPR_NOT_DISTINCT': this.leakproof('=', left, this.typed(e.rexpr, level)); return;
      case 'AEXPR_IN': {
        const op = operatorName(e.name);
        for (const item of listItems(e.rexpr) ?? loud()) this.leakproof(op, left, this.typed(item, level));
        return;
      }
      case 'AEXPR_BETWEEN': case 'AEXPR_NOT_BETWEEN': {
        const [low, high] = listItems(e.rexpr) ?? loud();
        this.leakproof('>=', left, this.typed(low, level));
        this.leakproof('<=', left, this.typed(high, level));
        return;
      }
      default: loud();
    }
  }

  /** An untyped literal or parameter takes the other side's type, as PostgreSQL resolves it. */
  private leakproof(op: string, left: string, right: string): void {
    // A user-defined operator of the name could be the one PostgreSQL picks (on a domain, say).
    if (!COMPARISONS.has(op) || this.catalog.userOperators.has(op)) loud();
    const l = left || right;
    const r = right || left;
    if (!l) loud();
    const [lt, lv] = [l.replace(BY_VALUE, ''), l.endsWith(BY_VALUE)];
    const [rt, rv] = [r.replace(BY_VALUE, ''), r.endsWith(BY_VALUE)];
    if (lv && rv) loud(); // two numbers: nothing of a row in it, and nothing worth the bookkeeping
    const quiet = lv
      ? leakproofFor(this.catalog, (t) => `${op}(${t},${rt})`, lt, true, this.dependence)
      : leakproofFor(this.catalog, (t) => `${op}(${lt},${t})`, rt, rv, this.dependence);
    if (!quiet) loud();
  }

  readonly dependence = { seen: false };
}

function operatorName(list: unknown[] | undefined): string {
  const n = names(list);
  if (n.length === 1 || (n.length === 2 && n[0] === 'pg_catalog')) return n[n.length - 1];
  return loud();
}


/** A cast of a literal or parameter: PostgreSQL converts it when it parses the statement, not per row. */
function castType(c: TypeCast, catalog: Catalog): string {
  const arg = asNode(c.arg);
  const literal = arg?.[0] === 'ParamRef' || (arg?.[0] === 'A_Const' && (arg[1].sval !== undefined || arg[1].isnull));
  const type = c.typeName;
  if (!literal || !type || type.arrayBounds?.length || type.setof || type.pct_type) loud();
  const n = names(type?.names);
  const name = n[n.length - 1];
  // pg_catalog's own, or unqualified with no cast or domain check of user code behind the name (threat A5).
  const builtin = n.length === 2 ? n[0] === 'pg_catalog' : n.length === 1 && !catalog.typeFunctions.has(name);
  return builtin && LITERAL_TYPES.has(name) ? name : loud();
}

/** The column's type when the reference resolves, without guessing, to a relation whose columns pgveil read. */
function columnType(ref: ColumnRef, level: Level): string {
  const fields = ref.fields ?? [];
  const parts = fields.map((f) => stringValue(f));
  if (parts.some((p) => p === undefined) || parts.length > 2) return UNRESOLVED;
  const name = parts[parts.length - 1] as string;
  for (let l: Level | undefined = level; l; l = l.outer) {
    if (parts.length === 2) {
      const entry = l.entries.find((e) => e.alias === parts[0]);
      if (entry) return entry.columns?.get(name) ?? UNRESOLVED;
      continue;
    }
    // Unqualified: only when every entry of the level is known and exactly one has the name.
    if (l.entries.some((e) => !e.columns)) return UNRESOLVED;
    const found = l.entries.map((e) => e.columns?.get(name)).filter((c) => c !== undefined);
    if (found.length > 1) return UNRESOLVED;
    if (found.length === 1) return found[0];
    // Not found here: it may still be an unnamed output's made-up name, which would win over an outer column.
    if (l.entries.some((e) => e.columns?.has(UNNAMED))) return UNRESOLVED;
  }
  return UNRESOLVED;
}

