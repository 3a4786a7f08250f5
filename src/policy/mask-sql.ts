// SQL building blocks of the mask kinds (mask-kinds.ts).
//
// Everything emitted is schema-qualified (threat C5 in docs/threat-model.md): functions
// `pg_catalog.left`, types `pg_catalog.text`, operators
// `OPERATOR(pg_catalog.||)`; constants never contain a backslash, so
// standard_conforming_strings cannot change them.
import type { CatalogColumn } from '../catalog/types.js';
import { dollarQuote } from './literals.js';
import { typmodArgs } from './type-name.js';

export const op = (o: string) => `OPERATOR(pg_catalog.${o})`;
export const text = (s: string) => `${dollarQuote(s)}::pg_catalog.text`;

/** The constant `full` uses, by base type; undefined = the type has none (use `null`). */
export function fullConstant(column: CatalogColumn, type: string): string | undefined {
  const b = column.baseType;
  if (column.category === 'S') return `'XXXX'::${type}`;
  if (column.category === 'A') return `'{}'::${type}`;
  if (column.category === 'E') return `pg_catalog.enum_first(NULL::${type})`;
  if (column.category === 'R') return `'empty'::${type}`;
  if (column.category === 'N') return `'0'::${type}`;
  if (column.category === 'B') return `false::${type}`;
  // A varbit '0' cast to bit(n) is padded with zeros to the length.
  if (column.category === 'V') return `'0'::pg_catalog.varbit::${type}`;
  const constants: Record<string, string> = {
    date: '1970-01-01',
    timestamp: '1970-01-01 00:00:00',
    timestamptz: '1970-01-01 00:00:00+00',
    time: '00:00:00',
    timetz: '00:00:00+00',
    interval: '0',
    uuid: '00000000-0000-0000-0000-000000000000',
    json: '"XXXX"',
    jsonb: '"XXXX"',
    bytea: 'XXXX',
    inet: '0.0.0.0',
    cidr: '0.0.0.0/32',
    macaddr: '00:00:00:00:00:00',
    macaddr8: '00:00:00:00:00:00:00:00',
  };
  return Object.hasOwn(constants, b) ? `'${constants[b]}'::${type}` : undefined;
}

const INTEGER_RANGE: Record<string, [bigint, bigint]> = {
  int2: [-(2n ** 15n), 2n ** 15n - 1n],
  int4: [-(2n ** 31n), 2n ** 31n - 1n],
  int8: [-(2n ** 63n), 2n ** 63n - 1n],
};

/**
 * The nearest multiple of step. Near the end of an integer or numeric(p,s)
 * range it is the last multiple inside it (32767 to step 10 is 32760, not an
 * "out of range" error that would fail every query over that row).
 */
export function roundSql(ref: string, column: CatalogColumn, step: number): string {
  const stepSql = `'${String(step)}'::pg_catalog.numeric`;
  const r = `(pg_catalog.round(${ref}::pg_catalog.numeric ${op('/')} ${stepSql}) ${op('*')} ${stepSql})`;
  let bounds: [string, string] | undefined;
  const ints = INTEGER_RANGE[column.baseType];
  if (ints && Number.isInteger(step)) {
    const st = BigInt(step);
    // BigInt division truncates toward zero: the last multiples inside the range.
    bounds = [`'${(ints[0] / st) * st}'::pg_catalog.numeric`, `'${(ints[1] / st) * st}'::pg_catalog.numeric`];
  } else if (column.baseType === 'numeric' && column.typmod >= 0) {
    const [precision, scale] = typmodArgs('numeric', column.typmod);
    const hi = lastMultiple([10n ** BigInt(precision) - 1n, -scale], decimal(step));
    bounds = [`'-${hi}'::pg_catalog.numeric`, `'${hi}'::pg_catalog.numeric`];
  }
  if (!bounds) return r;
  return `CASE WHEN ${r} ${op('>')} ${bounds[1]} THEN ${bounds[1]} WHEN ${r} ${op('<')} ${bounds[0]} THEN ${bounds[0]} ELSE ${r} END`;
}

/** A finite number as mantissa × 10^exponent, exactly as JavaScript prints it ("0.5", "1e-7", "1.5e+21"). */
function decimal(x: number): [bigint, number] {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x));
  if (!m) throw new Error(`not a positive decimal: ${x}`);
  const frac = m[2] ?? '';
  return [BigInt(m[1] + frac), Number(m[3] ?? 0) - frac.length];
}

/** The largest multiple of step not above max (both mantissa × 10^exponent), as numeric input text. */
function lastMultiple([maxM, maxE]: [bigint, number], [stepM, stepE]: [bigint, number]): string {
  const shift = maxE - stepE;
  const q = shift >= 0 ? (maxM * 10n ** BigInt(shift)) / stepM : maxM / (stepM * 10n ** BigInt(-shift));
  return `${q * stepM}e${stepE}`;
}

/** keepFirst … fill … keepLast, as long as the value; a value not longer than what is kept is all fill. */
export function partialSql(v: string, options: Record<string, unknown>): string {
  const first = Number(options.keepFirst ?? 0);
  const last = Number(options.keepLast ?? 0);
  const fill = text(String(options.fill ?? 'X'));
  const len = `pg_catalog.char_length(${v})`;
  const kept = `pg_catalog.left(${v}, ${first}) ${op('||')} pg_catalog.repeat(${fill}, ${len} ${op('-')} ${first + last}) ${op('||')} pg_catalog.right(${v}, ${last})`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN ${len} ${op('<=')} ${first + last} THEN pg_catalog.repeat(${fill}, ${len}) ELSE ${kept} END`;
}

/** `a***@example.com`; a value without `@` becomes `***`. The domain is what follows the last `@`. */
export function emailSql(v: string): string {
  const domain = `pg_catalog.substring(${v}, '@([^@]*)$'::pg_catalog.text)`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN pg_catalog.strpos(${v}, '@'::pg_catalog.text) ${op('>')} 0 `
    + `THEN pg_catalog.left(${v}, 1) ${op('||')} '***@'::pg_catalog.text ${op('||')} ${domain} ELSE '***'::pg_catalog.text END`;
}
