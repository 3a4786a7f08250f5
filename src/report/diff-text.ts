// `pgveil policy diff` output: a text listing for people (grouped by subject
// and relation, every change marked loosens / tightens / changes) and JSON
// for CI jobs.
import type { CellChange, PolicyDiff, SettingChange, Verdict } from '../policy/access-diff.js';
import { visible, type AccessCell } from '../policy/effective-access.js';
import type { MaskSpec } from '../policy/types.js';
import { accessText, filterText, maskText, subjectText } from './cell-text.js';
import type { SourceFile } from './sources.js';

export interface DiffSources { active: SourceFile; candidate: SourceFile }

export function diffText(diff: PolicyDiff, sources: DiffSources): string {
  const out = [`active:    ${sources.active.file} (sha256 ${sources.active.sha256})`, `candidate: ${sources.candidate.file} (sha256 ${sources.candidate.sha256})`, ''];
  if (diff.settings.length) {
    out.push('policy-wide:');
    for (const s of diff.settings) out.push(`  ${settingLine(s)}  [${s.verdict}]`);
    out.push('');
  }
  let heading = '';
  for (const c of diff.cells) {
    const h = `${subjectText(c.subject)} × ${c.relation}:`;
    if (h !== heading) { out.push(h); heading = h; }
    out.push(`  ${cellLine(c)}  [${c.verdict}]`);
  }
  if (diff.cells.length) out.push('');
  out.push(summary(diff));
  return `${out.join('\n')}\n`;
}

export function diffJson(diff: PolicyDiff, sources: DiffSources): string {
  return `${JSON.stringify({
    active: sources.active,
    candidate: sources.candidate,
    loosens: diff.loosens,
    counts: counts(diff),
    settings: diff.settings,
    changes: diff.cells.map(cellJson),
  }, null, 2)}\n`;
}

function settingLine(s: SettingChange): string {
  if (!s.before) return `${s.setting}: ${s.after} added`;
  if (!s.after) return `${s.setting}: ${s.before} removed`;
  return `${s.setting}: ${s.before} → ${s.after}`;
}

function cellLine(c: CellChange): string {
  switch (c.aspect) {
    case 'access': {
      const line = `access: ${accessText(c.before)} → ${accessText(c.after)}`;
      return visible(c.after) ? `${line} (now: rows ${filterText(c.after.filters)}; ${columnsSummary(c.after)})` : line;
    }
    case 'filter':
      return `rows: ${filterText(c.before)} → ${filterText(c.after)}`;
    case 'column':
      return `column ${c.column}: ${maskText(c.before)} → ${maskText(c.after)}`;
  }
}

function columnsSummary(cell: AccessCell): string {
  const masked = [...cell.columns].filter(([, spec]) => spec).map(([column, spec]) => `${column} ${maskText(spec)}`);
  return masked.length ? `columns ${masked.join(', ')}` : 'every column as stored';
}

function counts(diff: PolicyDiff): Record<Verdict, number> {
  const n: Record<Verdict, number> = { loosens: 0, tightens: 0, changes: 0 };
  for (const c of [...diff.settings, ...diff.cells]) n[c.verdict]++;
  return n;
}

function summary(diff: PolicyDiff): string {
  const n = counts(diff);
  if (!n.loosens && !n.tightens && !n.changes) return 'no changes to effective access';
  const parts = [`${n.loosens} loosen`, `${n.tightens} tighten`, `${n.changes} cannot be proven tighter`];
  return `${parts.join(', ')}: ${diff.loosens ? 'the candidate loosens the policy (exit 1)' : 'nothing loosens'}`;
}

function cellJson(c: CellChange): Record<string, unknown> {
  const base = { subject: c.subject, relation: c.relation, aspect: c.aspect, verdict: c.verdict };
  switch (c.aspect) {
    case 'access':
      return { ...base, before: accessText(c.before), after: accessText(c.after), ...(visible(c.after) ? { now: cellJsonOf(c.after) } : {}) };
    case 'filter':
      return { ...base, before: filterText(c.before), after: filterText(c.after) };
    case 'column':
      return { ...base, column: c.column, before: maskJson(c.before), after: maskJson(c.after) };
  }
}

function cellJsonOf(cell: AccessCell): Record<string, unknown> {
  return { rows: filterText(cell.filters), columns: Object.fromEntries([...cell.columns].map(([c, spec]) => [c, maskJson(spec)])) };
}

/** The mask as the text people read, and its kind for a script; null = shown as stored. */
function maskJson(spec: MaskSpec | undefined): { kind: string; text: string } | null {
  return spec ? { kind: spec.kind, text: maskText(spec) } : null;
}
