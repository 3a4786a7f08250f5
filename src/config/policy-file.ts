// policy.yaml after schema validation: canonical table and column keys,
// placeholders that exist, defaults of mask options, and (given the users
// file) organizations that exist.
import type { Except, MaskRule, PolicyFile, PolicyTable, Subjects, UsersFile } from './types.js';
import { canonicalColumnKey, canonicalTableKey } from './identifiers.js';
import { placeholderProblems } from './placeholders.js';
import { known } from './users-file.js';
import type { PathSegment } from './errors.js';
import type { YamlSource } from './yaml-source.js';
import { offlinePolicyProblems, policyShapeProblem, writtenPath } from '../policy/check.js';
import { maskKindOf } from '../policy/mask-kinds.js';

type RawExcept = Partial<Except>;
type RawSubjects = Partial<Omit<Subjects, 'except'>> & { except?: RawExcept };
interface RawTable {
  access?: { allow?: RawSubjects; deny?: RawSubjects };
  ownership: Array<{ filter: string; except?: RawExcept }>;
  redaction: Record<string, MaskRule>;
}
interface RawPolicy extends Omit<PolicyFile, 'file' | 'tables'> { tables: Record<string, RawTable | null> }

/** `source.data` must already be schema-valid. With `users`, organizations named in rules must exist. */
export function buildPolicy(source: YamlSource, users?: UsersFile): PolicyFile {
  const raw = source.data as RawPolicy;
  const orgs = users ? new Set(Object.keys(users.organizations)) : undefined;
  const checkOrgs = (path: PathSegment[], names: string[] | undefined) => {
    if (!orgs || !names) return;
    names.forEach((name, i) => {
      if (!orgs.has(name)) source.report([...path, i], `unknown organization ${JSON.stringify(name)}${known([...orgs])}`);
    });
  };
  const except = (path: PathSegment[], e: RawExcept | undefined): Except | undefined => {
    if (!e) return undefined;
    checkOrgs([...path, 'orgs'], e.orgs);
    return { orgs: e.orgs ?? [], groups: e.groups ?? [], users: e.users ?? [] };
  };

  const tables: Record<string, PolicyTable> = Object.create(null) as Record<string, PolicyTable>;
  const firstKey = new Map<string, string>();
  for (const [key, entry] of Object.entries(raw.tables)) {
    const t: RawTable = entry ?? { ownership: [], redaction: {} }; // `schema.table:` with nothing = listed, no rules
    const canonical = canonicalTableKey(key);
    if (canonical === undefined) continue; // already reported by the schema
    const path: PathSegment[] = ['tables', key];
    const seen = firstKey.get(canonical);
    if (seen !== undefined) {
      source.report(path, `same table as ${JSON.stringify(seen)} (unquoted names are lower-cased); merge the two entries`, 'key');
      continue;
    }
    firstKey.set(canonical, key);

    const table: PolicyTable = { ownership: [], redaction: Object.create(null) as Record<string, MaskRule> };
    if (t.access) {
      table.access = {};
      for (const side of ['allow', 'deny'] as const) {
        const s = t.access[side];
        if (!s) continue;
        const sp = [...path, 'access', side];
        checkOrgs([...sp, 'orgs'], s.orgs);
        const subjects: Subjects = { orgs: s.orgs ?? [], groups: s.groups ?? [], users: s.users ?? [] };
        const ex = except([...sp, 'except'], s.except);
        if (ex) subjects.except = ex;
        table.access[side] = subjects;
      }
    }
    t.ownership.forEach((rule, i) => {
      const rp = [...path, 'ownership', i];
      for (const problem of placeholderProblems(rule.filter, { column: false })) source.report([...rp, 'filter'], problem);
      const ex = except([...rp, 'except'], rule.except);
      table.ownership.push(ex ? { filter: rule.filter, except: ex } : { filter: rule.filter });
    });
    const firstColumn = new Map<string, string>();
    for (const [column, rule] of Object.entries(t.redaction)) {
      const cp = [...path, 'redaction', column];
      const name = canonicalColumnKey(column);
      if (name === undefined) continue;
      const dup = firstColumn.get(name);
      if (dup !== undefined) {
        source.report(cp, `same column as ${JSON.stringify(dup)} (unquoted names are lower-cased)`, 'key');
        continue;
      }
      firstColumn.set(name, column);
      const kind = maskKindOf(rule.mask);
      const expr = kind?.templateOption;
      if (expr !== undefined && typeof rule[expr] === 'string') {
        for (const problem of placeholderProblems(rule[expr], { column: true })) source.report([...cp, expr], problem);
      }
      // The schema cannot give per-kind defaults: each kind's record does.
      const mask: MaskRule = { ...kind?.defaults, ...rule };
      const ex = except([...cp, 'except'], rule.except as RawExcept | undefined);
      if (ex) mask.except = ex;
      table.redaction[name] = mask;
    }
    tables[canonical] = table;
  }
  const policy: PolicyFile = { file: source.file, layers: raw.layers, defaults: raw.defaults, secrets: raw.secrets, functions: { allow: raw.functions?.allow ?? [] }, channels: { listen: raw.channels?.listen ?? [] }, tables };
  const shape = policyShapeProblem(source);
  if (shape) source.report(source.has(['defaults']) ? ['defaults'] : [], shape, 'key');
  // What serve would refuse, refused here too (only on an otherwise clean file: the rest would repeat it).
  if (!source.issues.length) for (const p of offlinePolicyProblems(policy)) source.report(writtenPath(source.data, p.path), p.message);
  return policy;
}
