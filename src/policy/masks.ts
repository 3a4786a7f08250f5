// A mask as an SQL expression of exactly the column's type (docs/configuration.md, Masks). The
// rewriter places these inside the replacement subquery, so every predicate,
// join, aggregate and error of the user's query sees only them. What each
// kind fits and emits is its record in mask-kinds.ts; here are the checks
// every kind shares: the column's type must have a name that search_path
// cannot change.
import type { CatalogColumn } from '../catalog/types.js';
import { parseQualifiedName } from '../config/identifiers.js';
import { quoteIdent } from './literals.js';
import { maskKindOf } from './mask-kinds.js';
import { castTypeName, isBuiltinType, TypeNameError } from './type-name.js';
import type { MaskSpec } from './types.js';

export interface MaskHelpers {
  /** Schema of the upstream helper functions `scramble` and `hash` (installed by scramble-sql.ts). */
  schema: string;
}

export const defaultMaskHelpers: MaskHelpers = { schema: 'pgveil' };

/** `crm.mood`, `"Crm"."Mood"[]`, `public.vector(3)`: schema-qualified once modifiers and array brackets are cut off. */
function isQualifiedTypeName(sqlType: string): boolean {
  const bare = sqlType.replace(/(?:\[\])+$/, '').replace(/\([0-9, ]*\)$/, '');
  return parseQualifiedName(bare)?.length === 2;
}

/** Why `spec` cannot mask `column` (a load error), or undefined when it fits. */
export function checkMaskFits(spec: MaskSpec, column: CatalogColumn): string | undefined {
  const what = `mask ${spec.kind} does not fit column ${column.name} of type ${column.sqlType}`;
  try {
    castTypeName(column);
  } catch (err) {
    if (err instanceof TypeNameError) return `${what}: ${err.message}`;
    throw err;
  }
  if (!isBuiltinType(column) && !isQualifiedTypeName(column.sqlType)) {
    return `${what}: its type name ${column.sqlType} is not schema-qualified (the catalog must read it with search_path = pg_catalog)`;
  }
  const kind = maskKindOf(spec.kind);
  if (!kind) return `unknown mask ${String(spec.kind)}`;
  const misfit = kind.misfit(column, spec.options);
  return misfit === undefined ? undefined : `${what}: ${misfit}`;
}

/**
 * The SQL of `spec` applied to `columnRef` (an already-quoted reference such
 * as `"t"."ssn"`), of exactly the column's type. Throws when the mask does not
 * fit (checkMaskFits), which a checked policy never reaches.
 */
export function maskExpression(spec: MaskSpec, column: CatalogColumn, columnRef: string, helpers: MaskHelpers = defaultMaskHelpers): string {
  const problem = checkMaskFits(spec, column);
  if (problem) throw new Error(problem);
  const ref = `(${columnRef})`;
  return maskKindOf(spec.kind)!.expression({
    column,
    type: castTypeName(column),
    columnRef,
    ref,
    asText: `${ref}::pg_catalog.text`,
    helper: (fn) => `${quoteIdent(helpers.schema)}.${quoteIdent(fn)}`,
  }, spec.options);
}
