// The upstream form of a cached rewrite (upstream statement reuse,
// docs/architecture.md): its template with `$1 … $n` in the slots, so the
// session can prepare it once per upstream connection and run each statement
// of the shape as Bind/Execute with the constants as parameters — upstream
// then skips parse and analysis. Made only when every constant of the
// statement is a number the rewriter found parameter-safe
// (rewrite/parameter-slots.ts): then the text is the same for every
// statement of the shape, and each parameter gets the type PostgreSQL gives
// the literal, read from its text as the server's parser reads it
// (parse_node.c make_const): int4 for an integer that fits, and for the
// other numbers (one shape kind) int8 or numeric by the literal at hand —
// those are typed per statement, so `id = 3000000000` and `id = 1.5` of one
// shape run as two prepared statements.
import type { Shape } from './shape.js';
import { kindsOf, type Template } from './template.js';

export const enum TypeOid { Int8 = 20, Int4 = 23, Numeric = 1700 }

export interface ParameterForm {
  /** The rewritten statement with `$k` in slot k (text order). */
  readonly text: string;
  /** The type of each `$k`; 0: int8 or numeric, by the statement's literal (literalTypes). */
  readonly types: Int32Array;
  /** Some type is 0. */
  readonly typedPerStatement: boolean;
  /** Which constant of the statement fills `$k` (index into the shape's constants). */
  readonly order: Int32Array;
}

const INT8_MAX = 9223372036854775807n;

/**
 * The form of `template` for statements of `shape`, or undefined when one
 * of its constants is not a parameter-safe number. `safe` holds the string
 * indices (in the statement the template was made from) where
 * parameter-safe constants begin.
 */
export function parameterForm(template: Template, shape: Shape, safe: ReadonlySet<number>): ParameterForm | undefined {
  const c = shape.constants;
  const count = c.length / 2;
  const kinds = kindsOf(shape.key);
  const types = new Int32Array(count);
  const order = new Int32Array(count);
  let text = template.pieces[0];
  let typedPerStatement = false;
  for (let k = 0; k < count; k++) {
    const j = template.order ? template.order[k] : k;
    order[k] = j;
    const start = c[2 * j];
    if (!safe.has(start)) return undefined;
    // A shape's I constants all fit int4; its F constants are int8 or numeric, by value.
    if (kinds[j] === 'I') types[k] = TypeOid.Int4;
    else if (kinds[j] === 'F') typedPerStatement = true;
    else return undefined; // strings, bit strings, and numbers spelled only PostgreSQL 16+ reads (0x…, 1_000)
    const before = template.pieces[k];
    const after = template.pieces[k + 1];
    // `$k` must read as one parameter token where the number read as one constant.
    if (!separates(before.charCodeAt(before.length - 1)) || !separates(after.charCodeAt(0))) return undefined;
    text += `$${k + 1}${after}`;
  }
  return { text, types, order, typedPerStatement };
}

/** The form's parameter types for one statement of its shape (`constants` its shape's): the F constants typed by their literal. */
export function literalTypes(form: ParameterForm, sql: string, constants: Int32Array): Int32Array {
  if (!form.typedPerStatement) return form.types;
  const types = Int32Array.from(form.types);
  for (let k = 0; k < types.length; k++) {
    if (types[k] !== 0) continue;
    const j = form.order[k];
    const literal = sql.slice(constants[2 * j], constants[2 * j + 1]);
    types[k] = /^[0-9]+$/.test(literal) && BigInt(literal) <= INT8_MAX ? TypeOid.Int8 : TypeOid.Numeric;
  }
  return types;
}

/** True for a character that ends a token before `$` and after a parameter number (not a letter, digit, `_`, `$`, `.` or non-ASCII). */
function separates(code: number): boolean {
  if (code !== code) return true; // the start or end of the text
  if (code >= 0x80) return false;
  const lower = code | 0x20;
  if ((lower >= 97 && lower <= 122) || (code >= 48 && code <= 57)) return false;
  return code !== 95 && code !== 36 && code !== 46;
}
