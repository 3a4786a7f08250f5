// UPDATE, DELETE, INSERT and COPY FROM on a protected table with
// `defaults.writes: allow` (threat B9, docs/threat-model.md). UPDATE and DELETE compute their SET
// values and WHERE in a FROM/USING sub-select over the guarded rows under the
// user's alias, joined to the target by (tableoid, ctid): user text never
// sits where the raw target is in scope, so every predicate and SET value
// sees masked, filtered rows; RETURNING shows masked new values. INSERT and
// COPY FROM check every new row against the filter. Shapes that would need
// more than this are refused (fail closed).
import { parseSync, scanSync } from 'libpg-query';
import type { CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { maskExpression } from '../policy/masks.js';
import { castTypeName } from '../policy/type-name.js';
import type { Edit } from './analyze.js';
import { quoteIdent, type GuardedParts } from './replacement.js';
import { identifierEnd, keywordBefore, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import type { ColumnRef, CopyStmt, DeleteStmt, InsertStmt, Node, ResTarget, ReturningClause, SelectStmt, UpdateStmt } from '@pgsql/types';
import { SKIP, asNode, containsNode, minLocation, stringValue, visit, type RangeVarBody } from './tree.js';

const ROW = '"pgveil_row"';
const NEW = '"pgveil_new"';

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
    visit(parseSync(`SELECT 1 WHERE ${table.filters.map((f) => `(${f})`).join(' AND ')}`), {
      ColumnRef(ref) {
        const last = stringValue(ref.fields?.[ref.fields.length - 1]);
        if (last) cols.add(last);
      },
    });
  }
  filterColumnsCache.set(table, cols);
  return cols;
}

/** Every location-bearing ColumnRef of an expression, outside sub-selects (they have scopes of their own). */
function columnRefs(value: unknown): ColumnRef[] {
  const out: ColumnRef[] = [];
  visit(value, { ColumnRef(ref) { out.push(ref); return SKIP; }, SubLink: () => SKIP, SelectStmt: () => SKIP });
  return out;
}

/** Smallest node location in a subtree: where its text starts (or just inside a leading parenthesis). */
function firstLocation(value: unknown): number {
  return minLocation(value) ?? Number.MAX_SAFE_INTEGER;
}

export interface WriteInput {
  text: SqlText;
  verb: 'UPDATE' | 'DELETE';
  /** An UpdateStmt or a DeleteStmt (every field is optional, so either fits). */
  body: UpdateStmt & DeleteStmt;
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
  if (body.withClause) refuse(`${verb} with WITH on a protected table is not supported through pgveil`);
  if (((verb === 'UPDATE' ? body.fromClause : body.usingClause) ?? []).length) refuse(`${verb} … ${verb === 'UPDATE' ? 'FROM' : 'USING'} on a protected table is not supported through pgveil`);
  if (asNode(body.whereClause)?.[0] === 'CurrentOfExpr') refuse('WHERE CURRENT OF on a protected table is not supported through pgveil');
  if (!rel.columns) refuse(`no column list for ${rel.name}`);
  const columns = rel.columns;
  const { alias, nameStart, end: targetEnd } = targetSpan(text, rv);
  const edits: Edit[] = [];

