// Each mask kind as an SQL expression of exactly the column's type (SPEC
// §2.3). The rewriter places these inside the replacement subquery, so every
// predicate, join, aggregate and error of the user's query sees only them.
//
// Everything emitted is schema-qualified (THREATS C5): functions
// `pg_catalog.left`, types `pg_catalog.text`, operators
// `OPERATOR(pg_catalog.||)`; constants never contain a backslash, so
// standard_conforming_strings cannot change them. NULL stays NULL for every
// kind except `full`, which returns its constant for NULL too: whether a
// value is present is itself part of the value (`WHERE x IS NULL`).
import type { CatalogColumn } from '../catalog/types.js';
import { parseQualifiedName } from '../config/identifiers.js';
import { dollarQuote, quoteIdent } from './literals.js';
import { castTypeName, isBuiltinType, TypeNameError, typmodArgs } from './type-name.js';
import type { MaskSpec } from './types.js';

export interface MaskHelpers {
  /** Schema of the upstream helper functions `scramble` and `hash` (installed by scramble-sql.ts). */
  schema: string;
}

export const defaultMaskHelpers: MaskHelpers = { schema: 'pgveil' };

const op = (o: string) => `OPERATOR(pg_catalog.${o})`;
const text = (s: string) => `${dollarQuote(s)}::pg_catalog.text`;
const INTEGERS = new Set(['int2', 'int4', 'int8']);
const ROUNDABLE = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const TRUNCATABLE = new Set(['date', 'timestamp', 'timestamptz']);

/** The constant `full` uses, by base type; undefined = the type has none (use `null`). */
function fullConstant(column: CatalogColumn, type: string): string | undefined {
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

/** `crm.mood`, `"Crm"."Mood"[]`, `public.vector(3)`: schema-qualified once modifiers and array brackets are cut off. */
function isQualifiedTypeName(sqlType: string): boolean {
  const bare = sqlType.replace(/(?:\[\])+$/, '').replace(/\([0-9, ]*\)$/, '');
  return parseQualifiedName(bare)?.length === 2;
}

/** Why `spec` cannot mask `column` (a load error), or undefined when it fits. */
export function checkMaskFits(spec: MaskSpec, column: CatalogColumn): string | undefined {
  const b = column.baseType;
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
  switch (spec.kind) {
    case 'null': case 'custom':
      return undefined;
    case 'full':
      return fullConstant(column, 'x') ? undefined : `${what}: the type has no neutral constant; use null`;
    case 'partial': case 'email': case 'hash':
      return column.category === 'S' ? undefined : `${what}: ${spec.kind} works on text types only`;
    case 'scramble':
      if (column.category === 'S' || INTEGERS.has(b) || b === 'uuid') return undefined;
      if (b === 'numeric') return column.typmod < 0 ? undefined : `${what}: a scrambled numeric needs the full numeric range; use numeric without (precision, scale), round or null`;
      return `${what}: scramble works on text, smallint, integer, bigint, numeric and uuid`;
    case 'truncate':
      return TRUNCATABLE.has(b) ? undefined : `${what}: truncate works on date, timestamp and timestamptz`;
    case 'round': {
      if (!ROUNDABLE.has(b)) return `${what}: round works on numbers`;
      const step = spec.options.step;
      if (typeof step !== 'number' || !(step > 0)) return `${what}: step must be a number > 0`;
      if (INTEGERS.has(b) && !Number.isInteger(step)) return `${what}: an integer column needs a whole-number step`;
      return undefined;
    }
    default:
      return `unknown mask ${String(spec.kind)}`;
  }
}

/**
 * The SQL of `spec` applied to `columnRef` (an already-quoted reference such
 * as `"t"."ssn"`), of exactly the column's type. Throws when the mask does not
 * fit (checkMaskFits), which a checked policy never reaches.
 */
export function maskExpression(spec: MaskSpec, column: CatalogColumn, columnRef: string, helpers: MaskHelpers = defaultMaskHelpers): string {
  const problem = checkMaskFits(spec, column);
  if (problem) throw new Error(problem);
  const type = castTypeName(column);
  const ref = `(${columnRef})`;
  const asText = `${ref}::pg_catalog.text`;
  const helper = (fn: string) => `${quoteIdent(helpers.schema)}.${quoteIdent(fn)}`;
  switch (spec.kind) {
    case 'null':
      return `NULL::${type}`;
    case 'full':
      return fullConstant(column, type)!;
    case 'partial':
      return `(${partial(asText, spec.options)})::${type}`;
    case 'email':
      return `(${email(asText)})::${type}`;
    case 'hash':
      return `${helper('hash')}(${asText})::${type}`;
    case 'scramble': {
      const arg = column.category === 'S' ? asText : `${ref}::pg_catalog.${column.baseType}`;
      return `${helper('scramble')}(${arg})::${type}`;
    }
    case 'truncate': {
      const unit = text(String(spec.options.to));
      // timestamptz is cut in UTC: in the session's TimeZone a user could move the
      // boundary hour by hour and read the hidden time back.
      if (column.baseType === 'timestamptz') return `pg_catalog.date_trunc(${unit}, ${ref}::pg_catalog.timestamptz, 'UTC'::pg_catalog.text)::${type}`;
      return `pg_catalog.date_trunc(${unit}, ${ref}::pg_catalog.timestamp)::${type}`;
    }
    case 'round':
      return `(${round(ref, column, Number(spec.options.step))})::${type}`;
    case 'custom': {
      const parts = Array.isArray(spec.options.parts) ? spec.options.parts.map(String) : String(spec.options.expr).split('${column}');
      return `(${parts.join(columnRef)})::${type}`;
    }
  }
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
function round(ref: string, column: CatalogColumn, step: number): string {
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
function partial(v: string, options: Record<string, unknown>): string {
  const first = Number(options.keepFirst ?? 0);
  const last = Number(options.keepLast ?? 0);
  const fill = text(String(options.fill ?? 'X'));
  const len = `pg_catalog.char_length(${v})`;
  const kept = `pg_catalog.left(${v}, ${first}) ${op('||')} pg_catalog.repeat(${fill}, ${len} ${op('-')} ${first + last}) ${op('||')} pg_catalog.right(${v}, ${last})`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN ${len} ${op('<=')} ${first + last} THEN pg_catalog.repeat(${fill}, ${len}) ELSE ${kept} END`;
}

/** `a***@example.com`; a value without `@` becomes `***`. The domain is what follows the last `@`. */
function email(v: string): string {
  const domain = `pg_catalog.substring(${v}, '@([^@]*)$'::pg_catalog.text)`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN pg_catalog.strpos(${v}, '@'::pg_catalog.text) ${op('>')} 0 `
    + `THEN pg_catalog.left(${v}, 1) ${op('||')} '***@'::pg_catalog.text ${op('||')} ${domain} ELSE '***'::pg_catalog.text END`;
}
