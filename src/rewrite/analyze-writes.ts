// Writes: the target of INSERT, UPDATE, DELETE, MERGE and COPY FROM. A
// protected target is refused or rewritten (writes.ts) according to the
// policy; any target is refused when writing it runs user code, and system
// catalogs are never written.
import type { CatalogRelation } from '../catalog/types.js';
import type { TableProfile } from '../policy/types.js';
import { canonicalRelation } from '../config/identifiers.js';
import { descendantsOf } from '../catalog/resolve.js';
import { scanSync } from 'libpg-query';
import { hasOwnRulesBelow } from './protection.js';
import { rewriteCopyFrom, rewriteInsert, rewriteWrite, WriteRefusal } from './writes.js';
import { lastAtOrBefore } from './splice.js';
import type { SqlText } from './sql-text.js';
import type { CopyStmt, DeleteStmt, InsertStmt, MergeStmt, RangeVar, UpdateStmt } from '@pgsql/types';
import { rangeVar } from './tree.js';
import { refuse, systemSchemas, type AnalyzerState, type Scope } from './analyze-context.js';
import { withClause } from './analyze-queries.js';

/** A statement that writes its `relation`. */
type WriteStmt = InsertStmt | UpdateStmt | DeleteStmt | MergeStmt | CopyStmt;

export function dml(a: AnalyzerState, type: string, body: InsertStmt | UpdateStmt | DeleteStmt | MergeStmt, scope: Scope): void {
  const inner = withClause(a, body, scope);
  const target = body.relation;
  if (target) writeTarget(a, type, target, body);
  for (const [key, value] of Object.entries(body)) {
    if (key === 'withClause' || key === 'relation') continue;
    a.walk(value, inner);
  }
}

export function writeTarget(a: AnalyzerState, type: string, target: RangeVar, body?: WriteStmt): void {
  const rv = rangeVar(target);
  const rel = a.resolve(rv.schemaname, rv.relname, rv.location);
  const verb = type.replace('Stmt', '').toUpperCase();
  const key = canonicalRelation(rel.schema, rel.name);
  a.result.relations.add(key);
  if (systemSchemas.has(rel.schema)) refuse(`${verb} on system catalog ${rel.name} is not allowed through pgveil`);
  const table = a.tableOf(rel);
  if (table) {
    if (!table.access) refuse(`permission denied for table ${rel.name}`);
    if (a.ctx.profile.writes === 'deny') {
      refuse(`permission denied for table ${rel.name}`, `${verb} on tables protected by the policy is not allowed (defaults.writes: deny).`);
    }
    if ((type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'InsertStmt' || type === 'CopyStmt') && body) {
      guardedWrite(a, type, body, target, rel, table);
      return;
    }
    refuse(`${verb} on protected table ${rel.name} is not supported with writes: allow in this pgveil version`, 'INSERT, UPDATE, DELETE and COPY FROM are rewritten; MERGE into protected tables is refused.');
  }
  a.checkUnprotected(rel);
  a.qualify(rv, rel);
  if (a.ctx.catalog.writeGuarded.has(rel.oid)) {
    refuse(`${verb} on ${rel.name} is not allowed through pgveil: it has triggers, rules or defaults that run functions`, 'Such code runs with the service role\'s rights, outside the policy.');
  }
}

/** UPDATE/DELETE/INSERT/COPY FROM under writes: allow: see writes.ts. */
function guardedWrite(a: AnalyzerState, type: string, body: WriteStmt, target: RangeVar, rel: CatalogRelation, table: TableProfile): void {
  const { catalog, profile } = a.ctx;
  if (catalog.writeGuarded.has(rel.oid)) refuse(`writes to ${rel.name} are not allowed through pgveil: it has triggers, rules or defaults that run functions`);
  const rv = rangeVar(target);
  if (type === 'DeleteStmt' && catalog.referencedRelations.has(rel.oid)) {
    refuse(`DELETE from ${rel.name} is not allowed through pgveil: other tables reference it by foreign key`, 'A foreign-key violation would reveal rows of other orgs that reference yours.');
  }
  if (type === 'CopyStmt' && rv.inh && hasOwnRulesBelow(profile, catalog, rel, descendantsOf(catalog, rel.oid))) {
    refuse(`cannot copy into ${rel.name} with its partitions: some of them have policy rules of their own`, 'Copy into the partitions one by one.');
  }
  const uniqueColumns = catalog.uniqueColumns.get(rel.oid) ?? noColumns;
  // The rewrite appends after the statement's last token: trailing comments must not swallow it.
  const ends = tokenEnds(a.text);
  a.stmtEnd = ends[lastAtOrBefore(ends, a.stmtEnd)] ?? 0;
  try {
    const edits = type === 'CopyStmt'
      ? rewriteCopyFrom({ body: body as CopyStmt, rel, table, stmtEnd: a.stmtEnd, uniqueColumns })
      : type === 'InsertStmt'
      ? rewriteInsert({ text: a.text, body: body as InsertStmt, rv, rel, table, stmtEnd: a.stmtEnd, uniqueColumns })
      : rewriteWrite({
        text: a.text, verb: type === 'UpdateStmt' ? 'UPDATE' : 'DELETE', body: body as UpdateStmt & DeleteStmt, rv, rel, table,
        parts: a.ctx.replacement(rel, table, rv.inh), stmtEnd: a.stmtEnd, uniqueColumns,
      });
    a.result.edits.push(...edits);
  } catch (err) {
    if (err instanceof WriteRefusal) refuse(err.message);
    throw err;
  }
  a.markProtected(rel, table);
}

const noColumns: ReadonlySet<string> = new Set();

/** Token ends of each message's text, scanned once per message (on its first guarded write), not per write. */
const tokenEndsOf = new WeakMap<SqlText, Float64Array>();

/** Ascending string indices just past each token that is not a comment or `;`. */
function tokenEnds(text: SqlText): Float64Array {
  let ends = tokenEndsOf.get(text);
  if (ends) return ends;
  const list: number[] = [];
  for (const t of scanSync(text.text).tokens) {
    if (t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT' || t.tokenName === 'ASCII_59') continue;
    list.push(text.index(t.end));
  }
  ends = Float64Array.from(list);
  tokenEndsOf.set(text, ends);
  return ends;
}
