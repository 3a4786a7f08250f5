// Turns ajv's errors into one plain-language issue per mistake: which key,
// where to point (key, value or the mapping missing something), and what was
// expected. String values are only echoed for enums: a value that fails a
// pattern may be a password pasted into the wrong place.
import type { ErrorObject } from 'ajv';
import type { PathSegment } from './errors.js';
import type { Anchor } from './yaml-source.js';

export interface SchemaIssue {
  path: PathSegment[];
  message: string;
  anchor: Anchor;
  /** The value the issue is about (for a missing key: that key under its mapping). */
  subject: PathSegment[];
}

type Schema = Record<string, unknown>;

export function issuesFromAjv(errors: ErrorObject[], root: unknown): SchemaIssue[] {
  const grouped = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const out: SchemaIssue[] = [];
  for (const e of errors) {
    if (e.keyword === 'if') continue; // the failing `then` keyword is reported itself
    if ((e as ErrorObject & { propertyName?: string }).propertyName !== undefined) continue; // reported by its propertyNames error
    if (grouped.some((g) => g !== e && e.schemaPath.startsWith(g.schemaPath + '/'))) continue; // one message per anyOf
    if (e.keyword === 'propertyNames' && isUnknownKey(errors, e)) continue; // already "unknown key"
    const path = toSegments(e.instancePath, root);
    const issue = describe(e, path, errors);
    if (!out.some((o) => o.message === issue.message && samePath(o.path, issue.path))) out.push(issue);
  }
  return out;
}

function describe(e: ErrorObject, path: PathSegment[], all: ErrorObject[]): SchemaIssue {
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Schema;
  const at = (message: string, anchor: Anchor = 'value', p = path): SchemaIssue => ({ path: p, message, anchor, subject: p });
  switch (e.keyword) {
    case 'type':
      return at(`expected ${describeType(params.type)}, got ${describeValue(e.data)}`);
    case 'required':
      return { ...at(`missing required key ${quote(params.missingProperty)}${maskSuffix(e)}`, 'mapping'), subject: [...path, String(params.missingProperty)] };
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((parent.properties ?? {}) as Schema);
      const near = closest(key, allowed);
      const hint = near ? `; did you mean ${quote(near)}?` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : '';
      return at(`unknown key ${quote(key)}${hint}`, 'key', [...path, key]);
    }
    case 'propertyNames': {
      const key = String(params.propertyName);
      const rule = e.schema as Schema;
      if (Array.isArray(rule.enum)) {
        const options = (rule.enum as string[]).filter((k) => k !== 'mask');
        const kind = maskKind(e.data);
        return at(kind !== undefined
          ? `option ${quote(key)} does not apply to mask ${kind} (its options: ${options.join(', ')})`
          : `key ${quote(key)} is not allowed here (allowed: ${options.join(', ')})`, 'key', [...path, key]);
      }
      if (typeof rule.patternErrorMessage === 'string') return at(rule.patternErrorMessage, 'key', [...path, key]);
      if (typeof rule.pattern === 'string') return at(`key must match ${rule.pattern}`, 'key', [...path, key]);
      return at('key must not be empty', 'key', [...path, key]);
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]) ?? [];
      const hint = e.data === null && allowed.includes('null') ? ' (write "null" in quotes for the null mask)' : '';
      return at(`expected one of ${allowed.map(quote).join(', ')}; got ${echo(e.data)}${hint}`);
    }
    case 'const':
      return at(`expected ${quote(params.allowedValue)}; got ${echo(e.data)}`);
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return at(`expected ${describeSchema(parent)}, got ${describeValue(e.data)}`);
    case 'minLength':
      return at(params.limit === 1 ? 'must not be empty' : `expected at least ${params.limit} characters`);
    case 'maxLength':
      return at(params.limit === 1 ? 'expected a single character' : `expected at most ${params.limit} characters`);
    case 'pattern':
      return at(typeof parent.patternErrorMessage === 'string' ? parent.patternErrorMessage : `must match ${params.pattern}`);
    case 'uniqueItems':
      return at(`duplicate entry ${echo((e.data as unknown[])[Number(params.i)])} (items ${params.j} and ${params.i})`);
    case 'minProperties': {
      const keys = Object.keys((parent.properties ?? {}) as Schema);
      return at(keys.length ? `must name at least one of ${keys.join(', ')}` : 'must not be empty', 'mapping');
    }
    case 'anyOf': case 'oneOf':
      return at(describeAlternatives(e, all));
    case 'false schema':
      return at('not allowed here', 'key');
    default:
      return at(e.message ?? `fails ${e.keyword}`);
  }
}

function isUnknownKey(errors: ErrorObject[], e: ErrorObject): boolean {
  const key = (e.params as Record<string, unknown>).propertyName;
  return errors.some((x) => x.keyword === 'additionalProperties' && x.instancePath === e.instancePath
    && (x.params as Record<string, unknown>).additionalProperty === key);
}

function describeAlternatives(e: ErrorObject, all: ErrorObject[]): string {
  const inner = all.filter((x) => x.schemaPath.startsWith(e.schemaPath + '/') && x.instancePath === e.instancePath);
  if (inner.length && inner.every((x) => x.keyword === 'required')) {
    const keys = inner.map((x) => quote((x.params as Record<string, unknown>).missingProperty));
    return `needs ${keys.join(' or ')}${maskSuffix(e)}`;
  }
  const branches = (e.schema as Schema[]).map(describeSchema);
  return `expected ${branches.join(' or ')}, got ${describeValue(e.data)}`;
}

/** "an integer from 0 to 65535", "\"auto\"", "a list" … */
export function describeSchema(s: Schema): string {
  if ('const' in s) return quote(s.const);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(quote).join(', ')}`;
  const base = describeType(s.type);
  const lo = typeof s.minimum === 'number' ? s.minimum : undefined;
  const hi = typeof s.maximum === 'number' ? s.maximum : undefined;
  if (lo !== undefined && hi !== undefined) return `${base} from ${lo} to ${hi}`;
  if (lo !== undefined) return `${base} >= ${lo}`;
  if (typeof s.exclusiveMinimum === 'number') return `${base} > ${s.exclusiveMinimum}`;
  if (hi !== undefined) return `${base} <= ${hi}`;
  return base;
}

function describeType(type: unknown): string {
  const names: Record<string, string> = {
    object: 'a mapping', array: 'a list', string: 'a string', integer: 'an integer',
    number: 'a number', boolean: 'true or false', null: 'an empty value',
  };
  if (Array.isArray(type)) {
    const words = type.map((t) => String(t) === 'boolean' ? 'boolean' : (names[String(t)] ?? String(t)).replace(/^an? /, ''));
    return `a ${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
  }
  return names[String(type)] ?? 'a value';
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  return String(v);
}

function echo(v: unknown): string {
  if (typeof v === 'string') return quote(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return describeValue(v);
}

function quote(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

function maskKind(data: unknown): string | undefined {
  const kind = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).mask : undefined;
  return typeof kind === 'string' ? kind : undefined;
}

/** Options that only one mask kind needs say which kind needs them. */
function maskSuffix(e: ErrorObject): string {
  const kind = maskKind(e.data);
  return kind !== undefined && e.schemaPath.includes('/then/') ? ` (mask ${kind} needs it)` : '';
}

export function toSegments(pointer: string, root: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key: PathSegment = Array.isArray(node) ? Number(seg) : seg;
    out.push(key);
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function samePath(a: PathSegment[], b: PathSegment[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** The allowed key a typo most likely meant (edit distance ≤ 2, or ≤ a third of the key). */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of allowed) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) { best = candidate; bestDistance = d; }
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
