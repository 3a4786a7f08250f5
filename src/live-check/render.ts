// How findings are shown. Text, for a DBA and for grep: one block per
// finding, the first line `FIX <check>: <what>`, then indented `why:`,
// `sql:` (one statement per line) and `fix:` lines; a summary line last.
// JSON (`--format json`), for CI: the same content as one document.
import { exitCodeOf, type LiveReport } from './finding.js';

export function renderText(report: LiveReport): string {
  const lines: string[] = [];
  for (const f of report.findings) {
    lines.push(`FIX ${f.check}: ${f.subject}`);
    lines.push(`  why: ${f.why}`);
    for (const statement of f.sql) lines.push(`  sql: ${statement}`);
    if (f.fix) lines.push(`  fix: ${f.fix}`);
    lines.push('');
  }
  lines.push(summary(report));
  return lines.join('\n');
}

export function summary(report: LiveReport): string {
  const { upstream, findings } = report;
  const against = `PostgreSQL ${upstream.version}, database ${upstream.database}, service role ${upstream.role}, ${report.governed} protected relation${report.governed === 1 ? '' : 's'}`;
  if (!findings.length) return `live check: clean (${against})`;
  const policy = findings.filter((f) => f.kind === 'policy').length;
  const upstreamCount = findings.length - policy;
  const parts = [];
  if (upstreamCount) parts.push(`${upstreamCount} to fix upstream`);
  if (policy) parts.push(`${policy} in the policy file (serve refuses it)`);
  return `live check: ${parts.join(', ')} (${against})`;
}

export function renderJson(report: LiveReport): string {
  return JSON.stringify({ ...report, exitCode: exitCodeOf(report.findings) }, null, 2);
}
