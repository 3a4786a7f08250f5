// UPDATE and DELETE on a protected table with `defaults.writes: allow`
// (THREATS B9). The target is joined, by (tableoid, ctid), to the guarded
// subquery under the user's alias, so the statement only reaches rows inside
// the ownership filter and every predicate and SET expression sees masked
// values; RETURNING shows masked new values. Shapes that would need more
// than this are refused (fail closed).
import { parseSync } from 'libpg-query';
import type { CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { maskExpression } from '../policy/masks.js';
import type { Edit } from './analyze.js';
import { quoteIdent, type GuardedParts } from './replacement.js';
import { identifierEnd, keywordBefore, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import { child, list, nodeOf, num, stringValue, type Body, type RangeVarBody } from './tree.js';

const ROW = '"pgveil_row"';

export class WriteRefusal extends Error {}

function refuse(message: string): never {
  throw new WriteRefusal(message);
}

const filterColumnsCache = new WeakMap<TableProfile, Set<string>>();

/** Column names the ownership filters read: a write that sets one could move a row out of the filter. */
function filterColumns(table: TableProfile): Set<string> {
  let cols = filterColumnsCache.get(table);
  if (cols) return cols;
  cols = new Set();
  if (table.filters.length) {
    const stack: unknown[] = [parseSync(`SELECT 1 WHERE ${table.filters.map((f) => `(${f})`).join(' AND ')}`)];
    while (stack.length) {
      const v = stack.pop();
      if (Array.isArray(v)) { stack.push(...v); continue; }
      if (!v || typeof v !== 'object') continue;
      const ref = (v as Record<string, unknown>).ColumnRef as Body | undefined;
      if (ref) {
        const fields = list(ref, 'fields');
        const last = stringValue(fields[fields.length - 1]);
        if (last) cols.add(last);
      }
      stack.push(...Object.values(v as Record<string, unknown>));
    }
  }
  filterColumnsCache.set(table, cols);
  return cols;
}

/** Every location-bearing ColumnRef of an expression, outside sub-selects (they have scopes of their own). */
function columnRefs(value: unknown, out: Body[] = []): Body[] {
  if (Array.isArray(value)) { for (const v of value) columnRefs(v, out); return out; }
  const n = nodeOf(value);
  if (!n) {
    if (value && typeof value === 'object') for (const v of Object.values(value)) columnRefs(v, out);
    return out;
  }
  if (n[0] === 'ColumnRef') { out.push(n[1]); return out; }
  if (n[0] === 'SubLink' || n[0] === 'SelectStmt') return out;
  for (const v of Object.values(n[1])) if (v && typeof v === 'object') columnRefs(v, out);
  return out;
}

/** Smallest node location in a subtree: where its text starts (or just inside a leading parenthesis). */
function firstLocation(value: unknown): number {
  let min = Number.MAX_SAFE_INTEGER;
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) { stack.push(...v); continue; }
    if (!v || typeof v !== 'object') continue;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (k === 'location' && typeof x === 'number' && x >= 0 && x < min) min = x;
      else if (x && typeof x === 'object') stack.push(x);
    }
  }
  return min;
}

export interface WriteInput {
  text: SqlText;
  verb: 'UPDATE' | 'DELETE';
  body: Body;
  rv: RangeVarBody;
  rel: CatalogRelation;
  table: TableProfile;
  parts: GuardedParts;
  /** String index just past the statement's last token. */
  stmtEnd: number;
  uniqueColumns: ReadonlySet<string>;
}

