// What each pg_catalog view is built on, read from the upstream's own view
// definitions at catalog load, so the rules that refuse or allow a system
// view also cover the functions behind it on every major (threats B5, B6,
// C4 in docs/threat-model.md): `pg_lock_status()` answers exactly what `pg_locks` does.
//
// Built-in views record no pg_depend rows for the built-in functions they call
// (those are pinned), so the definition (pg_get_viewdef) is parsed instead.
import { parseSync } from 'libpg-query';
import type { FuncCall, Node, SelectStmt } from '@pgsql/types';
import { asNode, names, visit } from '../rewrite/tree.js';

export interface SystemView {
  /** Functions in the view's top-level FROM (joins included, subqueries not): they produce its rows. */
  rowSources: Set<string>;
  /** Every function the view's query calls anywhere (for allowing the functions of an allowed view). */
  calls: Set<string>;
}

type Queryable = { query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }> };

export async function loadSystemViews(client: Queryable): Promise<Map<string, SystemView>> {
  const result = await client.query(
    `SELECT c.relname::pg_catalog.text AS name, pg_catalog.pg_get_viewdef(c.oid) AS def FROM pg_catalog.pg_class c
      WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relkind = 'v'`);
  const out = new Map<string, SystemView>();
  for (const row of result.rows) out.set(String(row.name), systemViewOf(String(row.def)));
  return out;
}

/** Parses one view definition (a SELECT, possibly a set operation). */
export function systemViewOf(definition: string): SystemView {
  const view: SystemView = { rowSources: new Set(), calls: new Set() };
  const stmt = asNode(parseSync(definition).stmts?.[0]?.stmt);
  if (stmt) {
    if (stmt[0] === 'SelectStmt') selectRowSources(stmt[1], view.rowSources);
    visit(stmt[1], { FuncCall(call) { view.calls.add(lastName(call)); } });
  }
  return view;
}

function selectRowSources(select: SelectStmt, out: Set<string>): void {
  if (select.larg) selectRowSources(select.larg, out);
  if (select.rarg) selectRowSources(select.rarg, out);
  for (const item of select.fromClause ?? []) fromItem(item, out);
}

function fromItem(item: Node | undefined, out: Set<string>): void {
  const node = asNode(item);
  if (node?.[0] === 'JoinExpr') { fromItem(node[1].larg, out); fromItem(node[1].rarg, out); return; }
  if (node?.[0] !== 'RangeFunction') return;
  // functions: [List [FuncCall, coldeflist], …] (ROWS FROM has several)
  for (const pair of node[1].functions ?? []) {
    const items = asNode(pair);
    const call = items?.[0] === 'List' ? asNode(items[1].items?.[0]) : undefined;
    if (call?.[0] === 'FuncCall') out.add(lastName(call[1]));
  }
}

function lastName(call: FuncCall): string {
  const parts = names(call.funcname);
  return parts[parts.length - 1];
}
