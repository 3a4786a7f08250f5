// policy.yaml → per-table rules (compilePolicy), and per user → the profile
// of exactly the rules that apply to them with their attributes bound as
// literals (profileFor). Profiles with equal content are one interned object.
//
// Binding (threat C2 in docs/threat-model.md): `${user.name}`, `${user.org}`, `${user.groups}`
// (text[]), `${user.attributes.<k>}` (the user's own value, else their
// organization's) become `(<sqlLiteral>)`. A value that is missing or cannot
// be a literal fails closed: the filter becomes `false` (no rows), a custom
// mask becomes `null`.
import { parseQualifiedName } from '../config/identifiers.js';
import type { Except, MaskRule, Organization, PolicyFile, Subjects, User, UsersFile } from '../config/types.js';
import { canonicalProfile, profileKey } from './canonical.js';
import { sqlLiteral } from './literals.js';
import { maskKindOf, maskKinds } from './mask-kinds.js';
import { mostRestrictive } from './precedence.js';
import { bindTemplate, parseTemplate, type Template } from './template.js';
import { expressionSyntaxProblem } from './expression-syntax.js';
import { formatPath, type PathSegment } from '../config/errors.js';
import type { MaskKind, MaskSpec, Profile, TableProfile } from './types.js';

export interface CompiledFilter {
  /** As written in policy.yaml (for reports and `pgveil explain`). */
  source: string;
  template: Template;
  except?: Except;
}

export interface CompiledMask {
  kind: MaskKind;
  /** Options as written minus `mask` and `except`, as the kind's compile checked them. */
  options: Record<string, unknown>;
  /** A template the kind scanned from its options (custom's `expr`). */
  template?: Template;
  except?: Except;
}

export interface CompiledTable {
  /** Canonical "schema.table" key. */
  relation: string;
  schema: string;
  name: string;
  access?: { allow?: Subjects; deny?: Subjects };
  filters: CompiledFilter[];
  /** Column (catalog spelling) → every rule given for it; several combine by precedence. */
  masks: Map<string, CompiledMask[]>;
}

export interface CompiledPolicy {
  generation: number;
  layers: PolicyFile['layers'];
  defaults: PolicyFile['defaults'];
  /** Whether policy.secrets.scrambleKey is set (the key itself lives upstream, see scramble-sql.ts). */
  scrambleKeyConfigured: boolean;
  tables: Map<string, CompiledTable>;
  organizations: Record<string, Organization>;
  /** Interned profiles by canonical content; short key → canonical content (to catch key collisions). */
  readonly interned: Map<string, Profile>;
  readonly keys: Map<string, string>;
  /** profileFor's memo: User objects are treated as immutable (a users reload makes new ones). */
  readonly byUser: WeakMap<User, Profile>;
}

/** A problem at a key path of policy.yaml (table and column keys canonical). */
export interface PolicyProblem { path: PathSegment[]; message: string }

