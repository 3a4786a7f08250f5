// The effective-access matrix as one self-contained HTML page a person opens
// in a browser: inline CSS, no scripts, no external resources, every text
// escaped. Same layout as the Markdown report (a table per relation). Rows and
// cells carry data-subject / data-column attributes so a tool can read them.
import { cellOf, visible, type AccessMatrix } from '../policy/effective-access.js';
import { accessText, filterText, legend, maskText, policyWideFacts, subjectNote } from './cell-text.js';
import { columnsOf } from './markdown.js';
import type { ReportSources } from './sources.js';

const style = `
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; margin: 2rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
dl.sources { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.sources dt { font-weight: 600; } dl.sources dd { margin: 0; font-family: ui-monospace, monospace; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #c7ccd1; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td code, th code { font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; }
tr.group th { font-style: italic; }
td.denied { background: #fbe3e4; color: #8a1f26; font-weight: 600; }
td.masked { background: #fff6dd; }
td.stored { color: #57606a; }
td.filtered { background: #e7f1fb; }
.note { color: #57606a; font-weight: normal; font-size: 12px; display: block; }
`;

export function htmlReport(matrix: AccessMatrix, sources: ReportSources): string {
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    // No script, no fetch: the page is read as it is, even from an archive.
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
    '<title>pgveil effective-access report</title>',
    `<style>${style}</style></head><body>`,
    '<h1>pgveil effective-access report</h1>',
    '<dl class="sources">',
    `<dt>Policy</dt><dd>${esc(sources.policy.file)} (sha256 <span data-hash="policy">${esc(sources.policy.sha256)}</span>)</dd>`,
    `<dt>Users</dt><dd>${esc(sources.users.file)} (sha256 <span data-hash="users">${esc(sources.users.sha256)}</span>)</dd>`,
    `<dt>Generated</dt><dd><time>${esc(sources.generatedAt)}</time></dd>`,
    '</dl>',
    `<ul class="facts">${policyWideFacts(matrix).map((f) => `<li>${esc(f)}</li>`).join('')}</ul>`,
    '<h2>Legend</h2>',
    `<ul class="legend">${legend.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`,
  ];
  if (!matrix.relations.length) out.push('<p>The policy lists no relations.</p>');
  for (const relation of matrix.relations) out.push(relationTable(matrix, relation));
  out.push('</body></html>', '');
  return out.join('\n');
}

function relationTable(matrix: AccessMatrix, relation: string): string {
  const columns = columnsOf(matrix, relation);
  const out = [
    `<section><h2>${esc(relation)}</h2>`,
    `<table data-relation="${esc(relation)}"><thead><tr><th>Subject</th><th>Access</th><th>Rows</th>${columns.map((c) => `<th><code>${esc(c)}</code></th>`).join('')}</tr></thead><tbody>`,
  ];
  for (const subject of matrix.rows) {
    const cell = cellOf(matrix, subject, relation);
    const who = `<th scope="row">${esc(subject.kind)} <code>${esc(subject.name)}</code><span class="note">${esc(subjectNote(subject))}</span></th>`;
    const cells: string[] = [];
    if (!visible(cell)) {
      cells.push(`<td class="denied" data-column="access">${esc(accessText(cell))}</td>`, '<td class="denied" data-column="rows">—</td>');
      for (const c of columns) cells.push(`<td class="denied" data-column="${esc(c)}">—</td>`);
    } else {
      cells.push(`<td class="${cell.access ? 'allowed' : 'denied'}" data-column="access">${esc(accessText(cell))}</td>`);
      cells.push(`<td class="${cell.filters.length ? 'filtered' : 'stored'}" data-column="rows"><code>${esc(filterText(cell.filters))}</code></td>`);
      for (const c of columns) {
        const spec = cell.columns.get(c);
        cells.push(`<td class="${spec ? 'masked' : 'stored'}" data-column="${esc(c)}"><code>${esc(maskText(spec))}</code></td>`);
      }
    }
    out.push(`<tr class="${subject.kind}" data-subject="${esc(`${subject.kind}:${subject.name}`)}">${who}${cells.join('')}</tr>`);
  }
  out.push('</tbody></table></section>');
  return out.join('\n');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
