// Every mask kind as one record (docs/configuration.md, Masks): its precedence rank, its
// options, how policy.yaml's options are checked, which column types it fits,
// its SQL, and how two rules of the kind combine. Adding a kind means adding
// its record here and its `mask` enum value and options to
// config/schema/policy.schema.json (a test keeps the two in step).
//
// Every expression has exactly the column's type. NULL stays NULL for every
// kind except `full`, which returns its constant for NULL too: whether a value
// is present is itself part of the value (`WHERE x IS NULL`).
import type { CatalogColumn } from '../catalog/types.js';
import { expressionSyntaxProblem } from './expression-syntax.js';
import { emailSql, fullConstant, partialSql, roundSql, text } from './mask-sql.js';
import { bindTemplate, parseTemplate, type Template } from './template.js';
import type { MaskSpec } from './types.js';

export type MaskOptions = Record<string, unknown>;

/** Where a mask expression is placed: the column and its reference in the forms the kinds need. */
export interface MaskSite {
  column: CatalogColumn;
  /** The column's type as a cast target (castTypeName). */
  type: string;
  /** The column reference as given, already quoted (`"t"."ssn"`). */
  columnRef: string;
  /** `(<columnRef>)`. */
  ref: string;
  /** `(<columnRef>)::pg_catalog.text`. */
  asText: string;
  /** The quoted name of an upstream helper function (`"pgveil"."hash"`, see scramble-sql.ts). */
  helper(fn: string): string;
}

/** How a kind reports problems with a rule's options while the policy compiles. */
export interface MaskCompileContext {
  /** A problem with the rule, which is then left out; returns undefined so `return bad(…)` reads as intended. */
  bad(message: string): undefined;
  /** A problem at the rule's option `key`. */
  problemAt(key: string, message: string): void;
}

export interface CompiledMaskOptions {
  options: MaskOptions;
  /** A scanned SQL template among the options (custom's `expr`), bound per user by `bind`. */
  template?: Template;
}

export interface MaskKindRecord {
  /** Precedence: of several rules for one column the higher rank wins (precedence.ts). */
  rank: number;
  /** The kind's options besides `mask` and `except`, as the JSON Schema allows them. */
  options: readonly string[];
  /** Defaults of options a rule leaves out (the schema cannot give per-kind defaults). */
  defaults?: Readonly<MaskOptions>;
  /** Runs a helper function installed upstream with secrets.scrambleKey. */
  keyed?: boolean;
  /** The option holding SQL over `${column}` and `${user.*}`, whose placeholders the loader checks at their line. */
  templateOption?: string;
  /** Options that are internal and not shown (by `pgveil explain`). */
  hidden?: readonly string[];
  /** Checks a rule's options as written; undefined leaves the rule out (its problems reported). Absent: options as written. */
  compile?(options: MaskOptions, ctx: MaskCompileContext): CompiledMaskOptions | undefined;
  /** A compiled template bound for one user; undefined when a value cannot be bound (the mask becomes null). */
  bind?(template: Template, value: (slot: string) => string | undefined): MaskOptions | undefined;
  /** Why the kind cannot mask `column` (the text after "mask K does not fit column C of type T: "); undefined when it fits. */
  misfit(column: CatalogColumn, options: MaskOptions): string | undefined;
  /** The mask as SQL of exactly the column's type; only called on a column it fits. */
  expression(site: MaskSite, options: MaskOptions): string;
  /**
   * Two rules of this kind with different options: options that show no more
   * than either (one of the two, or new ones), or undefined when they cannot
   * be ordered (the mask becomes null). Absent: they cannot be ordered.
   */
  meet?(a: MaskOptions, b: MaskOptions): MaskOptions | undefined;
}

const INTEGERS = new Set(['int2', 'int4', 'int8']);
const ROUNDABLE = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const TRUNCATABLE = new Set(['date', 'timestamp', 'timestamptz']);
/** truncate's units, finest first. */
const TRUNCATE_UNITS = ['day', 'month', 'year'];
const PARTIAL_DEFAULTS = Object.freeze({ keepFirst: 0, keepLast: 0, fill: 'X' });

const textOnly = (kind: string) => (column: CatalogColumn) => (column.category === 'S' ? undefined : `${kind} works on text types only`);
const fits = () => undefined;

