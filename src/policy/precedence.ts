// Several rules can apply to one column: a table's own rule together with
// the rules of the tables it is a partition or child of (THREATS A4), or
// rules layered in later. SPEC §2.3: the more restrictive mask wins
// (`null` > `full` > `hash` > `scramble` > `partial`/`email`/`truncate`/`round`
// > `custom` > none). Within one rank the result must never show more than
// either rule alone, so:
//  - the same kind with comparable options takes the stricter options
//    (partial: fewer kept characters; truncate: the coarser unit; round: the
//    larger step when it is a multiple of the smaller);
//  - anything else that cannot be ordered (partial vs email, two different
//    custom expressions, round to 10 vs 15) becomes `null`, which fits every
//    type and shows nothing.
// meet() is commutative and associative, so the order rules arrive in does not matter.
import type { MaskKind, MaskSpec, TableProfile } from './types.js';
import { stableStringify } from './canonical.js';

export const maskRank: Readonly<Record<MaskKind, number>> = {
  null: 6,
  full: 5,
  hash: 4,
  scramble: 3,
  partial: 2,
  email: 2,
  truncate: 2,
  round: 2,
  custom: 1,
};

const NULL_MASK: MaskSpec = Object.freeze({ kind: 'null', options: Object.freeze({}) }) as MaskSpec;
const truncateOrder = ['day', 'month', 'year'];

/** The single mask that applies when all of `specs` match a column; undefined for none. */
export function mostRestrictive(specs: readonly MaskSpec[]): MaskSpec | undefined {
  return specs.reduce<MaskSpec | undefined>((acc, s) => (acc === undefined ? s : meet(acc, s)), undefined);
}

/** The stricter of two masks (see the file comment for ties). */
export function meet(a: MaskSpec, b: MaskSpec): MaskSpec {
  if (maskRank[a.kind] !== maskRank[b.kind]) return maskRank[a.kind] > maskRank[b.kind] ? a : b;
  if (a.kind !== b.kind) return NULL_MASK;
  if (stableStringify(a.options) === stableStringify(b.options)) return a;
  switch (a.kind) {
    case 'partial': {
      const fa = String(a.options.fill ?? 'X');
      const fb = String(b.options.fill ?? 'X');
      return {
        kind: 'partial',
        options: {
          keepFirst: Math.min(num(a.options.keepFirst), num(b.options.keepFirst)),
          keepLast: Math.min(num(a.options.keepLast), num(b.options.keepLast)),
          fill: fa <= fb ? fa : fb,
        },
      };
    }
    case 'truncate': {
      const ia = truncateOrder.indexOf(String(a.options.to));
      const ib = truncateOrder.indexOf(String(b.options.to));
      if (ia < 0 || ib < 0) return NULL_MASK;
      return ia >= ib ? a : b;
    }
    case 'round': {
      const x = num(a.options.step);
      const y = num(b.options.step);
      const [small, big] = x <= y ? [x, y] : [y, x];
      if (small > 0 && Number.isInteger(big / small)) return big === x ? a : b;
      return NULL_MASK;
    }
    default:
      // null/full/hash/scramble/email have no options to differ in; custom exprs cannot be compared.
      return NULL_MASK;
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
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
