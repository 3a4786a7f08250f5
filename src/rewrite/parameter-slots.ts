// Which of a statement's numeric constants may go upstream as typed
// parameters of a prepared statement (upstream statement reuse,
// docs/architecture.md) with the statement meaning exactly what it means with
// the constant inline. Only where that is certain:
//
// - one plain SELECT (no INTO), constants in a WHERE or JOIN … ON condition,
//   reached through AND/OR/NOT, FROM subqueries, CTEs, set operations and
//   sublinks in a condition — never a target list, GROUP BY, HAVING, ORDER
//   BY, DISTINCT ON, window or LIMIT, where PostgreSQL matches expressions by
//   equality (`GROUP BY a = 1` with `SELECT a = 1`), reads a constant as a
//   column position (`ORDER BY 1`), or plans by the constant's value;
// - as an operand of a comparison (= <> < > <= >=), IN list or BETWEEN whose
//   other side is a plain column: the constant's type (int4, int8, numeric —
//   what PostgreSQL gives the literal) picks the same operator, and nothing
//   is folded at plan time that could raise an error inline but not as a
//   parameter (`1/0` has two constant operands and stays inline);
// - the constant itself, not a negated one (`-3` is located at its `-`, and
//   `-2147483648` is int4 inline but would be int8 negated).
import { asNode, containsNode, listItems, type Struct } from './tree.js';
import type { SqlText } from './sql-text.js';

const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

/** True when the statement is one plain SELECT (no INTO): what pgveil may run as a prepared statement of its own. */
export function plainSelect(stmts: readonly unknown[]): boolean {
  if (stmts.length !== 1) return false;
  const select = selectOf((stmts[0] as { stmt?: unknown }).stmt);
  return select !== undefined && !select.intoClause;
}

/**
 * String indices where a parameter-safe numeric constant begins; undefined
 * when the statement is not one plain SELECT, or refers to parameters
 * itself (`$1` in a simple Query is an error that must stay one).
 */
export function parameterSafeConstants(stmts: readonly unknown[], text: SqlText): Set<number> | undefined {
  if (!plainSelect(stmts)) return undefined;
  // A ParamRef is spelled `$n`: a text without `$` has none, and the tree walk for one is skipped.
  if (text.text.includes('$') && containsNode(stmts, 'ParamRef')) return undefined;
  const select = selectOf((stmts[0] as { stmt?: unknown }).stmt)!;
  const found = new Set<number>();
  walkSelect(select, (location) => {
    const at = text.index(location);
    const c = text.text.charCodeAt(at);
    if ((c >= 48 && c <= 57) || c === 46) found.add(at); // a negated constant is located at its '-'
  });
  return found;
}

type Mark = (location: number) => void;

function selectOf(value: unknown): Struct | undefined {
  const node = asNode(value);
  return node && node[0] === 'SelectStmt' ? (node[1] as Struct) : undefined;
}

function walkSelect(select: Struct, mark: Mark): void {
  const larg = select.larg as Struct | undefined;
  const rarg = select.rarg as Struct | undefined;
  if (larg) walkSelect(larg, mark);
  if (rarg) walkSelect(rarg, mark);
  const ctes = (select.withClause as Struct | undefined)?.ctes as unknown[] | undefined;
  for (const cte of ctes ?? []) {
    const body = asNode(cte);
    const query = body && body[0] === 'CommonTableExpr' ? selectOf((body[1] as Struct).ctequery) : undefined;
    if (query) walkSelect(query, mark);
  }
  for (const item of (select.fromClause as unknown[] | undefined) ?? []) walkFrom(item, mark);
  if (select.whereClause) walkCondition(select.whereClause, mark);
}

function walkFrom(item: unknown, mark: Mark): void {
  const node = asNode(item);
  if (!node) return;
  const body = node[1] as Struct;
  if (node[0] === 'JoinExpr') {
    walkFrom(body.larg, mark);
    walkFrom(body.rarg, mark);
    if (body.quals) walkCondition(body.quals, mark);
  } else if (node[0] === 'RangeSubselect') {
    const query = selectOf(body.subquery);
    if (query) walkSelect(query, mark);
  }
}

function walkCondition(value: unknown, mark: Mark): void {
  const node = asNode(value);
  if (!node) return;
  const body = node[1] as Struct;
  switch (node[0]) {
    case 'BoolExpr':
      for (const arg of (body.args as unknown[] | undefined) ?? []) walkCondition(arg, mark);
      return;
    case 'SubLink': {
      const query = selectOf(body.subselect);
      if (query) walkSelect(query, mark);
      return;
    }
    case 'A_Expr':
      markComparison(body, mark);
      return;
    default:
  }
}

function markComparison(expr: Struct, mark: Mark): void {
  if (!isColumn(expr.lexpr) && !(expr.kind === 'AEXPR_OP' && isColumn(expr.rexpr))) return;
  const names = expr.name as unknown[] | undefined;
  const operator = names?.length === 1 ? (asNode(names[0])?.[1] as Struct | undefined)?.sval : undefined;
  switch (expr.kind) {
    case 'AEXPR_OP': {
      if (typeof operator !== 'string' || !COMPARISONS.has(operator)) return;
      const constant = isColumn(expr.lexpr) ? expr.rexpr : expr.lexpr;
      markNumber(constant, mark);
      return;
    }
    case 'AEXPR_IN':
      if (operator !== '=' && operator !== '<>') return;
      for (const item of listItems(expr.rexpr) ?? []) markNumber(item, mark);
      return;
    case 'AEXPR_BETWEEN': case 'AEXPR_NOT_BETWEEN':
      for (const item of listItems(expr.rexpr) ?? []) markNumber(item, mark);
      return;
    default:
  }
}

function isColumn(value: unknown): boolean {
  return asNode(value)?.[0] === 'ColumnRef';
}

/** An integer or decimal constant (not a string, boolean or NULL) at its own location. */
function markNumber(value: unknown, mark: Mark): void {
  const node = asNode(value);
  if (!node || node[0] !== 'A_Const') return;
  const body = node[1] as Struct;
  if ((body.ival === undefined && body.fval === undefined) || typeof body.location !== 'number') return;
  mark(body.location);
}
