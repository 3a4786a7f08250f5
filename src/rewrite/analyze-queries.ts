// Queries and reads: SELECT and its WITH scopes, every relation read in FROM
// (or any other read position) — a protected one replaced by its guarded
// subquery with the predicates that may move below its fence, a system one
// by its guard — and schema.table.column references re-pointed at the
// guarded subquery's alias.
import type { CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { descendantsOf, resolveRelation } from '../catalog/resolve.js';
import { hasOwnRulesBelow, readGuard } from './protection.js';
import { closeParens, keywordBefore, qualifiedNameEnd, skipSpace } from './sql-text.js';
import { composeGuarded, FENCE, quoteIdent } from './replacement.js';
import { systemGuard } from './system-guards.js';
import { hiddenRelations, visibilityCondition } from './catalog-visibility.js';
import { pushableConjuncts, queryFrame } from './pushdown.js';
import type { ColumnRef, CommonTableExpr, RangeTableSample, RangeVar, SelectStmt, WithClause } from '@pgsql/types';
import { asNode, rangeVar, stringValue, type RangeVarBody } from './tree.js';
import { tableSampleClause } from './clause-text.js';
import { refuse, STAND_IN, systemSchemas, type AnalyzerState, type Edit, type Scope } from './analyze-context.js';

export function select(a: AnalyzerState, body: SelectStmt, scope: Scope): void {
  const inner = withClause(a, body, scope);
  a.frames.push(queryFrame(body));
  try {
    for (const [key, value] of Object.entries(body)) {
      // FOR UPDATE/SHARE OF names FROM items (aliases), which Postgres matches itself: nothing to resolve.
      if (key === 'withClause' || key === 'lockingClause') continue;
      a.walk(value, inner);
    }
  } finally {
    a.frames.pop();
  }
}

/** Scope of a statement's WITH list; also walks the CTE bodies with the scope each one sees. */
export function withClause(a: AnalyzerState, body: { withClause?: WithClause }, scope: Scope): Scope {
  const clause = body.withClause;
  if (!clause) return scope;
  const ctes = (clause.ctes ?? []).map((c): CommonTableExpr => {
    const n = asNode(c);
    return n?.[0] === 'CommonTableExpr' ? n[1] : {};
  });
  const names = ctes.map((c) => c.ctename ?? '');
  const recursive = clause.recursive === true;
  ctes.forEach((cte, i) => {
    // A recursive WITH sees all its names; a plain one only the earlier ones.
    a.walk(cte.ctequery, scope.with(recursive ? names : names.slice(0, i)));
  });
  return scope.with(names);
}

/** A relation read in FROM (or any other read position); `sample`: the TABLESAMPLE node around it. */
export function read(a: AnalyzerState, body: RangeVar, scope: Scope, sample?: RangeTableSample): void {
  const rv = rangeVar(body);
  if (rv.catalogname) refuse('cross-database references are not supported');
  if (!rv.schemaname && scope.has(rv.relname)) {
    a.result.cteReferences.push(a.text.index(rv.location));
    return;
  }
  const rel = a.resolve(rv.schemaname, rv.relname, rv.location);
  a.result.relations.add(canonicalRelation(rel.schema, rel.name));
  const { profile, catalog } = a.ctx;
  const table = readGuard(profile, catalog, rel, rv.inh);
  if (!table) {
    // Governed by rules that leave this user every row and value: read as it is (still not through a reader view).
    if (!a.tableOf(rel)) a.checkUnprotected(rel);
    const visible = systemSchemas.has(rel.schema)
      ? visibilityCondition(rel.schema, rel.name, hiddenRelations(profile, catalog))
      : undefined;
    const oids = catalog.protectedOids;
    let guard = systemGuard(catalog, rel, oids, visible);
    const clause = guard && sample ? tableSampleClause(a.text, sample) : undefined;
    if (clause === null) refuse(`cannot rewrite this TABLESAMPLE clause on ${rel.name}`);
    if (clause) guard = systemGuard(catalog, rel, oids, visible, clause.text);
    if (guard) systemEdit(a, rv, guard, clause ?? undefined);
    else a.qualify(rv, rel);
    return;
  }
  if (sample) refuse(`TABLESAMPLE on protected table ${rel.name} is not allowed`, 'Sample a subquery instead.');
  if (!table.access) refuse(`permission denied for table ${rel.name}`);
  if (rv.inh && hasOwnRulesBelow(profile, catalog, rel, descendantsOf(catalog, rel.oid))) {
    refuse(`cannot read ${rel.name} with its partitions here: some of them have policy rules of their own`, `Read the partitions one by one, or ${rel.name} with ONLY.`);
  }
  a.markProtected(rel, table);
  guardedEdit(a, body, rv, rel, table);
}

/**
 * A system relation replaced by its guard subquery (same alias rules as a
 * protected table). A TABLESAMPLE clause belongs to the relation, so it
 * moves inside the guard (a subquery cannot be sampled): the edit then runs
 * from the name to the clause's end, and the alias is written after the guard.
 */
function systemEdit(a: AnalyzerState, rv: RangeVarBody, guard: string, clause?: { start: number; end: number; text: string }): void {
  if (!rv.inh) refuse(`cannot rewrite ONLY ${rv.relname}`);
  const start = a.text.index(rv.location);
  const end = clause ? clause.end : a.nameEnd(rv, start);
  const tableKw = clause ? undefined : keywordBefore(a.text.text, start, 'table');
  const prefix = tableKw && tableKw.parens === 0 ? 'SELECT * FROM ' : '';
  const alias = clause || !rv.alias ? ` AS ${quoteIdent(rv.alias ?? rv.relname)}` : '';
  let moved: Edit['moved'];
  if (clause) {
    if (a.result.edits.some((e) => e.start < clause.end && e.end > start)) refuse(`cannot rewrite this TABLESAMPLE clause on ${rv.relname}`);
    moved = [{ from: clause.start, to: prefix.length + guard.indexOf(clause.text), length: clause.text.length }];
  }
  a.result.edits.push({
    start: prefix ? (tableKw as { start: number }).start : start, end,
    text: `${prefix}${guard}${alias}`, generated: true, moved,
    skeleton: `${prefix}${STAND_IN}${alias}`,
  });
}

/** A protected relation replaced by its guarded subquery, with the WHERE conjuncts that may move below its fence. */
function guardedEdit(a: AnalyzerState, node: RangeVar, rv: RangeVarBody, rel: CatalogRelation, table: TableProfile): void {
  const sql = a.text.text;
  const nameStart = a.text.index(rv.location);
  let start = nameStart;
  let end = a.nameEnd(rv, nameStart);
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
  const parts = a.ctx.replacement(rel, table, rv.inh);
  const facts = { parameterTypes: a.ctx.parameterTypes ?? [], seen: false };
  const pushed = pushableConjuncts(a.text, a.ctx.catalog, a.frames[a.frames.length - 1], node, rv, rel, table, facts);
  if (facts.seen) a.constantDependent = true;
  const fenced = !a.fenceless(table, parts);
  const alias = rv.alias ?? rv.relname;
  // Compose the subquery, noting where each moved predicate lands in it.
  let text = prefix + parts.head + (pushed.length ? ` AS ${quoteIdent(alias)}` : '');
  const moved: NonNullable<Edit['moved']> = [];
  if (pushed.length === 0) {
    text = prefix + composeGuarded(parts, undefined, [], fenced);
  } else {
    text += ` WHERE ${parts.filters.length ? parts.filters.join(' AND ') + ' AND ' : ''}`;
    pushed.forEach((p, i) => {
      text += `${i ? ' AND ' : ''}(`;
      moved.push({ from: p.start, to: text.length, length: p.end - p.start });
      text += `${sql.slice(p.start, p.end)})`;
      a.result.edits.push({ start: p.start, end: p.end, text: 'true', generated: false });
    });
    text += fenced ? FENCE : ')';
  }
  const aliasSuffix = rv.alias ? '' : ` AS ${quoteIdent(rv.relname)}`;
  a.result.edits.push({ start, end, text: text + aliasSuffix, generated: true, moved: moved.length ? moved : undefined, skeleton: prefix + STAND_IN + aliasSuffix });
}

/** `schema.table.column` pointing at a protected table is re-pointed at the guarded subquery's alias. */
export function columnRef(a: AnalyzerState, body: ColumnRef): void {
  const fields = body.fields ?? [];
  // pgveil's own aliases (the raw write target, the new rows) are not the user's to name (B9).
  if (fields.length > 1 && /^pgveil_/.test(stringValue(fields[0]) ?? '')) refuse('names starting with pgveil_ are reserved by pgveil');
  if (fields.length < 3) return;
  const names = fields.map((f) => stringValue(f));
  const schema = names[names.length - 3];
  const relname = names[names.length - 2];
  if (schema === undefined || relname === undefined) return;
  if (fields.length > 3) refuse('cross-database column references are not supported');
  const rel = resolveRelation(a.ctx.catalog, schema, relname, a.searchPath);
  if (!rel || !a.tableOf(rel)) return;
  const sql = a.text.text;
  const start = a.text.index(body.location ?? -1);
  const tableEnd = qualifiedNameEnd(sql, start, 2);
  const dot = skipSpace(sql, tableEnd);
  if (tableEnd === -1 || sql.charCodeAt(dot) !== 46) refuse('cannot rewrite this column reference');
  a.result.edits.push({ start, end: dot + 1, text: `${quoteIdent(relname)}.`, generated: false });
}
