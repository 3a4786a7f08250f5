// The SQL a DBA writes into policy.yaml (ownership filters, custom masks)
// runs inside every user's statement, under that user's search_path. A
// relation named without its schema, or a function outside pg_catalog named
// without its schema, would resolve differently after `SET search_path`
// (threat C5 in docs/threat-model.md). Such names are a load error.
import { parseSync } from 'libpg-query';
import type { Catalog } from '../catalog/types.js';
import type { Template } from './template.js';

/** Problems with unqualified names in a filter or custom-mask template (placeholders stand in as NULL). */
export function unqualifiedNames(template: Template, catalog: Catalog): string[] {
  const sql = `SELECT 1 WHERE (${template.parts.join('NULL')}) IS NOT DISTINCT FROM NULL`;
  let tree: unknown;
  try {
    tree = parseSync(sql);
  } catch {
    return []; // syntax is reported when the statement runs; nothing here resolves names
  }
  const problems: string[] = [];
  const stack: unknown[] = [tree];
  while (stack.length) {
    const value = stack.pop();
    if (Array.isArray(value)) { stack.push(...value); continue; }
    if (!value || typeof value !== 'object') continue;
    const record = value as Record<string, unknown>;
    const rv = record.RangeVar as { schemaname?: string; relname?: string } | undefined;
    if (rv && !rv.schemaname) problems.push(`relation "${rv.relname}" must be schema-qualified`);
    const fc = record.FuncCall as { funcname?: Array<{ String?: { sval: string } }> } | undefined;
    if (fc?.funcname?.length === 1) {
      const name = fc.funcname[0].String?.sval ?? '';
      if (!catalog.functionSchemas.get(name)?.has('pg_catalog')) problems.push(`function "${name}" must be schema-qualified`);
    }
    for (const v of Object.values(record)) if (v && typeof v === 'object') stack.push(v);
  }
  return problems;
}