const table = {
  null: {
    rank: 6,
    options: [],
    misfit: fits,
    expression: ({ type }) => `NULL::${type}`,
  },
  full: {
    rank: 5,
    options: [],
    misfit: (column) => (fullConstant(column, 'x') ? undefined : 'the type has no neutral constant; use null'),
    expression: ({ column, type }) => fullConstant(column, type)!,
  },
  hash: {
    rank: 4,
    options: [],
    keyed: true,
    misfit: textOnly('hash'),
    expression: ({ type, asText, helper }) => `${helper('hash')}(${asText})::${type}`,
  },
  scramble: {
    rank: 3,
    options: [],
    keyed: true,
    misfit(column) {
      const b = column.baseType;
      if (column.category === 'S' || INTEGERS.has(b) || b === 'uuid') return undefined;
      if (b === 'numeric') return column.typmod < 0 ? undefined : 'a scrambled numeric needs the full numeric range; use numeric without (precision, scale), round or null';
      return 'scramble works on text, smallint, integer, bigint, numeric and uuid';
    },
    expression({ column, type, ref, asText, helper }) {
      const arg = column.category === 'S' ? asText : `${ref}::pg_catalog.${column.baseType}`;
      return `${helper('scramble')}(${arg})::${type}`;
    },
  },
  partial: {
    rank: 2,
    options: ['keepFirst', 'keepLast', 'fill'],
    defaults: PARTIAL_DEFAULTS,
    compile(options, { bad }) {
      const { keepFirst = PARTIAL_DEFAULTS.keepFirst, keepLast = PARTIAL_DEFAULTS.keepLast, fill = PARTIAL_DEFAULTS.fill } = options;
      if (!isCount(keepFirst) || !isCount(keepLast)) return bad('keepFirst and keepLast must be whole numbers ≥ 0');
      if (typeof fill !== 'string' || [...fill].length !== 1) return bad('fill must be one character');
      return { options: { keepFirst, keepLast, fill } };
    },
    misfit: textOnly('partial'),
    expression: ({ type, asText }, options) => `(${partialSql(asText, options)})::${type}`,
    // Fewer kept characters on each side; the fill is any fixed pick, so that meet stays commutative.
    meet(a, b) {
      const fa = String(a.fill ?? 'X');
      const fb = String(b.fill ?? 'X');
      return { keepFirst: Math.min(num(a.keepFirst), num(b.keepFirst)), keepLast: Math.min(num(a.keepLast), num(b.keepLast)), fill: fa <= fb ? fa : fb };
    },
  },
  email: {
    rank: 2,
    options: [],
    misfit: textOnly('email'),
    expression: ({ type, asText }) => `(${emailSql(asText)})::${type}`,
  },
  truncate: {
    rank: 2,
    options: ['to'],
    compile: (options, { bad }) => (['year', 'month', 'day'].includes(String(options.to)) ? { options } : bad('to must be year, month or day')),
    misfit: (column) => (TRUNCATABLE.has(column.baseType) ? undefined : 'truncate works on date, timestamp and timestamptz'),
    expression({ column, type, ref }, options) {
      const unit = text(String(options.to));
      // timestamptz is cut in UTC: in the session's TimeZone a user could move the
      // boundary hour by hour and read the hidden time back.
      if (column.baseType === 'timestamptz') return `pg_catalog.date_trunc(${unit}, ${ref}::pg_catalog.timestamptz, 'UTC'::pg_catalog.text)::${type}`;
      return `pg_catalog.date_trunc(${unit}, ${ref}::pg_catalog.timestamp)::${type}`;
    },
    // The coarser unit.
    meet(a, b) {
      const ia = TRUNCATE_UNITS.indexOf(String(a.to));
      const ib = TRUNCATE_UNITS.indexOf(String(b.to));
      if (ia < 0 || ib < 0) return undefined;
      return ia >= ib ? a : b;
    },
  },
  round: {
    rank: 2,
    options: ['step'],
    compile: (options, { bad }) => (isStep(options.step) ? { options } : bad('step must be a number > 0')),
    misfit(column, options) {
      const b = column.baseType;
      if (!ROUNDABLE.has(b)) return 'round works on numbers';
      const step = options.step;
      if (typeof step !== 'number' || !(step > 0)) return 'step must be a number > 0';
      if (INTEGERS.has(b) && !Number.isInteger(step)) return 'an integer column needs a whole-number step';
      return undefined;
    },
    expression: ({ column, type, ref }, options) => `(${roundSql(ref, column, Number(options.step))})::${type}`,
    // The larger step when it is a multiple of the smaller (10 and 15 cannot be ordered).
    meet(a, b) {
      const x = num(a.step);
      const y = num(b.step);
      const [small, big] = x <= y ? [x, y] : [y, x];
      if (small > 0 && Number.isInteger(big / small)) return big === x ? a : b;
      return undefined;
    },
  },
  custom: {
    rank: 1,
    options: ['expr'],
    templateOption: 'expr',
    // The pieces between `${column}`s once bound: masks join them with the column reference.
    hidden: ['parts'],
    compile(options, { bad, problemAt }) {
      if (typeof options.expr !== 'string') return bad('expr must be an SQL expression');
      const { template, problems } = parseTemplate(options.expr, { column: true });
      for (const message of problems) problemAt('expr', message);
      const syntax = template && expressionSyntaxProblem(template);
      if (syntax) problemAt('expr', syntax);
      return template && !syntax ? { options, template } : undefined;
    },
    bind(template, value) {
      const parts = bindTemplate(template, value);
      // Kept as pieces, so text inside a bound literal is never taken for `${column}`.
      return parts === undefined ? undefined : { expr: parts.join('${column}'), parts };
    },
    misfit: fits,
    expression({ columnRef, type }, options) {
      const parts = Array.isArray(options.parts) ? options.parts.map(String) : String(options.expr).split('${column}');
      return `(${parts.join(columnRef)})::${type}`;
    },
  },
} satisfies Record<string, MaskKindRecord>;

export type MaskKind = keyof typeof table;

/** The mask kinds by name. */
export const maskKinds: Readonly<Record<MaskKind, MaskKindRecord>> = table;

/** The record of `kind`, or undefined for a name that is no mask kind (also `constructor` and the like). */
export function maskKindOf(kind: string): MaskKindRecord | undefined {
  return Object.hasOwn(maskKinds, kind) ? maskKinds[kind as MaskKind] : undefined;
}

/** `partial (keepFirst=0, keepLast=4, fill="X")`: a mask as `pgveil explain` shows it. */
export function describeMask(spec: MaskSpec): string {
  const hidden = maskKindOf(spec.kind)?.hidden ?? [];
  const options = Object.entries(spec.options).filter(([k]) => !hidden.includes(k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${spec.kind}${options.length ? ` (${options.join(', ')})` : ''}`;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function isStep(v: unknown): v is number {
  return typeof v === 'number' && v > 0 && Number.isFinite(v);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
