// The effective-access matrix: for every user and every group, and every
// relation the policy lists, whether they may use it, the row filter that
// applies and how each column the policy names is presented. `pgveil report`
// prints it and `pgveil policy diff` compares two of them.
//
// User rows come from profileFor, the very profile serve binds at login: the
// filters are the text serve ANDs into the rewrite, attributes bound as quoted
// literals. Group rows show what membership alone decides: the rules for a
// member whom no rule names by organization or user name (and who is in no
// other group), with placeholders left unbound (`org_id = ${user.org}`), since
// members differ in their attributes. A member's own user row is authoritative.
import type { UsersFile, User } from '../config/types.js';
import { isExempt, mayAccess, profileFor, type CompiledPolicy, type CompiledTable } from './compile.js';
import { mostRestrictive } from './precedence.js';
import type { MaskSpec, TableProfile } from './types.js';

export interface AccessCell {
  access: boolean;
  /**
   * Group rows only: the access rules also name organizations or users, so
   * for some members the answer may differ from `access`. Filters and columns
   * are then shown even when `access` is false.
   */
  conditional?: true;
  /** AND-combined row filters; empty = every row. Empty when the cell is not visible. */
  filters: string[];
  /** Every column the policy names for the relation → its mask; undefined = shown as stored. Empty when the cell is not visible. */
  columns: Map<string, MaskSpec | undefined>;
}

/** Whether filters and columns apply to (some of) the subject: allowed, or allowed for some members. */
export function visible(cell: AccessCell): boolean {
  return cell.access || cell.conditional === true;
}

export interface SubjectRow {
  kind: 'user' | 'group';
  name: string;
  /** Users: their organization, groups and whether they are disabled (they cannot log in). */
  org?: string;
  groups?: string[];
  disabled?: boolean;
  /** One cell per listed relation. */
  cells: Map<string, AccessCell>;
}

export interface AccessMatrix {
  layers: CompiledPolicy['layers'];
  defaults: CompiledPolicy['defaults'];
  /** The relations the policy lists, sorted. */
  relations: string[];
  /** Users by name, then groups by name. */
  rows: SubjectRow[];
}

/**
 * The matrix of `compiled` for everyone in `users` and every group either file
 * names, plus `extraGroups` (a diff passes the groups the other policy names,
 * so both matrices have the same rows).
 */
export function effectiveAccess(compiled: CompiledPolicy, users: UsersFile, extraGroups: Iterable<string> = []): AccessMatrix {
  const relations = [...compiled.tables.keys()].sort();
  const rows: SubjectRow[] = [];
  for (const user of [...users.users.values()].sort((a, b) => compare(a.name, b.name))) {
    const profile = profileFor(compiled, user);
    const cells = new Map<string, AccessCell>();
    for (const relation of relations) cells.set(relation, userCell(compiled.tables.get(relation)!, profile.tables.get(relation)!));
    rows.push({ kind: 'user', name: user.name, ...(user.org !== undefined ? { org: user.org } : {}), groups: [...user.groups], disabled: user.disabled, cells });
  }
  for (const group of [...new Set([...groupNames(compiled, users), ...extraGroups])].sort(compare)) {
    const member = groupMember(group);
    const cells = new Map<string, AccessCell>();
    for (const relation of relations) cells.set(relation, groupCell(compiled, compiled.tables.get(relation)!, member));
    rows.push({ kind: 'group', name: group, cells });
  }
  return { layers: compiled.layers, defaults: compiled.defaults, relations, rows };
}

/** What a relation the policy does not list gives everyone: the default, no filter, every column as stored. */
export function unlistedCell(defaults: CompiledPolicy['defaults']): AccessCell {
  return { access: defaults.unlistedRelations === 'allow', filters: [], columns: new Map() };
}

/** The cell of `relation` in `row`, or the unlisted default when the policy does not list it. */
export function cellOf(matrix: AccessMatrix, row: SubjectRow, relation: string): AccessCell {
  return row.cells.get(relation) ?? unlistedCell(matrix.defaults);
}

function userCell(table: CompiledTable, profile: TableProfile): AccessCell {
  if (!profile.access) return { access: false, filters: [], columns: new Map() };
  const columns = new Map<string, MaskSpec | undefined>();
  for (const column of table.masks.keys()) columns.set(column, profile.masks.get(column));
  return { access: true, filters: [...profile.filters], columns };
}

/** The rules of profileFor for a stand-in member, templates shown as written instead of bound. */
function groupCell(compiled: CompiledPolicy, table: CompiledTable, member: User): AccessCell {
  const access = !compiled.layers.access || mayAccess(table.access, member);
  const conditional = compiled.layers.access && namesOrgsOrUsers(table.access);
  if (!access && !conditional) return { access: false, filters: [], columns: new Map() };
  const filters = compiled.layers.ownership
    ? table.filters.filter((f) => !isExempt(f.except, member)).map((f) => `(${f.source})`)
    : [];
  const columns = new Map<string, MaskSpec | undefined>();
  for (const [column, rules] of table.masks) {
    const specs = compiled.layers.redaction
      ? rules.filter((r) => !isExempt(r.except, member)).map((r) => ({ kind: r.kind, options: { ...r.options } }))
      : [];
    columns.set(column, mostRestrictive(specs));
  }
  return { access, ...(conditional ? { conditional: true as const } : {}), filters, columns };
}

function namesOrgsOrUsers(rules: CompiledTable['access']): boolean {
  const named = (s: { orgs: string[]; users: string[] } | undefined) => Boolean(s && (s.orgs.length || s.users.length));
  return [rules?.allow, rules?.allow?.except, rules?.deny, rules?.deny?.except].some(named);
}

/** A member of `group` only: no organization, and a name no rule can list (user names are never empty). */
function groupMember(group: string): User {
  return { name: '', groups: [group], passwordHistory: [], attributes: {}, clientCert: 'none', disabled: false };
}

/** Every group a user belongs to or a rule names, sorted. */
export function groupNames(compiled: CompiledPolicy, users: UsersFile): string[] {
  const names = new Set<string>();
  for (const user of users.users.values()) for (const g of user.groups) names.add(g);
  const add = (s: { groups: string[] } | undefined) => { for (const g of s?.groups ?? []) names.add(g); };
  for (const t of compiled.tables.values()) {
    for (const side of [t.access?.allow, t.access?.deny]) { add(side); add(side?.except); }
    for (const f of t.filters) add(f.except);
    for (const rules of t.masks.values()) for (const r of rules) add(r.except);
  }
  return [...names].sort(compare);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
