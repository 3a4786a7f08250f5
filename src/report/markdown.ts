// The effective-access matrix as Markdown: one section per listed relation,
// one table row per user and per group, one table column per column the
// policy names. A table per relation answers the auditor's usual question
// ("who sees what of employees?") in one place.
import { cellOf, visible, type AccessMatrix } from '../policy/effective-access.js';
import { accessText, filterText, legend, maskText, policyWideFacts, subjectNote } from './cell-text.js';
import type { ReportSources } from './sources.js';

export function markdownReport(matrix: AccessMatrix, sources: ReportSources): string {
  const out: string[] = ['# pgveil effective-access report', ''];
  out.push(`- Policy: ${text(sources.policy.file)} (sha256 ${sources.policy.sha256})`);
  out.push(`- Users: ${text(sources.users.file)} (sha256 ${sources.users.sha256})`);
  out.push(`- Generated: ${sources.generatedAt}`);
  out.push('', ...policyWideFacts(matrix).map((f) => `- ${text(f)}`), '');
  out.push('## Legend', '', ...legend.map((l) => `- ${text(l)}`), '');
  if (!matrix.relations.length) out.push('The policy lists no relations.', '');
  for (const relation of matrix.relations) {
    out.push(`## ${text(relation)}`, '');
    const columns = columnsOf(matrix, relation);
    out.push(row(['Subject', 'Access', 'Rows', ...columns.map(code)]));
    out.push(row(['---', '---', '---', ...columns.map(() => '---')]));
    for (const subject of matrix.rows) {
      const cell = cellOf(matrix, subject, relation);
      const who = `${subject.kind} ${code(subject.name)} (${text(subjectNote(subject))})`;
      if (!visible(cell)) {
        out.push(row([who, `**${accessText(cell)}**`, '—', ...columns.map(() => '—')]));
        continue;
      }
      out.push(row([who, text(accessText(cell)), code(filterText(cell.filters)), ...columns.map((c) => code(maskText(cell.columns.get(c))))]));
    }
    out.push('');
  }
  return out.join('\n');
}

/** The columns the policy names for `relation`, in policy order (the same in every allowed cell). */
export function columnsOf(matrix: AccessMatrix, relation: string): string[] {
  const names = new Set<string>();
  for (const r of matrix.rows) for (const c of r.cells.get(relation)?.columns.keys() ?? []) names.add(c);
  return [...names];
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Plain text: every Markdown punctuation character escaped, line breaks flattened. */
function text(s: string): string {
  return flat(s).replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`);
}

/**
 * A code span that holds any text: a backtick fence longer than any run
 * inside, and `|` escaped, since a table splits its cells before code spans
 * are read.
 */
function code(s: string): string {
  const t = flat(s).replace(/\|/g, '\\|');
  const longest = Math.max(0, ...(t.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(longest + 1);
  const pad = t.startsWith('`') || t.endsWith('`') || t.startsWith(' ') ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}

function flat(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ');
}
