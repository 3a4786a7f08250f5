// DESIGN §3 step 5: the rewritten text is parsed again and every reference
// to a protected relation must sit inside a subquery pgveil generated (or be
// a CTE reference the analysis resolved). A miss here is an analyzer bug
// caught as a refusal instead of a leak.
import { parseSync } from 'libpg-query';
import type { Catalog } from '../catalog/types.js';
import { resolveRelation } from '../catalog/resolve.js';
import type { Profile } from '../policy/types.js';
import { readGuard } from './protection.js';
import { SqlText } from './sql-text.js';
import { child, nodeOf, rangeVar, type Body } from './tree.js';
import { lastAtOrBefore, type Spliced } from './splice.js';

export function verifyRewrite(spliced: Spliced, cteReferences: number[], searchPaths: string[][], profile: Profile, catalog: Catalog): string | undefined {
  const text = new SqlText(spliced.sql);
  const allowed = new Set(cteReferences.map((i) => spliced.map(i)));
  // The generated spans are ascending and disjoint: a binary search per reference keeps this linear-ish (THREATS E2).
  const starts = spliced.generated.filter((_, k) => k % 2 === 0);
  const inside = (i: number) => {
    const k = lastAtOrBefore(starts, i);
    return k >= 0 && i < spliced.generated[2 * k + 1];
  };
  const stmts = parseSync(spliced.sql).stmts ?? [];
  let problem: string | undefined;
  stmts.forEach((raw: unknown, n: number) => {
    const searchPath = searchPaths[n] ?? searchPaths[searchPaths.length - 1] ?? [];
    const stack: unknown[] = [child(raw as Body, 'stmt')];
    while (stack.length && !problem) {
      const value = stack.pop();
      if (Array.isArray(value)) { for (const v of value) stack.push(v); continue; }
      if (!value || typeof value !== 'object') continue;
      const node = nodeOf(value);
      if (node && node[0] === 'RangeVar') {
        const rv = rangeVar(node[1]);
        const at = text.index(rv.location);
        if (inside(at) || (!rv.schemaname && allowed.has(at))) continue;
        const rel = resolveRelation(catalog, rv.schemaname, rv.relname, searchPath);
        if (rel && readGuard(profile, catalog, rel, rv.inh)) problem = `${rel.schema}.${rel.name}`;
        continue;
      }
      for (const v of Object.values(value)) if (v && typeof v === 'object') stack.push(v);
    }
  });
  return problem;
}
