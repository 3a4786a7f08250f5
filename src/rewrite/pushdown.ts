// Which WHERE conjuncts may move below a guarded subquery's OFFSET 0 fence
// (threat B10 in docs/threat-model.md): comparisons `column op constant` (and IN lists) on an
// unmasked column whose operator is leakproof in pg_proc, from the WHERE of
// the query level the relation is in, for relations not on the nullable side
// of an outer join. Everything else stays above the fence.
import type { Catalog, CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { constantEnd, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import type { A_Expr, ColumnRef, Node, RangeVar, SelectStmt } from '@pgsql/types';
import { asNode, listItems, names, stringValue, type RangeVarBody, type TypedNode } from './tree.js';
import { parameterType, UNKNOWN_TYPE } from '../protocol/parameter-types.js';

/** [start, end) string indices of a conjunct in the user's text. */
export interface Span { start: number; end: number }

const comparisonOps = new Set(['=', '<', '>', '<=', '>=', '<>']);

export interface QueryFrame {
  /** RangeVar bodies of this SELECT that are inner-joined (not on a nullable side). */
  inner: Set<RangeVar>;
  /** The FROM list is exactly one relation: unqualified columns are its own. */
  single: boolean;
  /** Top-level AND conjuncts of WHERE. */
  conjuncts: Node[];
  /**
   * The conjuncts by the relation name their column names ('' when
   * unqualified), and how many inner relations go by each name; built on
   * first use so each guarded relation looks only at its own conjuncts
   * (threat E2: a scan of every conjunct per relation is quadratic).
   */
  byName?: { conjuncts: Map<string, Node[]>; relations: Map<string, number> };
}

export function queryFrame(body: SelectStmt): QueryFrame {
  const inner = new Set<RangeVar>();
  const collect = (item: Node | undefined) => {
    const n = asNode(item);
    if (!n) return;
    if (n[0] === 'RangeVar') inner.add(n[1]);
    else if (n[0] === 'JoinExpr' && n[1].jointype === 'JOIN_INNER') { collect(n[1].larg); collect(n[1].rarg); }
  };
  const from = body.fromClause ?? [];
  from.forEach((item) => collect(item));
  const conjuncts: Node[] = [];
  const flatten = (e: Node | undefined) => {
    const n = asNode(e);
    if (n && n[0] === 'BoolExpr' && n[1].boolop === 'AND_EXPR') (n[1].args ?? []).forEach((arg) => flatten(arg));
    else if (e) conjuncts.push(e);
  };
  flatten(body.whereClause);
  return { inner, single: from.length === 1 && asNode(from[0])?.[0] === 'RangeVar', conjuncts };
}

/** The column a conjunct compares (the IN list's left side, or either side of an operator), if any. */
function comparedColumn(conjunct: Node): ColumnRef | undefined {
  const e = asNode(conjunct);
  if (!e || e[0] !== 'A_Expr') return undefined;
  const left = asNode(e[1].lexpr);
  if (left?.[0] === 'ColumnRef') return left[1];
  const right = asNode(e[1].rexpr);
  return e[1].kind === 'AEXPR_OP' && right?.[0] === 'ColumnRef' ? right[1] : undefined;
}

function indexConjuncts(frame: QueryFrame): NonNullable<QueryFrame['byName']> {
  const conjuncts = new Map<string, Node[]>();
  for (const conjunct of frame.conjuncts) {
    const col = comparedColumn(conjunct);
    if (!col) continue;
    const fields = col.fields ?? [];
    const name = fields.length === 2 ? stringValue(fields[0]) : fields.length === 1 ? '' : undefined;
    if (name === undefined) continue;
    const same = conjuncts.get(name);
    if (same) same.push(conjunct); else conjuncts.set(name, [conjunct]);
  }
  const relations = new Map<string, number>();
  for (const rv of frame.inner) {
    const alias = rv.alias?.aliasname ?? rv.relname ?? '';
    relations.set(alias, (relations.get(alias) ?? 0) + 1);
  }
  return { conjuncts, relations };
}

/** A constant or parameter node: what may stand on the other side of a pushed comparison. */
type Constant = Extract<TypedNode, ['A_Const' | 'ParamRef', unknown]>;

function asConstant(node: TypedNode | undefined): Constant | undefined {
  return node && (node[0] === 'A_Const' || node[0] === 'ParamRef') ? node : undefined;
}

/** The type the parser gives a number token it does not read as int4: int8 or numeric, by its value. */
export function numberType(f: string): string {
  return /^[0-9]+$/.test(f) && BigInt(f) <= 9223372036854775807n ? 'int8' : 'numeric';
}

/**
 * Whether the operator `key(type)` is leakproof. A big integer and a decimal are one kind to the shape cache
 * but int8 and numeric to the parser: when the answer differs between the two, it rests on the value, and
 * `valueDependent.seen` is set so the rewrite is cached by full text only.
 */
export function leakproofFor(catalog: Catalog, key: (type: string) => string, type: string, byValue: boolean, valueDependent: { seen: boolean }): boolean {
  const answer = catalog.leakproofOperators.has(key(type));
  if (byValue && answer !== catalog.leakproofOperators.has(key(type === 'int8' ? 'numeric' : 'int8'))) valueDependent.seen = true;
  return answer;
}

/** What a pushdown decision rests on beyond the tree, and what it found out. */
export interface PushFacts {
  /** A Parse's declared parameter types by position ('' = not declared). */
  parameterTypes: readonly string[];
  /** Set when the decision rested on a number's value (see leakproofFor). */
  seen: boolean;
}

/**
 * The type Postgres gives a constant or parameter compared with a column of `columnType`; undefined = don't push.
 * A parameter the client declared has the declared type (PostgreSQL then picks the operator for it); an
 * undeclared one takes the column's.
 */
function constantType(node: Constant, columnType: string, parameterTypes: readonly string[]): string | undefined {
  if (node[0] === 'ParamRef') {
    const declared = parameterType(parameterTypes, node[1].number);
    return declared === UNKNOWN_TYPE ? undefined : declared || columnType;
  }
  const c = node[1];
  if (c.ival !== undefined) return 'int4';
  if (c.sval !== undefined) return columnType; // an untyped literal takes the column's type
  const f = c.fval?.fval;
  return f === undefined ? undefined : numberType(f);
}

const byValue = (node: Constant): boolean => node[0] === 'A_Const' && node[1].fval !== undefined;

/**
 * Top-level WHERE conjuncts `col op constant` on this relation's unmasked
 * columns whose operator is leakproof: safe to evaluate below the
 * ownership filter, and moved there so an index can serve them (B10).
 */
export function pushableConjuncts(text: SqlText, catalog: Catalog, frame: QueryFrame | undefined, node: RangeVar, rv: RangeVarBody, rel: CatalogRelation, table: TableProfile, facts: PushFacts): Span[] {
  if (!frame || !frame.inner.has(node) || !rel.columns) return [];
  // An alias column list renames the columns: `b(x, o, id)` makes b.id another column. Leave it alone.
  if (node.alias?.colnames?.length) return [];
  const alias = rv.alias ?? rv.relname;
  const byName = frame.byName ?? (frame.byName = indexConjuncts(frame));
  // Two inner relations of one name: Postgres refuses the statement anyway; moving nothing keeps the work linear.
  if ((byName.relations.get(alias) ?? 0) > 1) return [];
  const out: Span[] = [];
  // A single relation is the frame's only one: its conjuncts are all of them, in order.
  const candidates = frame.single ? frame.conjuncts : byName.conjuncts.get(alias) ?? [];
  for (const conjunct of candidates) {
    const e = asNode(conjunct);
    if (!e || e[0] !== 'A_Expr') continue;
    const expr = e[1];
    if (expr.kind === 'AEXPR_IN') {
      const span = pushableIn(text, catalog, expr, alias, frame.single, rel, table, facts);
      if (span) out.push(span);
      continue;
    }
    if (expr.kind !== 'AEXPR_OP') continue;
    const op = names(expr.name);
    // A user-defined operator of the name (allowed by the policy) could be the one PostgreSQL picks.
    if (op.length !== 1 || !comparisonOps.has(op[0]) || catalog.userOperators.has(op[0])) continue;
    const left = asNode(expr.lexpr);
    const right = asNode(expr.rexpr);
    if (!left || !right) continue;
    const colFirst = left[0] === 'ColumnRef';
    const [colNode, valNode] = colFirst ? [left, right] : [right, left];
    if (colNode[0] !== 'ColumnRef') continue;
    const fields = (colNode[1].fields ?? []).map((f) => stringValue(f));
    if (fields.some((f) => f === undefined) || fields.length > 2) continue;
    if (fields.length === 2 ? fields[0] !== alias : !frame.single) continue;
    const column = rel.columns.find((c) => c.name === fields[fields.length - 1]);
    if (!column || table.masks.has(column.name)) continue;
    const value = asConstant(valNode);
    const valueType = value && constantType(value, column.baseType, facts.parameterTypes);
    if (!value || !valueType) continue;
    const key = (t: string) => (colFirst ? `${op[0]}(${column.baseType},${t})` : `${op[0]}(${t},${column.baseType})`);
    if (!leakproofFor(catalog, key, valueType, byValue(value), facts)) continue;
    const colStart = text.index(colNode[1].location ?? -1);
    const colEnd = qualifiedNameEnd(text.text, colStart, fields.length);
    const valStart = text.index(value[1].location ?? -1);
    const valEnd = constantEnd(text.text, valStart);
    if (colEnd === -1 || valEnd === -1) continue;
    const [a, b] = colFirst ? [colEnd, valStart] : [valEnd, colStart];
    if (text.text.slice(a, b).replace(/\s+/g, '') !== op[0]) continue; // comments or casts in between: leave it
    out.push({ start: Math.min(colStart, valStart), end: Math.max(colEnd, valEnd) });
  }
  return out;
}

/** `col IN (c1, c2, …)` / `col NOT IN (…)` with constants and a leakproof = / <>: pushable like a comparison. */
function pushableIn(text: SqlText, catalog: Catalog, e: A_Expr, alias: string, single: boolean, rel: CatalogRelation, table: TableProfile, facts: PushFacts): Span | undefined {
  const op = names(e.name);
  const col = asNode(e.lexpr);
  const items = listItems(e.rexpr) ?? [];
  if (op.length !== 1 || !col || col[0] !== 'ColumnRef' || items.length === 0 || !rel.columns || catalog.userOperators.has(op[0])) return undefined;
  const fields = (col[1].fields ?? []).map((f) => stringValue(f));
  if (fields.some((f) => f === undefined) || fields.length > 2) return undefined;
  if (fields.length === 2 ? fields[0] !== alias : !single) return undefined;
  const column = rel.columns.find((c) => c.name === fields[fields.length - 1]);
  if (!column || table.masks.has(column.name)) return undefined;
  let last = -1;
  for (const item of items) {
    const constant = asConstant(asNode(item));
    const type = constant && constantType(constant, column.baseType, facts.parameterTypes);
    if (!constant || !type || !leakproofFor(catalog, (t) => `${op[0]}(${column.baseType},${t})`, type, byValue(constant), facts)) return undefined;
    last = constantEnd(text.text, text.index(constant[1].location ?? -1));
    if (last === -1) return undefined;
  }
  const close = skipSpace(text.text, last);
  if (text.text.charCodeAt(close) !== 41) return undefined;
  const start = text.index(col[1].location ?? -1);
  return qualifiedNameEnd(text.text, start, fields.length) === -1 ? undefined : { start, end: close + 1 };
}
