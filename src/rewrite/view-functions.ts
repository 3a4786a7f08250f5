// The functions behind system views follow their view (threats B5, B6, C4 in docs/threat-model.md):
//  - a function that produces a refused view's rows (one in the view's
//    top-level FROM, e.g. pg_lock_status() under pg_locks) is refused like
//    the view. Functions the view only calls per row or in subqueries
//    (pg_get_userbyid, format_type, unnest) produce none of its rows and stay.
//  - a pg_stat_get_* function called by a cluster-wide statistics view (and
//    by no refused view) is allowed like the view.
// Both sets come from the upstream's view definitions (catalog/system-views.ts).
import type { Catalog } from '../catalog/types.js';
import { clusterWideStatViews, harmlessStatFunctions, systemRelationRefusal } from './functions.js';

export interface ViewFunctionRules {
  /** Function name → the refused view whose rows it produces, with the view's reason. */
  refused: Map<string, { view: string; reason: string }>;
  /** pg_stat_get_* functions of cluster-wide statistics views, and those that show no statistics (the snapshot's time). */
  allowedStats: Set<string>;
}

const memo = new WeakMap<Catalog, ViewFunctionRules>();

export function viewFunctionRules(catalog: Catalog): ViewFunctionRules {
  let rules = memo.get(catalog);
  if (rules) return rules;
  rules = { refused: new Map(), allowedStats: new Set(harmlessStatFunctions) };
  const refusedCalls = new Set<string>();
  for (const [view, fns] of catalog.systemViews) {
    const reason = systemRelationRefusal(view);
    if (!reason) continue;
    for (const fn of fns.calls) refusedCalls.add(fn);
    for (const fn of fns.rowSources) if (!rules.refused.has(fn)) rules.refused.set(fn, { view, reason });
  }
  for (const view of clusterWideStatViews) {
    for (const fn of catalog.systemViews.get(view)?.calls ?? []) {
      if (fn.startsWith('pg_stat_get_') && !refusedCalls.has(fn)) rules.allowedStats.add(fn);
    }
  }
  memo.set(catalog, rules);
  return rules;
}
