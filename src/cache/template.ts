// A rewritten statement with holes where the user's constants were, so one
// cached rewrite serves every statement of the same shape: a hit fills the
// holes with the incoming statement's constants instead of parsing it.
//
// Contract with the rewriter (src/rewrite/splice.ts keeps it): the rewrite
// copies the user's text outside its edits, so every constant of the input
// appears in the output unchanged, once, in the same order, and no edit
// touches a constant or the characters right next to it. Constants the
// rewrite adds itself (bound attribute values) are not slots; they are part
// of the fixed text. Pass `source` to makeTemplate on the miss path to have
// the contract checked: a violation throws instead of caching a template
// that would splice constants into the wrong places.
import { scanShape, type Shape } from './shape.js';

export interface Template {
  /** The fixed text between the slots: one more piece than slots. */
  readonly pieces: readonly string[];
  /**
   * For each slot in text order, which constant of the statement fills it.
   * Absent when slot k holds constant k (the rewriter moved no constant
   * ahead of another, e.g. into a guarded subquery).
   */
  readonly order?: Int32Array;
}

/**
 * @param rewritten the rewriter's output for a statement
 * @param slots [start, end) pairs, ascending: where the input's constants sit in `rewritten`
 * @param source the input statement and its shape, to check the contract
 */
export function makeTemplate(rewritten: string, slots: Int32Array, source?: { sql: string; shape: Shape }): Template {
  if (slots.length % 2 !== 0) throw new RangeError('template slots come in [start, end) pairs');
  const count = slots.length / 2;
  const byPosition = Array.from({ length: count }, (_, k) => k).sort((a, b) => slots[2 * a] - slots[2 * b]);
  const inOrder = byPosition.every((k, j) => k === j);
  const pieces: string[] = [];
  let last = 0;
  for (const k of byPosition) {
    const start = slots[2 * k];
    const end = slots[2 * k + 1];
    if (start < last || end < start || end > rewritten.length) throw new RangeError('template slots must not overlap and must lie inside the text');
    pieces.push(rewritten.slice(last, start));
    last = end;
  }
  pieces.push(rewritten.slice(last));
  if (source) checkContract(rewritten, slots, source.sql, source.shape);
  return inOrder ? { pieces } : { pieces, order: Int32Array.from(byPosition) };
}

/** The template's text with the constants of `sql` (of the template's shape) in its slots. */
export function fillTemplate(t: Template, sql: string, shape: Shape): string {
  const pieces = t.pieces;
  const c = shape.constants;
  if (c.length !== (pieces.length - 1) * 2) throw new RangeError('statement does not have the template\'s shape');
  const order = t.order;
  let out = pieces[0];
  if (!order) {
    for (let k = 0, p = 1; p < pieces.length; k += 2, p++) out += sql.slice(c[k], c[k + 1]) + pieces[p];
    return out;
  }
  for (let p = 1; p < pieces.length; p++) {
    const k = order[p - 1] * 2;
    out += sql.slice(c[k], c[k + 1]) + pieces[p];
  }
  return out;
}

/**
 * Slots from the rewriter's index map (original string index → index in the
 * rewritten text, valid outside edits). Each slot keeps its constant's length,
 * so an edit that begins right at a constant's end cannot stretch it.
 */
export function slotsFromMap(shape: Shape, map: (index: number) => number): Int32Array {
  const c = shape.constants;
  const slots = new Int32Array(c.length);
  for (let k = 0; k < c.length; k += 2) {
    slots[k] = map(c[k]);
    slots[k + 1] = slots[k] + c[k + 1] - c[k];
  }
  return slots;
}

/**
 * Throws unless every slot holds its source constant's text with the same
 * character before and after it as in the source (and the next one too after
 * a '.', since '1..2' ends a number two characters early), and the rewritten
 * text lexes each slot as one constant of the same kind. With the shape key
 * equal, a constant of the incoming statement then lexes in the template
 * exactly as it does in its own text.
 */
function checkContract(rewritten: string, slots: Int32Array, sql: string, shape: Shape): void {
  const c = shape.constants;
  if (c.length !== slots.length) throw new RangeError(`template has ${slots.length / 2} slots, the statement ${c.length / 2} constants`);
  const again = scanShape(rewritten);
  if (!again) throw new RangeError('rewritten text has no shape');
  const sourceKinds = kindsOf(shape.key);
  const rewrittenKinds = kindsOf(again.key);
  const found = again.constants;
  const foundAt = new Map<number, number>();
  for (let i = 0; i < found.length; i += 2) foundAt.set(found[i], i);
  for (let k = 0; k < c.length; k += 2) {
    const s = slots[k];
    const e = slots[k + 1];
    const slot = k / 2;
    if (rewritten.slice(s, e) !== sql.slice(c[k], c[k + 1])) throw new RangeError(`slot ${slot} does not hold its constant`);
    const after = rewritten.charCodeAt(e);
    // A constant the rewriter moved into a subquery is closed by its ')': that ends any constant token.
    const closedByParen = after === 41;
    if (!sameAt(rewritten, s - 1, sql, c[k] - 1) || (!sameAt(rewritten, e, sql, c[k + 1]) && !closedByParen) || (after === 46 && !sameAt(rewritten, e + 1, sql, c[k + 1] + 1))) {
      throw new RangeError(`slot ${slot} is not surrounded as its constant is`);
    }
    const f = foundAt.get(s);
    if (f === undefined || found[f + 1] !== e || rewrittenKinds[f / 2] !== sourceKinds[slot]) {
      throw new RangeError(`slot ${slot} is not one constant in the rewritten text`);
    }
  }
}

function sameAt(a: string, i: number, b: string, j: number): boolean {
  const x = a.charCodeAt(i);
  const y = b.charCodeAt(j);
  return x === y || (x !== x && y !== y); // both past an end: NaN
}

/** The kind letters of a shape key's markers, in order. */
export function kindsOf(key: string): string {
  let kinds = '';
  for (let i = key.indexOf('\u0000'); i !== -1; i = key.indexOf('\u0000', i + 2)) kinds += key[i + 1];
  return kinds;
}
