// Which WHERE conjuncts may move below a guarded subquery's OFFSET 0 fence
// (THREATS B10): comparisons `column op constant` (and IN lists) on an
// unmasked column whose operator is leakproof in pg_proc, from the WHERE of
// the query level the relation is in, for relations not on the nullable side
// of an outer join. Everything else stays above the fence.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { constantEnd, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import { child, list, nameList, nodeOf, num, str, stringValue, type Body, type RangeVarBody } from './tree.js';

/** [start, end) string indices of a conjunct in the user's text. */
export interface Span { start: number; end: number }

const comparisonOps = new Set(['=', '<', '>', '<=', '>=', '<>']);

export interface QueryFrame {
  /** RangeVar bodies of this SELECT that are inner-joined (not on a nullable side). */
  inner: Set<Body>;
  /** The FROM list is exactly one relation: unqualified columns are its own. */
  single: boolean;
  /** Top-level AND conjuncts of WHERE. */
  conjuncts: unknown[];
  /**
   * The conjuncts by the relation name their column names ('' when
   * unqualified), and how many inner relations go by each name; built on
   * first use so each guarded relation looks only at its own conjuncts
   * (THREATS E2: a scan of every conjunct per relation is quadratic).
   */
  byName?: { conjuncts: Map<string, unknown[]>; relations: Map<string, number> };
}

export function queryFrame(body: Body): QueryFrame {
  const inner = new Set<Body>();
  const collect = (item: unknown) => {
    const n = nodeOf(item);
    if (!n) return;
    if (n[0] === 'RangeVar') inner.add(n[1]);
    else if (n[0] === 'JoinExpr' && str(n[1], 'jointype') === 'JOIN_INNER') { collect(n[1].larg); collect(n[1].rarg); }
  };
  const from = list(body, 'fromClause');
  from.forEach(collect);
  const conjuncts: unknown[] = [];
  const flatten = (e: unknown) => {
    const n = nodeOf(e);
    if (n && n[0] === 'BoolExpr' && str(n[1], 'boolop') === 'AND_EXPR') list(n[1], 'args').forEach(flatten);
    else if (e) conjuncts.push(e);
  };
  flatten(body.whereClause);
  return { inner, single: from.length === 1 && nodeOf(from[0])?.[0] === 'RangeVar', conjuncts };
}

/** The column a conjunct compares (the IN list's left side, or either side of an operator), if any. */
function comparedColumn(conjunct: unknown): Body | undefined {
  const e = nodeOf(conjunct);
  if (!e || e[0] !== 'A_Expr') return undefined;
  const left = nodeOf(e[1].lexpr);
  if (left?.[0] === 'ColumnRef') return left[1];
  const right = nodeOf(e[1].rexpr);
  return str(e[1], 'kind') === 'AEXPR_OP' && right?.[0] === 'ColumnRef' ? right[1] : undefined;
}

function indexConjuncts(frame: QueryFrame): NonNullable<QueryFrame['byName']> {
  const conjuncts = new Map<string, unknown[]>();
  for (const conjunct of frame.conjuncts) {
    const col = comparedColumn(conjunct);
    if (!col) continue;
    const fields = list(col, 'fields');
    const name = fields.length === 2 ? stringValue(fields[0]) : fields.length === 1 ? '' : undefined;
    if (name === undefined) continue;
    const same = conjuncts.get(name);
    if (same) same.push(conjunct); else conjuncts.set(name, [conjunct]);
  }
  const relations = new Map<string, number>();
  for (const rv of frame.inner) {
    const alias = str(child(rv, 'alias') ?? {}, 'aliasname') ?? str(rv, 'relname') ?? '';
    relations.set(alias, (relations.get(alias) ?? 0) + 1);
  }
  return { conjuncts, relations };
}

/** The type Postgres gives a constant or parameter compared with a column of `columnType`; undefined = don't push. */
function constantType(node: [string, Body], columnType: string): string | undefined {
  if (node[0] === 'ParamRef') return columnType;
  if (node[0] !== 'A_Const') return undefined;
  const c = node[1];
  if (c.ival !== undefined) return 'int4';
  if (c.sval !== undefined) return columnType; // an untyped literal takes the column's type
  const f = str(child(c, 'fval') ?? {}, 'fval');
  if (f === undefined) return undefined;
  if (!/^[0-9]+$/.test(f)) return 'numeric';
  return BigInt(f) <= 9223372036854775807n ? 'int8' : 'numeric';
}

/**
 * Top-level WHERE conjuncts `col op constant` on this relation's unmasked
 * columns whose operator is leakproof: safe to evaluate below the
 * ownership filter, and moved there so an index can serve them (B10).
 */
