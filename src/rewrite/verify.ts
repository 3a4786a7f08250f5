// The verify step (docs/architecture.md): the rewritten text is parsed again and every reference
// to a protected relation must sit inside a subquery pgveil generated (or be
// a CTE reference the analysis resolved). A miss here is an analyzer bug
// caught as a refusal instead of a leak.
import { parseSync } from 'libpg-query';
import type { Catalog } from '../catalog/types.js';
import { resolveRelation } from '../catalog/resolve.js';
import type { Profile } from '../policy/types.js';
import { readGuard } from './protection.js';
import { SqlText } from './sql-text.js';
import { SKIP, STOP, visit } from './tree.js';
import { lastAtOrBefore, type Spliced } from './splice.js';

export function verifyRewrite(spliced: Spliced, cteReferences: number[], searchPaths: string[][], profile: Profile, catalog: Catalog): string | undefined {
  const text = new SqlText(spliced.sql);
  const allowed = new Set(cteReferences.map((i) => spliced.map(i)));
  // The generated spans are ascending and disjoint: a binary search per reference keeps this linear-ish (threat E2).
  const starts = spliced.generated.filter((_, k) => k % 2 === 0);
  const inside = (i: number) => {
    const k = lastAtOrBefore(starts, i);
    return k >= 0 && i < spliced.generated[2 * k + 1];
  };
  const stmts = parseSync(spliced.sql).stmts ?? [];
  let problem: string | undefined;
  for (let n = 0; n < stmts.length && !problem; n++) {
    const searchPath = searchPaths[n] ?? searchPaths[searchPaths.length - 1] ?? [];
    visit(stmts[n].stmt, {
      RangeVar(rv) {
        const at = text.index(rv.location ?? -1);
        if (inside(at) || (!rv.schemaname && allowed.has(at))) return SKIP;
        const rel = resolveRelation(catalog, rv.schemaname, rv.relname ?? '', searchPath);
        if (!rel || !readGuard(profile, catalog, rel, rv.inh === true)) return SKIP;
        problem = `${rel.schema}.${rel.name}`;
        return STOP;
      },
    });
  }
  return problem;
}
