// Validates a file's data against its JSON Schema in config/schema/ (the same
// schemas editors use) and fills in the defaults the schema declares, so the
// schema is the one place a default is written down.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { issuesFromAjv, toSegments } from './schema-messages.js';
import type { PathSegment } from './errors.js';
import type { YamlSource } from './yaml-source.js';

export type SchemaName = 'pgveil' | 'users' | 'policy';

const Ajv = AjvModule.default;
const ajv = new Ajv({
  allErrors: true,
  verbose: true, // errors carry the failing data and schema, which the messages quote
  strict: true,
  strictRequired: false, // `required` inside if/then names properties declared one level up
  allowUnionTypes: true,
  useDefaults: true,
});
// Editor-only annotation (VS Code shows it instead of the raw regex); our messages use it too.
ajv.addVocabulary(['patternErrorMessage']);

const compiled = new Map<SchemaName, ValidateFunction>();

/** The repository's config/schema directory, found upwards from this module (src/, dist/ or build/src/). */
export function schemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'config', 'schema');
    if (existsSync(join(candidate, 'pgveil.schema.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error('pgveil: config/schema/ not found next to the installation');
    dir = up;
  }
}

function validator(name: SchemaName): ValidateFunction {
  let fn = compiled.get(name);
  if (!fn) {
    const schema: unknown = JSON.parse(readFileSync(join(schemaDir(), `${name}.schema.json`), 'utf8'));
    fn = ajv.compile(schema as object);
    compiled.set(name, fn);
  }
  return fn;
}

/**
 * Validates `source.data` in place (defaults are filled in) and reports into
 * `source`. True when valid. When not, the flagged values are cut out of
 * `source.data` (defaults take their place) so the semantic rules can still
 * look at the rest of the file and report everything in one run.
 */
export function checkSchema(name: SchemaName, source: YamlSource): boolean {
  const validate = validator(name);
  if (validate(source.data)) return true;
  const issues = issuesFromAjv((validate.errors ?? []) as ErrorObject[], source.data);
  for (const issue of issues) source.report(issue.path, issue.message, issue.anchor);
  source.mute(issues.map((i) => i.subject));
  for (let round = 0; round < 10; round++) {
    const cut = prunable((validate.errors ?? []) as ErrorObject[], source.data);
    if (!cut.length || !prune(source, cut) || validate(source.data)) break;
  }
  return false;
}

/** Paths of values to cut; a missing required key has nothing to cut. */
function prunable(errors: ErrorObject[], root: unknown): PathSegment[][] {
  const out: PathSegment[][] = [];
  for (const e of errors) {
    const path = toSegments(e.instancePath, root);
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required' || e.keyword === 'if') continue;
    if ((e as ErrorObject & { propertyName?: string }).propertyName !== undefined) continue; // its propertyNames error cuts the key
    if (e.keyword === 'additionalProperties') out.push([...path, String(params.additionalProperty)]);
    else if (e.keyword === 'propertyNames') out.push([...path, String(params.propertyName)]);
    else out.push(path);
  }
  return out;
}

/** Deletes the values at `paths`, later array items first so earlier indices stay valid. False if nothing was cut. */
function prune(source: YamlSource, paths: PathSegment[][]): boolean {
  const sorted = [...paths].sort(comparePathsDescending);
  let changed = false;
  for (const path of sorted) {
    if (path.length === 0) { source.data = undefined; return false; }
    let parent: unknown = source.data;
    for (const seg of path.slice(0, -1)) parent = (parent as Record<string, unknown> | undefined)?.[seg];
    const last = path[path.length - 1];
    if (Array.isArray(parent) && typeof last === 'number' && last < parent.length) { parent.splice(last, 1); changed = true; }
    else if (parent !== null && typeof parent === 'object' && Object.hasOwn(parent, last)) {
      delete (parent as Record<string, unknown>)[last];
      changed = true;
    }
  }
  return changed;
}

function comparePathsDescending(a: PathSegment[], b: PathSegment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    if (typeof a[i] === 'number' && typeof b[i] === 'number') return (b[i] as number) - (a[i] as number);
    return String(b[i]).localeCompare(String(a[i]));
  }
  return b.length - a.length;
}
