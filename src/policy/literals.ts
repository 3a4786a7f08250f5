// The one place where values and names become SQL text (threat C2 in docs/threat-model.md). Every
// literal is typed and its meaning does not depend on a setting a user can
// change: strings are dollar-quoted (no backslash or quote handling, so
// standard_conforming_strings and escape_string_warning are irrelevant),
// numbers are bare digits or quoted digits, never an operator followed by a
// number (`x-` + `-1` would start a `--` comment).
//
// The text is UTF-8 as pgveil sends it; the upstream connection's
// client_encoding must be UTF8 (a dollar quote is byte-safe in UTF-8 because
// every byte of a multi-byte character is ≥ 0x80, never `$`).

import { parseQualifiedName } from '../config/identifiers.js';

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** An unpaired UTF-16 surrogate: it has no UTF-8 form, Node would send U+FFFD instead of the value. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export class LiteralError extends Error {}

/**
 * A SQL literal whose value is exactly `value`: `$pgv$O'Neill$pgv$::pg_catalog.text`,
 * `17::pg_catalog.int8`, `'-3'::pg_catalog.int8`, `'1.5'::pg_catalog.numeric`, `true`,
 * `NULL::pg_catalog.text`, `ARRAY[…]::pg_catalog.text[]` (empty: `'{}'::pg_catalog.text[]`).
 * Throws LiteralError for anything else (objects, NaN, nested arrays, NUL characters).
 */
export function sqlLiteral(value: unknown): string {
  if (value === null) return 'NULL::pg_catalog.text';
  if (Array.isArray(value)) return arrayLiteral(value);
  const scalar = scalarLiteral(value);
  if (scalar === undefined) throw new LiteralError(`cannot use a value of type ${describe(value)} as an SQL literal`);
  return scalar.text;
}

interface Scalar { text: string; type: 'text' | 'bigint' | 'numeric' | 'boolean' | 'timestamptz' }

// Types are schema-qualified (threat C5): `text` and `timestamptz` are looked
// up on search_path, where pg_temp or an earlier schema could shadow them.
const sqlType: Record<Scalar['type'], string> = {
  text: 'pg_catalog.text',
  bigint: 'pg_catalog.int8',
  numeric: 'pg_catalog.numeric',
  boolean: 'pg_catalog.bool',
  timestamptz: 'pg_catalog.timestamptz',
};

function scalarLiteral(value: unknown): Scalar | undefined {
  if (typeof value === 'string') return { text: `${dollarQuote(value)}::pg_catalog.text`, type: 'text' };
  if (typeof value === 'boolean') return { text: value ? 'true' : 'false', type: 'boolean' };
  if (typeof value === 'bigint') return integerLiteral(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new LiteralError('cannot use NaN or Infinity as an SQL literal');
    if (Number.isSafeInteger(value)) return integerLiteral(BigInt(value));
    // String(n) is the shortest text that reads back as the same double (e.g. "1.5", "1e+21").
    return { text: `'${String(value)}'::pg_catalog.numeric`, type: 'numeric' };
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new LiteralError('cannot use an invalid date as an SQL literal');
    // ISO 8601 with Z: read the same under every DateStyle and TimeZone.
    return { text: `'${value.toISOString()}'::pg_catalog.timestamptz`, type: 'timestamptz' };
  }
  return undefined;
}

function integerLiteral(n: bigint): Scalar {
  const type = n >= INT8_MIN && n <= INT8_MAX ? 'bigint' : 'numeric';
  // A negative number is quoted so that no `-` ever follows the text before the literal.
  const digits = n < 0n ? `'${n}'` : `${n}`;
  return { text: `${digits}::${sqlType[type]}`, type };
}

function arrayLiteral(values: unknown[]): string {
  if (values.length === 0) return `'{}'::pg_catalog.text[]`;
  const items = values.map((v) => {
    if (v === null || v === undefined || Array.isArray(v)) throw new LiteralError('array elements must be strings, numbers or booleans');
    const s = scalarLiteral(v);
    if (s === undefined) throw new LiteralError(`cannot use a value of type ${describe(v)} in an SQL array`);
    return { value: v, scalar: s };
  });
  const types = new Set(items.map((i) => i.scalar.type));
  let type: Scalar['type'];
  if (types.size === 1) type = items[0].scalar.type;
  else if ([...types].every((t) => t === 'bigint' || t === 'numeric')) type = 'numeric';
  else type = 'text'; // a mixed list ([EU, 17]) compares as text, as its YAML reads
  const texts = items.map(({ value, scalar }) => {
    if (scalar.type === type) return scalar.text;
    if (type === 'numeric') return scalar.text.replace(/::pg_catalog\.int8$/, '::pg_catalog.numeric');
    return `${dollarQuote(value instanceof Date ? value.toISOString() : String(value))}::pg_catalog.text`;
  });
  return `ARRAY[${texts.join(', ')}]::${sqlType[type]}[]`;
}

/** `$pgv$…$pgv$` with a tag that cannot end the quote early (also not at the seam of value and closing tag). */
export function dollarQuote(value: string): string {
  if (value.includes('\0')) throw new LiteralError('text values cannot contain NUL characters');
  if (loneSurrogate.test(value)) throw new LiteralError('text values must be valid Unicode (unpaired surrogate)');
  for (let i = 0; ; i++) {
    const tag = i === 0 ? '$pgv$' : `$pgv${i}$`;
    if ((value + tag).indexOf(tag) === value.length) return `${tag}${value}${tag}`;
  }
}

/** A double-quoted identifier, always quoted so case and keywords never matter. */
export function quoteIdent(name: string): string {
  if (name === '') throw new LiteralError('an identifier cannot be empty');
  if (name.includes('\0')) throw new LiteralError('an identifier cannot contain NUL characters');
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"`. */
export function qualifiedName(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
}

/** `"schema"."table"` from a canonical policy key (`crm.employees`, `"Sales"."Orders"`). */
export function quoteRelationKey(key: string): string {
  const parts = parseQualifiedName(key);
  if (parts?.length !== 2) throw new LiteralError(`not a schema-qualified relation name: ${JSON.stringify(key)}`);
  return qualifiedName(parts[0], parts[1]);
}
