// The compiled policy and a user's profile (docs/architecture.md, module map). A profile is
// everything of the policy that applies to one user, with attributes bound as
// SQL literals; users whose profiles are equal share one interned object, and
// so share rewrite-cache entries.
import type { MaskKind } from './mask-kinds.js';

/** The names of the mask kinds, one record each in mask-kinds.ts. */
export type { MaskKind };

export interface MaskSpec {
  kind: MaskKind;
  /** The rule's own options (keepFirst, keepLast, fill, to, step, expr …); custom exprs already have `${user.*}` bound. */
  options: Record<string, unknown>;
}

export interface TableProfile {
  /** Canonical "schema.table" key. */
  relation: string;
  /** False when the access layer denies this user the table. */
  access: boolean;
  /** Ownership predicates (SQL over the table's columns, attributes bound as literals); AND-combined. Empty = all rows. */
  filters: string[];
  /** Column name (catalog spelling) → the single most restrictive mask that applies. */
  masks: Map<string, MaskSpec>;
}

export interface Profile {
  /** Short stable id, equal for users with equal effective policy; part of cache keys. */
  key: string;
  generation: number;
  unlistedRelations: 'allow' | 'deny';
  writes: 'allow' | 'deny';
  /** Only tables listed in the policy appear here. */
  tables: Map<string, TableProfile>;
}