export function pushableConjuncts(text: SqlText, catalog: Catalog, frame: QueryFrame | undefined, node: Body, rv: RangeVarBody, rel: CatalogRelation, table: TableProfile): Span[] {
  if (!frame || !frame.inner.has(node) || !rel.columns) return [];
  // An alias column list renames the columns: `b(x, o, id)` makes b.id another column. Leave it alone.
  if (list(child(node, 'alias') ?? {}, 'colnames').length) return [];
  const alias = rv.alias ?? rv.relname;
  const byName = frame.byName ?? (frame.byName = indexConjuncts(frame));
  // Two inner relations of one name: Postgres refuses the statement anyway; moving nothing keeps the work linear.
  if ((byName.relations.get(alias) ?? 0) > 1) return [];
  const out: Span[] = [];
  // A single relation is the frame's only one: its conjuncts are all of them, in order.
  const candidates = frame.single ? frame.conjuncts : byName.conjuncts.get(alias) ?? [];
  for (const conjunct of candidates) {
    const e = nodeOf(conjunct);
    if (e && e[0] === 'A_Expr' && str(e[1], 'kind') === 'AEXPR_IN') {
      const span = pushableIn(text, catalog, e[1], alias, frame.single, rel, table);
      if (span) out.push(span);
      continue;
    }
    if (!e || e[0] !== 'A_Expr' || str(e[1], 'kind') !== 'AEXPR_OP') continue;
    const op = nameList(e[1], 'name');
    if (op.length !== 1 || !comparisonOps.has(op[0])) continue;
    const left = nodeOf(e[1].lexpr);
    const right = nodeOf(e[1].rexpr);
    if (!left || !right) continue;
    const colFirst = left[0] === 'ColumnRef';
    const [colNode, valNode] = colFirst ? [left, right] : [right, left];
    if (colNode[0] !== 'ColumnRef') continue;
    const fields = list(colNode[1], 'fields').map((f) => stringValue(f));
    if (fields.some((f) => f === undefined) || fields.length > 2) continue;
    if (fields.length === 2 ? fields[0] !== alias : !frame.single) continue;
    const column = rel.columns.find((c) => c.name === fields[fields.length - 1]);
    if (!column || table.masks.has(column.name)) continue;
    const valueType = constantType(valNode, column.baseType);
    if (!valueType) continue;
    const key = colFirst ? `${op[0]}(${column.baseType},${valueType})` : `${op[0]}(${valueType},${column.baseType})`;
    if (!catalog.leakproofOperators.has(key)) continue;
    const colStart = text.index(num(colNode[1], 'location') ?? -1);
    const colEnd = qualifiedNameEnd(text.text, colStart, fields.length);
    const valStart = text.index(num(valNode[1], 'location') ?? -1);
    const valEnd = constantEnd(text.text, valStart);
    if (colEnd === -1 || valEnd === -1) continue;
    const [a, b] = colFirst ? [colEnd, valStart] : [valEnd, colStart];
    if (text.text.slice(a, b).replace(/\s+/g, '') !== op[0]) continue; // comments or casts in between: leave it
    out.push({ start: Math.min(colStart, valStart), end: Math.max(colEnd, valEnd) });
  }
  return out;
}

/** `col IN (c1, c2, …)` / `col NOT IN (…)` with constants and a leakproof = / <>: pushable like a comparison. */
function pushableIn(text: SqlText, catalog: Catalog, e: Body, alias: string, single: boolean, rel: CatalogRelation, table: TableProfile): Span | undefined {
  const op = nameList(e, 'name');
  const col = nodeOf(e.lexpr);
  const rexpr = nodeOf(e.rexpr);
  const items = Array.isArray(e.rexpr) ? e.rexpr : rexpr?.[0] === 'List' ? list(rexpr[1], 'items') : [];
  if (op.length !== 1 || !col || col[0] !== 'ColumnRef' || items.length === 0 || !rel.columns) return undefined;
  const fields = list(col[1], 'fields').map((f) => stringValue(f));
  if (fields.some((f) => f === undefined) || fields.length > 2) return undefined;
  if (fields.length === 2 ? fields[0] !== alias : !single) return undefined;
  const column = rel.columns.find((c) => c.name === fields[fields.length - 1]);
  if (!column || table.masks.has(column.name)) return undefined;
  let last = -1;
  for (const item of items) {
    const node = nodeOf(item);
    const type = node ? constantType(node, column.baseType) : undefined;
    if (!node || !type || !catalog.leakproofOperators.has(`${op[0]}(${column.baseType},${type})`)) return undefined;
    last = constantEnd(text.text, text.index(num(node[1], 'location') ?? -1));
    if (last === -1) return undefined;
  }
  const close = skipSpace(text.text, last);
  if (text.text.charCodeAt(close) !== 41) return undefined;
  const start = text.index(num(col[1], 'location') ?? -1);
  return qualifiedNameEnd(text.text, start, fields.length) === -1 ? undefined : { start, end: close + 1 };
}
