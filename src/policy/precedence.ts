// Several rules can apply to one column: a table's own rule together with
// the rules of the tables it is a partition or child of (threat A4 in docs/threat-model.md), or
// rules layered in later. README, Several masks on one column: the more restrictive mask wins
// (`null` > `full` > `hash` > `scramble` > `partial`/`email`/`truncate`/`round`
// > `custom` > none: each kind's rank in mask-kinds.ts). Within one rank the
// result must never show more than either rule alone, so:
//  - the same kind with comparable options takes the stricter options (the
//    kind's meet: partial keeps fewer characters, truncate the coarser unit,
//    round the larger step when it is a multiple of the smaller);
//  - anything else that cannot be ordered (partial vs email, two different
//    custom expressions, round to 10 vs 15) becomes `null`, which fits every
//    type and shows nothing.
// meet() is commutative and associative, so the order rules arrive in does not matter.
import { maskKinds, type MaskKind } from './mask-kinds.js';
import type { MaskSpec, TableProfile } from './types.js';
import { stableStringify } from './canonical.js';

/** Each kind's precedence rank (from its record). */
export const maskRank: Readonly<Record<MaskKind, number>> = Object.fromEntries(
  Object.entries(maskKinds).map(([kind, record]) => [kind, record.rank]),
) as Record<MaskKind, number>;

const NULL_MASK: MaskSpec = Object.freeze({ kind: 'null', options: Object.freeze({}) }) as MaskSpec;

/** The single mask that applies when all of `specs` match a column; undefined for none. */
export function mostRestrictive(specs: readonly MaskSpec[]): MaskSpec | undefined {
  return specs.reduce<MaskSpec | undefined>((acc, s) => (acc === undefined ? s : meet(acc, s)), undefined);
}

/** The stricter of two masks (see the file comment for ties). */
export function meet(a: MaskSpec, b: MaskSpec): MaskSpec {
  if (maskRank[a.kind] !== maskRank[b.kind]) return maskRank[a.kind] > maskRank[b.kind] ? a : b;
  if (a.kind !== b.kind) return NULL_MASK;
  if (stableStringify(a.options) === stableStringify(b.options)) return a;
  // Kinds without options to differ in (null, full, hash, scramble, email) have no meet; custom exprs cannot be compared.
  const options = maskKinds[a.kind].meet?.(a.options, b.options);
  if (options === undefined) return NULL_MASK;
  return options === a.options ? a : options === b.options ? b : { kind: a.kind, options };
}

/**
 * One TableProfile for a relation several profiles apply to (a partition and
 * its root): denied if any denies, every filter, the stricter mask per column.
 */
export function combineTableProfiles(relation: string, profiles: readonly TableProfile[]): TableProfile {
  const access = profiles.every((p) => p.access);
  if (!access) return { relation, access, filters: [], masks: new Map() };
  const filters: string[] = [];
  const masks = new Map<string, MaskSpec>();
  for (const p of profiles) {
    for (const f of p.filters) if (!filters.includes(f)) filters.push(f);
    for (const [column, spec] of p.masks) {
      const have = masks.get(column);
      masks.set(column, have ? meet(have, spec) : spec);
    }
  }
  return { relation, access, filters, masks };
}