  // The user's SET values and WHERE are moved, in place, into a FROM/USING
  // sub-select over the guarded rows under the user's alias; PostgreSQL lets
  // no sub-select of FROM/USING name the write target, so no user text there
  // can reach the raw row, at any depth. The outer statement only joins the
  // target to that sub-select by (tableoid, ctid) and assigns its values.
  const target = `${quoteIdent(rel.schema)}.${quoteIdent(rel.name)} AS ${ROW}`;
  const user = quoteIdent(alias);
  const keys = `SELECT ${user}."pgveil_tableoid", ${user}."pgveil_ctid"`;
  const guard = parts.head.replace(/^\(SELECT /, '(SELECT "tableoid" AS "pgveil_tableoid", "ctid" AS "pgveil_ctid", ')
    + (parts.filters.length ? ` WHERE ${parts.filters.join(' AND ')}` : '') + ` OFFSET 0) AS ${user}`;
  const join = ` WHERE ${ROW}."tableoid" OPERATOR(pg_catalog.=) ${NEW}."pgveil_tableoid" AND ${ROW}."ctid" OPERATOR(pg_catalog.=) ${NEW}."pgveil_ctid" `;

  // RETURNING stays on the outer statement, where the raw row is in scope under pgveil's alias.
  const returning = returningEdits(w, columns, alias, (column) => `${ROW}.${quoteIdent(column.name)}`);
  const tail = returning.start ?? w.stmtEnd;
  let whereKw: number | undefined;
  if (body.whereClause) {
    whereKw = keywordBefore(sql, text.index(firstLocation(body.whereClause)), 'where')?.start;
    if (whereKw === undefined) refuse('cannot rewrite this WHERE');
  }
  // The end of the user's FROM/USING sub-select: after the WHERE, or where it would be.
  const closeAt = (at: number, head: string) => {
    if (whereKw === undefined) edits.push({ start: at, end: at, text: `${head} FROM ${guard} OFFSET 0) AS ${NEW}${join}`, generated: true });
    else {
      edits.push({ start: at, end: whereKw + 5, text: `${head} FROM ${guard} WHERE (`, generated: true });
      edits.push({ start: tail, end: tail, text: `) OFFSET 0) AS ${NEW}${join}`, generated: false });
    }
  };

  if (verb === 'DELETE') {
    edits.push({ start: nameStart, end: targetEnd, text: target, generated: true });
    closeAt(whereKw ?? tail, ` USING (${keys}`);
    edits.push(...returning.edits);
    return edits;
  }

  // SET: never a column the ownership filter reads (the row could leave it), nor a unique one (a
  // unique violation would confirm another org's value); values are computed over the masked row.
  const filterCols = filterColumns(table);
  const targets = (body.targetList ?? []).map((t): ResTarget => {
    const n = asNode(t);
    return n?.[0] === 'ResTarget' ? n[1] : {};
  });
  const tokens = targets.length > 1 ? scanSync(sql).tokens : [];
  const sets: string[] = [];
  let prevEnd = nameStart;
  let prevText = '';
  targets.forEach((t, k) => {
    const name = String(t.name ?? '');
    if (filterCols.has(name)) refuse(`SET ${name} is not allowed: the ownership filter of ${rel.name} reads it`);
    if (w.uniqueColumns.has(name)) refuse(`SET ${name} is not allowed: a unique or foreign key on it would reveal other orgs' rows`);
    const kind = asNode(t.val)?.[0];
    if (kind === 'MultiAssignRef') refuse('SET (a, b) = … on a protected table is not supported through pgveil: set the columns one by one');
    if (kind === 'SetToDefault') refuse('SET … = DEFAULT on a protected table is not supported through pgveil');
    if (t.indirection?.length) refuse('SET of an array element or a field on a protected table is not supported through pgveil');
    const column = columns.find((c) => c.name === name);
    if (!column) refuse(`column "${name}" of relation "${rel.name}" does not exist`);
    const at = text.index(t.location ?? -1);
    const eq = skipSpace(sql, identifierEnd(sql, at));
    if (sql.charCodeAt(eq) !== 61) refuse('cannot rewrite this SET');
    // Everything from the previous value's end (its comma) to this value's start is replaced.
    edits.push({ start: prevEnd, end: eq + 1, text: `${prevText}(`, generated: k === 0 });
    const v = `"pgveil_v${k}"`;
    sets.push(`${quoteIdent(name)} = ${NEW}.${v}`);
    prevText = `)::${castTypeName(column)} AS ${v}`;
    if (k < targets.length - 1) {
      const next = text.index(targets[k + 1].location ?? -1);
      let comma = -1;
      for (const tok of tokens) {
        const s = text.index(tok.start);
        if (s >= next) break;
        if (tok.tokenName === 'ASCII_44' && s > eq) comma = s;
      }
      if (comma === -1) refuse('cannot rewrite this SET');
      prevEnd = comma;
      prevText += ', ';
    }
  });
  if (!sets.length) refuse('cannot rewrite this UPDATE');
  // The first edit carries the target and the outer SET; the user's first value follows it.
  edits[0].text = `${target} SET ${sets.join(', ')} FROM (${keys}, (`;
  closeAt(whereKw ?? tail, prevText);
  edits.push(...returning.edits);
  return edits;
}

/**
 * The target of a write as the user wrote it: the name's start, where the
 * name and its alias end, and the alias (the user's name for the rows).
 * pgveil's own aliases are not the user's to take (B9).
 */
function targetSpan(text: SqlText, rv: RangeVarBody): { alias: string; nameStart: number; end: number } {
  const sql = text.text;
  if (rv.catalogname) refuse('cross-database references are not supported');
  const alias = rv.alias ?? rv.relname;
  if (/^pgveil_/i.test(alias)) refuse('names starting with pgveil_ are reserved by pgveil');
  const nameStart = text.index(rv.location);
  const nameEnd = qualifiedNameEnd(sql, nameStart, rv.schemaname ? 2 : 1);
  if (nameEnd === -1) refuse('cannot rewrite this write');
  if (!rv.alias) return { alias, nameStart, end: nameEnd };
  let i = skipSpace(sql, nameEnd);
  if (/^as\b/i.test(sql.slice(i, i + 3))) i = skipSpace(sql, i + 2);
  const aliasEnd = identifierEnd(sql, i);
  if (aliasEnd === -1) refuse('cannot rewrite this write');
  return { alias, nameStart, end: aliasEnd };
}

type Column = NonNullable<CatalogRelation['columns']>[number];

/**
 * RETURNING of a write: every item is rewritten to masked values of the
 * written row, and anything that could name something else is refused —
 * sub-selects (their column names would resolve to the raw row), any name
 * but the table's columns and the user's alias (pgveil's aliases, whole
 * rows, `old`/`new` on PostgreSQL 18), and RETURNING WITH (OLD AS …, NEW
 * AS …). `raw` gives a column's unmasked new value (`qualified`: the item
 * named it with the alias). `start`: where the RETURNING keyword starts.
 */
function returningEdits(
  w: { text: SqlText; body: { returningClause?: ReturningClause }; rel: CatalogRelation; table: TableProfile },
  columns: readonly Column[], alias: string, raw: (column: Column, qualified: boolean) => string,
): { start?: number; edits: Edit[] } {
  const { text, body, table } = w;
  const sql = text.text;
  const clause = body.returningClause ?? {};
  if (clause.options?.length) refuse('RETURNING WITH (OLD/NEW AS …) on a protected table is not supported through pgveil');
  const returning = clause.exprs ?? [];
  if (!returning.length) return { edits: [] };
  if (containsNode(returning, 'SubLink', 'SelectStmt')) refuse('sub-selects in RETURNING are not supported on a protected table through pgveil');
  const kw = keywordBefore(sql, text.index(firstLocation(returning)), 'returning');
  if (!kw) refuse('cannot rewrite this RETURNING');
  const edits: Edit[] = [];
  for (const ref of columnRefs(returning)) {
    const names = (ref.fields ?? []).map((f) => stringValue(f));
    const qualified = names.length === 2 && names[0] === alias;
    if (names.length > 2 || (names.length === 2 && !qualified)) refuse('cannot rewrite this RETURNING item');
    const value = (column: Column) => {
      const mask = table.masks.get(column.name);
      return mask ? `(${maskExpression(mask, column, raw(column, qualified))})` : raw(column, qualified);
    };
    const start = text.index(ref.location ?? -1);
    if (names[names.length - 1] === undefined) {
      // `*` / `alias.*`: every column of the new row, masked, named as the table's.
      const star = sql.indexOf('*', start);
      if (star === -1) refuse('cannot rewrite this RETURNING item');
      edits.push({ start, end: star + 1, text: columns.map((c) => `${value(c)} AS ${quoteIdent(c.name)}`).join(', '), generated: false });
      continue;
    }
    if (names.some((n) => n === undefined)) refuse('cannot rewrite this RETURNING item');
    const column = columns.find((c) => c.name === names[names.length - 1]);
    if (!column) refuse(`RETURNING ${names.join('.')}: only columns of ${w.rel.name} may be returned from a protected table through pgveil`);
    edits.push({ start, end: qualifiedNameEnd(sql, start, names.length), text: value(column), generated: false });
  }
  return { start: kw.start, edits };
}

/**
 * True for a new row inside the ownership filters; for any other row it
 * raises an error (a cast that fails, naming the row by its first column,
 * which is the writer's own value), so the statement fails whole instead of
 * silently skipping the row.
 */
function filterCheck(table: TableProfile, firstColumn: string): string {
  return `CASE WHEN ${table.filters.join(' AND ')} THEN true`
    + ` ELSE pg_catalog.int4('pgveil: a new row is outside your ownership filter: ' OPERATOR(pg_catalog.||) COALESCE(${firstColumn}::pg_catalog.text, '')) IS NULL END`;
}

/** The columns a write gives explicit values for: unique ones are refused, filter columns required. */
function checkWrittenColumns(rel: CatalogRelation, table: TableProfile, cols: readonly string[], uniqueColumns: ReadonlySet<string>, verb: string): void {
  for (const c of cols) if (uniqueColumns.has(c)) refuse(`an explicit value for ${c} is not allowed: a unique or foreign key on it would reveal other orgs' rows`);
  for (const c of filterColumns(table)) if (!cols.includes(c)) refuse(`${verb} into ${rel.name} must give ${c}: the ownership filter reads it`);
}

export type CopyFromInput = Omit<WriteInput, 'text' | 'verb' | 'rv' | 'parts' | 'body'> & { body: CopyStmt };

/**
 * COPY … FROM STDIN into a protected table with writes: allow. The same
 * rules as INSERT: unique columns may not be given, filter columns must be;
 * a WHERE clause appended to the COPY checks every incoming row against the
 * ownership filter and fails the whole COPY on the first row outside it.
 */
export function rewriteCopyFrom(w: CopyFromInput): Edit[] {
  const { body, rel, table } = w;
  if (!rel.columns) refuse(`no column list for ${rel.name}`);
  if (body.whereClause) refuse('COPY … FROM … WHERE into a protected table is not supported through pgveil');
  const listed = (body.attlist ?? []).map((c) => stringValue(c) ?? '');
  const cols = listed.length ? listed : rel.columns.map((c) => c.name);
  for (const name of cols) if (!rel.columns.some((c) => c.name === name)) refuse(`column "${name}" of relation "${rel.name}" does not exist`);
  checkWrittenColumns(rel, table, cols, w.uniqueColumns, 'COPY');
  if (!table.filters.length) return [];
  return [{ start: w.stmtEnd, end: w.stmtEnd, generated: false, text: ` WHERE ${filterCheck(table, quoteIdent(cols[0]))}` }];
}

/** The SelectStmt an INSERT takes its rows from (VALUES is one too). */
function selectOf(source: Node): SelectStmt {
  const n = asNode(source);
  return n?.[0] === 'SelectStmt' ? n[1] : {};
}

export type InsertInput = Omit<WriteInput, 'verb' | 'parts' | 'body'> & { body: InsertStmt };

/**
 * INSERT into a protected table with writes: allow. The new rows are
 * selected from the user's VALUES or SELECT, typed as the table's columns,
 * and checked against the ownership filter: a row outside it raises an
 * error, so the statement fails whole. Explicit values for unique columns
 * are refused (a unique violation would confirm another org's value).
 */
export function rewriteInsert(w: InsertInput): Edit[] {
  const { text, body, rv, rel, table } = w;
  const sql = text.text;
  if (body.onConflictClause) refuse('INSERT … ON CONFLICT on a protected table is not supported through pgveil');
  if (body.withClause) refuse('INSERT with WITH on a protected table is not supported through pgveil');
  if (body.override && body.override !== 'OVERRIDING_NOT_SET') refuse('INSERT … OVERRIDING on a protected table is not supported through pgveil');
  const source = body.selectStmt;
  if (!source || !rel.columns) refuse('INSERT … DEFAULT VALUES on a protected table is not supported through pgveil');
  if (containsNode(source, 'SetToDefault')) refuse('DEFAULT in VALUES on a protected table is not supported through pgveil: leave the column out');
  const listed = (body.cols ?? []).map((c) => { const n = asNode(c); return n?.[0] === 'ResTarget' ? n[1].name ?? '' : ''; });
  const select = selectOf(source);
  const values = asNode(select.valuesLists?.[0]);
  const width = select.valuesLists?.length ? (values?.[0] === 'List' ? values[1].items?.length ?? 0 : 0) : select.targetList?.length ?? 0;
  if (!listed.length && containsNode(select.targetList ?? [], 'A_Star')) refuse('INSERT … SELECT * into a protected table needs a column list');
  const cols = listed.length ? listed : rel.columns.slice(0, width).map((c) => c.name);
  const columns = cols.map((name) => {
    const column = rel.columns?.find((c) => c.name === name);
    if (!column) refuse(`column "${name}" of relation "${rel.name}" does not exist`);
    return column;
  });
  checkWrittenColumns(rel, table, cols, w.uniqueColumns, 'INSERT');

  const edits: Edit[] = [];
  // The source runs from the column list (or the target) to RETURNING or the end.
  const { alias, end: targetEnd } = targetSpan(text, rv);
  let sourceStart = targetEnd;
  if (listed.length) {
    const open = skipSpace(sql, sourceStart);
    const close = sql.indexOf(')', open);
    if (sql.charCodeAt(open) !== 40 || close === -1) refuse('cannot rewrite this INSERT');
    sourceStart = close + 1;
  }
  // RETURNING: masked values of the new rows (the target's, under the user's alias or none).
  const returning = returningEdits(w, rel.columns, alias, (c, qualified) => (qualified ? `${quoteIdent(alias)}.${quoteIdent(c.name)}` : quoteIdent(c.name)));
  const sourceEnd = returning.start ?? w.stmtEnd;
  const names = cols.map(quoteIdent).join(', ');
  const typed = columns.map((c) => `"pgveil_src".${quoteIdent(c.name)}::${castTypeName(c)} AS ${quoteIdent(c.name)}`).join(', ');
  const check = table.filters.length ? ` WHERE ${filterCheck(table, `"pgveil_new".${quoteIdent(cols[0])}`)}` : '';
  // The user's source stays where it is (its own rewrites and constants with it); it is wrapped.
  edits.push({ start: sourceStart, end: sourceStart, generated: false, text: `${listed.length ? '' : ` (${names})`} SELECT * FROM (SELECT ${typed} FROM (` });
  edits.push({ start: sourceEnd, end: sourceEnd, generated: false, text: `) AS "pgveil_src"(${names})) AS "pgveil_new"${check} ` });
  edits.push(...returning.edits);
  return edits;
}