export class PolicyCompileError extends Error {
  /** `path: message`, one per problem. */
  readonly problems: string[];
  constructor(readonly located: PolicyProblem[]) {
    const problems = located.map((p) => `${formatPath(p.path)}: ${p.message}`);
    super(`invalid policy:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** Compiles a loaded policy. Throws PolicyCompileError listing every problem. */
export function compilePolicy(policy: PolicyFile, users: UsersFile, generation: number): CompiledPolicy {
  const problems: PolicyProblem[] = [];
  const tables = compileTables(policy, problems);
  if (problems.length) throw new PolicyCompileError(problems);
  return {
    generation,
    layers: policy.layers,
    defaults: policy.defaults,
    scrambleKeyConfigured: Boolean(policy.secrets.scrambleKey),
    tables,
    organizations: users.organizations,
    interned: new Map(),
    keys: new Map(),
    byUser: new WeakMap(),
  };
}

/**
 * The policy's tables as serve uses them; every problem (names, filter and
 * mask syntax, mask options, keys a mask needs) is added to `problems`. The
 * loader runs this too, so `pgveil check` refuses exactly what serve refuses.
 */
export function compileTables(policy: PolicyFile, problems: PolicyProblem[]): Map<string, CompiledTable> {
  const tables = new Map<string, CompiledTable>();
  for (const [relation, table] of Object.entries(policy.tables)) {
    const where: PathSegment[] = ['tables', relation];
    const parts = parseQualifiedName(relation);
    if (parts?.length !== 2) {
      problems.push({ path: where, message: 'not a schema-qualified table name' });
      continue;
    }
    const filters: CompiledFilter[] = [];
    table.ownership.forEach((rule, i) => {
      const path = [...where, 'ownership', i, 'filter'];
      const { template, problems: p } = parseTemplate(rule.filter, { column: false });
      problems.push(...p.map((message) => ({ path, message })));
      const syntax = template && expressionSyntaxProblem(template);
      if (syntax) problems.push({ path, message: syntax });
      else if (template) filters.push({ source: rule.filter, template, ...(rule.except ? { except: rule.except } : {}) });
    });
    const masks = new Map<string, CompiledMask[]>();
    for (const [columnKey, rule] of Object.entries(table.redaction)) {
      const path = [...where, 'redaction', columnKey];
      const column = parseQualifiedName(columnKey);
      if (column?.length !== 1) {
        problems.push({ path, message: 'not a column name' });
        continue;
      }
      const compiled = compileMask(rule, path, problems);
      if (!compiled) continue;
      if (maskKinds[compiled.kind].keyed && !policy.secrets.scrambleKey) {
        problems.push({ path, message: `mask ${compiled.kind} needs secrets.scrambleKey (the key the pgveil helper schema is installed with)` });
      }
      const list = masks.get(column[0]) ?? [];
      list.push(compiled);
      masks.set(column[0], list);
    }
    tables.set(relation, { relation, schema: parts[0], name: parts[1], access: table.access, filters, masks });
  }
  return tables;
}

function compileMask(rule: MaskRule, where: PathSegment[], problems: PolicyProblem[]): CompiledMask | undefined {
  const { mask, except, ...options } = rule;
  const bad = (message: string) => { problems.push({ path: where, message }); return undefined; };
  const kind = maskKindOf(mask);
  if (!kind) return bad(`unknown mask ${JSON.stringify(mask)}`);
  const compiled = kind.compile ? kind.compile(options, { bad, problemAt: (key, message) => problems.push({ path: [...where, key], message }) }) : { options };
  if (!compiled) return undefined;
  return { kind: mask, options: compiled.options, ...(except ? { except } : {}), ...(compiled.template ? { template: compiled.template } : {}) };
}

/** The user's effective policy: the same object for every user whose effective policy is equal. */
export function profileFor(compiled: CompiledPolicy, user: User): Profile {
  const memo = compiled.byUser.get(user);
  if (memo) return memo;
  const bind = binder(compiled, user);
  const tables = new Map<string, TableProfile>();
  for (const t of compiled.tables.values()) tables.set(t.relation, tableProfile(compiled, t, user, bind));
  const body = { unlistedRelations: compiled.defaults.unlistedRelations, writes: compiled.defaults.writes, tables };
  const canonical = canonicalProfile(body);
  let profile = compiled.interned.get(canonical);
  if (!profile) {
    profile = { key: uniqueKey(compiled, canonical), generation: compiled.generation, ...body };
    compiled.interned.set(canonical, profile);
  }
  compiled.byUser.set(user, profile);
  return profile;
}

/** A 12-hex-character key, longer only if two different profiles of this policy would share it. */
function uniqueKey(compiled: CompiledPolicy, canonical: string): string {
  for (let length = 12; ; length += 4) {
    const key = profileKey(canonical, length);
    const owner = compiled.keys.get(key);
    if (owner === undefined || owner === canonical) {
      compiled.keys.set(key, canonical);
      return key;
    }
  }
}

function tableProfile(compiled: CompiledPolicy, t: CompiledTable, user: User, bind: Binder): TableProfile {
  const access = !compiled.layers.access || mayAccess(t.access, user);
  const filters: string[] = [];
  const masks = new Map<string, MaskSpec>();
  if (!access) return { relation: t.relation, access, filters, masks };
  if (compiled.layers.ownership) {
    for (const f of t.filters) {
      if (isExempt(f.except, user)) continue;
      const bound = bindTemplate(f.template, bind);
      filters.push(bound === undefined ? 'false' : `(${bound[0]})`);
    }
  }
  if (compiled.layers.redaction) {
    for (const [column, rules] of t.masks) {
      const specs = rules.filter((r) => !isExempt(r.except, user)).map((r) => maskSpec(r, bind));
      const spec = mostRestrictive(specs);
      if (spec) masks.set(column, spec);
    }
  }
  return { relation: t.relation, access, filters, masks };
}

function maskSpec(rule: CompiledMask, bind: Binder): MaskSpec {
  const kind = maskKinds[rule.kind];
  if (!rule.template || !kind.bind) return { kind: rule.kind, options: { ...rule.options } };
  const options = kind.bind(rule.template, bind);
  return options === undefined ? { kind: 'null', options: {} } : { kind: rule.kind, options };
}

type Binder = (slot: string) => string | undefined;

function binder(compiled: CompiledPolicy, user: User): Binder {
  const orgAttributes = user.org !== undefined && Object.hasOwn(compiled.organizations, user.org)
    ? compiled.organizations[user.org].attributes
    : undefined;
  return (slot) => {
    let value: unknown;
    if (slot === 'user.name') value = user.name;
    else if (slot === 'user.org') value = user.org;
    // Sorted: group order means nothing to `= ANY(…)`, and users listing the same groups should share a profile.
    else if (slot === 'user.groups') value = [...new Set(user.groups)].sort();
    else if (slot.startsWith('user.attributes.')) {
      const k = slot.slice('user.attributes.'.length);
      if (Object.hasOwn(user.attributes, k)) value = user.attributes[k];
      else if (orgAttributes && Object.hasOwn(orgAttributes, k)) value = orgAttributes[k];
    }
    if (value === undefined || value === null) return undefined;
    try {
      return `(${sqlLiteral(value)})`;
    } catch {
      return undefined;
    }
  };
}

/** Access layer: outside an `allow` list or inside a `deny` list (minus their `except`) = no access. */
export function mayAccess(rules: CompiledTable['access'], user: User): boolean {
  if (!rules) return true;
  const allowed = !rules.allow || (isSubject(rules.allow, user) && !isExempt(rules.allow.except, user));
  const denied = rules.deny !== undefined && isSubject(rules.deny, user) && !isExempt(rules.deny.except, user);
  return allowed && !denied;
}

function isSubject(s: { orgs: string[]; groups: string[]; users: string[] }, user: User): boolean {
  return s.users.includes(user.name)
    || (user.org !== undefined && s.orgs.includes(user.org))
    || user.groups.some((g) => s.groups.includes(g));
}

export function isExempt(e: Except | undefined, user: User): boolean {
  return e !== undefined && isSubject(e, user);
}
