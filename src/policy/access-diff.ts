// What a candidate policy changes, cell by cell of the effective-access
// matrix (effective-access.ts), each change marked:
//  - `tightens`: provably shows no one more (access removed, a filter added
//    to the AND, a stricter mask by the precedence of precedence.ts);
//  - `loosens`: shows someone more (the reverse);
//  - `changes`: neither can be proven (a filter rewritten, two masks that
//    cannot be ordered). A gate must treat it as loosening: fail closed.
// A relation one policy lists and the other does not is compared with what
// the unlisted default gives (so removing a table under `allow` loosens).
// The settings that act outside the cells (layers, defaults, functions.allow,
// channels.listen) are compared on their own, in the spirit of loosening.ts.
import { stableStringify } from './canonical.js';
import { cellOf, visible, type AccessCell, type AccessMatrix, type SubjectRow } from './effective-access.js';
import type { RuleSets } from './loosening.js';
import { meet } from './precedence.js';
import type { MaskSpec } from './types.js';

export type Verdict = 'loosens' | 'tightens' | 'changes';

export interface Subject { kind: SubjectRow['kind']; name: string }

export type CellChange = { subject: Subject; relation: string; verdict: Verdict } & (
  | { aspect: 'access'; before: AccessCell; after: AccessCell }
  | { aspect: 'filter'; before: string[]; after: string[] }
  | { aspect: 'column'; column: string; before?: MaskSpec; after?: MaskSpec }
);

export interface SettingChange { setting: string; before: string; after: string; verdict: Verdict }

export interface PolicyDiff {
  settings: SettingChange[];
  cells: CellChange[];
  /** True when any change loosens or cannot be proven not to (`changes`). */
  loosens: boolean;
}

export interface PolicySide { matrix: AccessMatrix; rules: RuleSets }

/** Every change from `before` to `after`; both matrices must be of the same users (and groups). */
export function diffPolicies(before: PolicySide, after: PolicySide): PolicyDiff {
  const settings = settingChanges(before, after);
  const cells: CellChange[] = [];
  const relations = [...new Set([...before.matrix.relations, ...after.matrix.relations])].sort();
  const afterRows = new Map(after.matrix.rows.map((r) => [`${r.kind}:${r.name}`, r]));
  for (const row of before.matrix.rows) {
    const next = afterRows.get(`${row.kind}:${row.name}`);
    if (!next) throw new Error(`internal: ${row.kind} ${row.name} is missing from the candidate's matrix`);
    const subject = { kind: row.kind, name: row.name };
    for (const relation of relations) {
      cells.push(...cellChanges(subject, relation, cellOf(before.matrix, row, relation), cellOf(after.matrix, next, relation)));
    }
  }
  const loosens = [...settings, ...cells].some((c) => c.verdict !== 'tightens');
  return { settings, cells, loosens };
}

function cellChanges(subject: Subject, relation: string, was: AccessCell, now: AccessCell): CellChange[] {
  const at = { subject, relation };
  const from = accessLevel(was);
  const to = accessLevel(now);
  if (from !== to) {
    // Once denied, filters and columns no longer matter; once allowed, the renderer shows what is visible with the change.
    return [{ ...at, aspect: 'access', before: was, after: now, verdict: to > from ? 'loosens' : 'tightens' }];
  }
  if (!visible(now)) return [];
  const out: CellChange[] = [];
  const filter = filterVerdict(was.filters, now.filters);
  if (filter) out.push({ ...at, aspect: 'filter', before: was.filters, after: now.filters, verdict: filter });
  const columns = [...new Set([...was.columns.keys(), ...now.columns.keys()])];
  for (const column of columns) {
    const before = was.columns.get(column);
    const after = now.columns.get(column);
    const verdict = maskVerdict(before, after);
    if (verdict) out.push({ ...at, aspect: 'column', column, ...(before ? { before } : {}), ...(after ? { after } : {}), verdict });
  }
  return out;
}

/**
 * Denied < denied unless the member's organization or name is allowed <
 * allowed unless it is denied < allowed (the middle two only in group rows).
 */
function accessLevel(cell: AccessCell): number {
  if (cell.access) return cell.conditional ? 2 : 3;
  return cell.conditional ? 1 : 0;
}

/** Filters are AND-combined: only added ones tighten, only removed ones loosen, both: unprovable. */
export function filterVerdict(before: readonly string[], after: readonly string[]): Verdict | undefined {
  const added = after.some((f) => !before.includes(f));
  const removed = before.some((f) => !after.includes(f));
  if (added && removed) return 'changes';
  return added ? 'tightens' : removed ? 'loosens' : undefined;
}

/** undefined = shown as stored. The stricter side by precedence; neither when they cannot be ordered. */
export function maskVerdict(before: MaskSpec | undefined, after: MaskSpec | undefined): Verdict | undefined {
  if (stableStringify(before) === stableStringify(after)) return undefined;
  if (!after) return 'loosens';
  if (!before) return 'tightens';
  const stricter = stableStringify(meet(before, after));
  if (stricter === stableStringify(after)) return 'tightens';
  if (stricter === stableStringify(before)) return 'loosens';
  return 'changes';
}

function settingChanges(before: PolicySide, after: PolicySide): SettingChange[] {
  const out: SettingChange[] = [];
  const b = before.matrix;
  const a = after.matrix;
  for (const layer of ['access', 'ownership', 'redaction'] as const) {
    if (b.layers[layer] !== a.layers[layer]) {
      out.push({ setting: `layers.${layer}`, before: onOff(b.layers[layer]), after: onOff(a.layers[layer]), verdict: a.layers[layer] ? 'tightens' : 'loosens' });
    }
  }
  for (const key of ['unlistedRelations', 'writes'] as const) {
    if (b.defaults[key] !== a.defaults[key]) {
      out.push({ setting: `defaults.${key}`, before: b.defaults[key], after: a.defaults[key], verdict: a.defaults[key] === 'allow' ? 'loosens' : 'tightens' });
    }
  }
  out.push(...setChanges('functions.allow', before.rules.allowedFunctions, after.rules.allowedFunctions));
  out.push(...setChanges('channels.listen', before.rules.listenChannels, after.rules.listenChannels));
  return out;
}

/** An entry added to an allow list loosens; one removed tightens. */
function setChanges(setting: string, before: ReadonlySet<string>, after: ReadonlySet<string>): SettingChange[] {
  const out: SettingChange[] = [];
  for (const entry of [...after].sort()) if (!before.has(entry)) out.push({ setting, before: '', after: entry, verdict: 'loosens' });
  for (const entry of [...before].sort()) if (!after.has(entry)) out.push({ setting, before: entry, after: '', verdict: 'tightens' });
  return out;
}

function onOff(on: boolean): string {
  return on ? 'on' : 'off';
}