export function rewriteWrite(w: WriteInput): Edit[] {
  const { text, verb, body, rv, rel, table, parts } = w;
  const sql = text.text;
  if (child(body, 'withClause')) refuse(`${verb} with WITH on a protected table is not supported through pgveil`);
  if (list(body, verb === 'UPDATE' ? 'fromClause' : 'usingClause').length) refuse(`${verb} … ${verb === 'UPDATE' ? 'FROM' : 'USING'} on a protected table is not supported through pgveil`);
  if (nodeOf(body.whereClause)?.[0] === 'CurrentOfExpr') refuse('WHERE CURRENT OF on a protected table is not supported through pgveil');
  if (!rel.columns) refuse(`no column list for ${rel.name}`);
  const alias = rv.alias ?? rv.relname;
  const edits: Edit[] = [];

  // 1. The target keeps its name under a private alias; the user's alias names the guarded rows.
  const nameStart = text.index(rv.location);
  const nameEnd = qualifiedNameEnd(sql, nameStart, rv.schemaname ? 2 : 1);
  if (nameEnd === -1) refuse('cannot rewrite this write');
  let targetEnd = nameEnd;
  if (rv.alias) {
    let i = skipSpace(sql, nameEnd);
    if (/^as\b/i.test(sql.slice(i, i + 3))) i = skipSpace(sql, i + 2);
    const aliasEnd = identifierEnd(sql, i);
    if (aliasEnd === -1) refuse('cannot rewrite this write');
    targetEnd = aliasEnd;
  }
  edits.push({ start: nameStart, end: targetEnd, text: `${quoteIdent(rel.schema)}.${quoteIdent(rel.name)} AS ${ROW}`, generated: true });

  // 2. SET: never a column the ownership filter reads (the row could leave it), nor a unique one (a
  //    unique violation would confirm another org's value); expressions see the masked row.
  const filterCols = filterColumns(table);
  for (const t of list(body, 'targetList')) {
    const target = nodeOf(t)?.[1] ?? {};
    const name = String(target.name ?? '');
    if (filterCols.has(name)) refuse(`SET ${name} is not allowed: the ownership filter of ${rel.name} reads it`);
    if (w.uniqueColumns.has(name)) refuse(`SET ${name} is not allowed: a unique constraint on it would reveal other orgs' values`);
  }
  const qualify = (refs: Body[]) => {
    for (const ref of refs) {
      if (list(ref, 'fields').length !== 1 || nodeOf(list(ref, 'fields')[0])?.[0] === 'A_Star') continue;
      const at = text.index(num(ref, 'location') ?? -1);
      edits.push({ start: at, end: at, text: `${quoteIdent(alias)}.`, generated: false });
    }
  };
  qualify(columnRefs(list(body, 'targetList').map((t) => nodeOf(t)?.[1].val)));
  qualify(columnRefs(body.whereClause));

  // 3. RETURNING: masked new values.
  const returning = list(child(body, 'returningClause') ?? {}, 'exprs');
  const newValue = (column: NonNullable<CatalogRelation['columns']>[number]) => {
    const raw = `${ROW}.${quoteIdent(column.name)}`;
    const mask = table.masks.get(column.name);
    return mask ? `(${maskExpression(mask, column, raw)})` : raw;
  };
  for (const ref of columnRefs(returning)) {
    const fields = list(ref, 'fields');
    const names = fields.map((f) => stringValue(f));
    if (names[names.length - 1] === undefined) {
      // `*` / `alias.*`: every column of the new row, masked, named as the table's.
      if (names.length > 2 || (names.length === 2 && names[0] !== alias)) refuse('cannot rewrite this RETURNING item');
      const start = text.index(num(ref, 'location') ?? -1);
      const star = sql.indexOf('*', start);
      if (star === -1) refuse('cannot rewrite this RETURNING item');
      edits.push({ start, end: star + 1, text: rel.columns.map((c) => `${newValue(c)} AS ${quoteIdent(c.name)}`).join(', '), generated: false });
      continue;
    }
    if (names.some((n) => n === undefined)) refuse('cannot rewrite this RETURNING item');
    if (names.length > 2 || (names.length === 2 && names[0] !== alias)) refuse('cannot rewrite this RETURNING item');
    const colName = names[names.length - 1] as string;
    const column = rel.columns.find((c) => c.name === colName);
    if (!column) refuse(`RETURNING ${colName}: whole-row references are not supported on a protected table through pgveil`);
    const start = text.index(num(ref, 'location') ?? -1);
    const end = qualifiedNameEnd(sql, start, names.length);
    edits.push({ start, end, text: newValue(column), generated: false });
  }

  // 4. FROM/USING the guarded rows, joined to the target row by row.
  const keyword = verb === 'UPDATE' ? 'FROM' : 'USING';
  const guard = parts.head.replace(/^\(SELECT /, '(SELECT "tableoid" AS "pgveil_tableoid", "ctid" AS "pgveil_ctid", ')
    + (parts.filters.length ? ` WHERE ${parts.filters.join(' AND ')}` : '') + ' OFFSET 0)';
  const join = `${ROW}."tableoid" OPERATOR(pg_catalog.=) ${quoteIdent(alias)}."pgveil_tableoid" AND ${ROW}."ctid" OPERATOR(pg_catalog.=) ${quoteIdent(alias)}."pgveil_ctid"`;
  const returningKw = returning.length ? keywordBefore(sql, text.index(firstLocation(returning)), 'returning') : undefined;
  if (returning.length && !returningKw) refuse('cannot rewrite this RETURNING');
  const tail = returningKw ? returningKw.start : w.stmtEnd;
  if (body.whereClause) {
    const whereKw = keywordBefore(sql, text.index(firstLocation(body.whereClause)), 'where');
    if (!whereKw) refuse('cannot rewrite this WHERE');
    edits.push({ start: whereKw.start, end: whereKw.start + 5, text: `${keyword} ${guard} AS ${quoteIdent(alias)} WHERE ${join} AND (`, generated: true });
    edits.push({ start: tail, end: tail, text: ') ', generated: false });
  } else {
    edits.push({ start: tail, end: tail, text: ` ${keyword} ${guard} AS ${quoteIdent(alias)} WHERE ${join} `, generated: true });
  }
  return edits;
}
