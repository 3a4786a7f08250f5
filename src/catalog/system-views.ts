// What each pg_catalog view is built on, read from the upstream's own view
// definitions at catalog load, so the rules that refuse or allow a system
// view also cover the functions behind it on every major (THREATS B5, B6,
// C4): `pg_lock_status()` answers exactly what `pg_locks` does.
//
// Built-in views record no pg_depend rows for the built-in functions they call
// (those are pinned), so the definition (pg_get_viewdef) is parsed instead.
import { parseSync } from 'libpg-query';
import { nameList, nodeOf, type Body } from '../rewrite/tree.js';

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
  const stmt = nodeOf((parseSync(definition).stmts?.[0] as Body | undefined)?.stmt);
  if (stmt) {
    selectRowSources(stmt[1], view.rowSources);
    collectCalls(stmt[1], view.calls);
  }
  return view;
}

function selectRowSources(select: Body, out: Set<string>): void {
  for (const side of ['larg', 'rarg']) {
    const body = select[side] as Body | undefined;
    if (body) selectRowSources(body, out);
  }
  for (const item of (select.fromClause as unknown[] | undefined) ?? []) fromItem(item, out);
}

function fromItem(item: unknown, out: Set<string>): void {
  const node = nodeOf(item);
  if (!node) return;
  const [type, body] = node;
  if (type === 'JoinExpr') { fromItem(body.larg, out); fromItem(body.rarg, out); return; }
  if (type !== 'RangeFunction') return;
  // functions: [List [FuncCall, coldeflist], …] (ROWS FROM has several)
  for (const pair of (body.functions as unknown[] | undefined) ?? []) {
    const items = nodeOf(pair)?.[1].items as unknown[] | undefined;
    const call = nodeOf(items?.[0]);
    if (call?.[0] === 'FuncCall') out.add(lastName(call[1]));
  }
}

function collectCalls(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) { for (const v of value) collectCalls(v, out); return; }
  if (!value || typeof value !== 'object') return;
  const node = nodeOf(value);
  if (node?.[0] === 'FuncCall') out.add(lastName(node[1]));
  for (const v of Object.values(node ? node[1] : (value as Body))) if (v && typeof v === 'object') collectCalls(v, out);
}

function lastName(call: Body): string {
  const names = nameList(call, 'funcname');
  return names[names.length - 1];
}
