// The parameter types a client declared in its Parse message, as the
// rewriter needs them (src/rewrite/): a comparison `column = $1` runs the operator
// PostgreSQL picks for the declared type, not the column's. Which predicates
// may move below the ownership filter (pushdown.ts) and whether a guarded
// subquery may go without its fence (fence.ts) rest on that operator
// (threat B10 in docs/threat-model.md).

/**
 * Builtin type OIDs (fixed in PostgreSQL's catalog) → the typname the operator keys use. Any other declared OID is
 * unknown to the rewriter. varchar has no operators of its own: PostgreSQL compares it as text (binary-coercible),
 * so a varchar parameter — pgjdbc declares every setString() so — counts as text.
 */
const BUILTIN: ReadonlyMap<number, string> = new Map([
  [16, 'bool'], [20, 'int8'], [21, 'int2'], [23, 'int4'], [25, 'text'], [700, 'float4'], [701, 'float8'],
  [1042, 'bpchar'], [1043, 'text'], [1082, 'date'], [1083, 'time'], [1114, 'timestamp'], [1184, 'timestamptz'],
  [1186, 'interval'], [1700, 'numeric'], [2950, 'uuid'], [17, 'bytea'], [19, 'name'],
]);

/** Stands for a declared type the rewriter does not know: nothing may rest on it. */
export const UNKNOWN_TYPE = '?';

/**
 * The declared types of a Parse's parameter section at `offset` of `buf` (an int16 count, then int32 OIDs),
 * as a key: '' when none is declared (0 means "let the server infer", the common case, which allocates nothing),
 * else one entry per parameter joined by ',' — the typname, '' for 0, UNKNOWN_TYPE for an OID not listed above.
 * The caller (readParse) has checked that the section holds `count` OIDs.
 */
export function declaredParameterTypes(buf: Buffer, offset: number): string {
  const count = buf.readInt16BE(offset);
  let k = 0;
  while (k < count && buf.readUInt32BE(offset + 2 + 4 * k) === 0) k++;
  if (k === count) return '';
  const names: string[] = [];
  for (k = 0; k < count; k++) {
    const oid = buf.readUInt32BE(offset + 2 + 4 * k);
    names.push(oid === 0 ? '' : BUILTIN.get(oid) ?? UNKNOWN_TYPE);
  }
  return names.join(',');
}

/** The declared type of `$n` ('' = not declared: it takes the type its context gives it). */
export function parameterType(types: readonly string[], n: number | undefined): string {
  return n !== undefined && n >= 1 ? types[n - 1] ?? '' : UNKNOWN_TYPE;
}
