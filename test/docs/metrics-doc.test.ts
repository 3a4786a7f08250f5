// docs/operations/metrics.md is the operator's list of what /metrics exports.
// This test scrapes a real pgveil (real PostgreSQL, real clients) and fails
// when the two disagree: a pgveil_* family exported but not documented, a
// documented one not exported, a type that differs, or a label (or a label
// value, where the doc lists the values) the doc does not name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const docFile = 'docs/operations/metrics.md';

/** One documented row: an exact family name, or a prefix group (`pgveil_process_*`). */
interface DocRow { name: string; prefix: boolean; types: string[]; labels: Map<string, string[] | undefined>; line: number }

/** One exported family: its type and the label values seen on its samples. */
interface Family { type: string; labels: Map<string, Set<string>> }

/** Labels that belong to the exposition format, not to pgveil: histogram buckets and summary quantiles. */
const formatLabels = new Set(['le', 'quantile']);

/**
 * The metric rows of the doc's tables: `| \`name\` | type | labels | meaning |`.
 * The labels cell is `—` or `;`-separated entries, each `\`label\`` optionally
 * followed by its values in backticks (`\`outcome\`: \`success\`, \`failure\``).
 */
export function documentedMetrics(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  markdown.split('\n').forEach((text, i) => {
    const row = /^\|\s*`(pgveil_[a-z0-9_]*\*?)`\s*\|([^|]*)\|((?:[^|\\]|\\.)*)\|/.exec(text);
    if (!row) return;
    const [, name, typeCell, labelCell] = row;
    const labels = new Map<string, string[] | undefined>();
    for (const entry of labelCell.split(';')) {
      const ticks = [...entry.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      if (ticks.length === 0) continue;
      labels.set(ticks[0], ticks.length > 1 ? ticks.slice(1) : undefined);
    }
    rows.push({
      name: name.replace(/\*$/, ''), prefix: name.endsWith('*'),
      types: typeCell.split(',').map((t) => t.trim()).filter(Boolean), labels, line: i + 1,
    });
  });
  return rows;
}

/** The families of a Prometheus text exposition with their types and observed label values. */
export function exportedFamilies(exposition: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(name, { type, labels: new Map() });
  for (const line of exposition.split('\n')) {
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!sample) continue;
    const [, sampleName, labelText] = sample;
    const family = families.get(sampleName) ?? families.get(sampleName.replace(/_(?:bucket|sum|count)$/, ''));
    if (!family || !labelText) continue;
    for (const [, label, value] of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (formatLabels.has(label)) continue;
      const values = family.labels.get(label) ?? new Set<string>();
      values.add(value);
      family.labels.set(label, values);
    }
  }
  return families;
}

/** Every disagreement between the doc's rows and the exported pgveil_* families, one line each. */
export function disagreements(rows: DocRow[], families: Map<string, Family>): string[] {
  const problems: string[] = [];
  const exact = new Map(rows.filter((r) => !r.prefix).map((r) => [r.name, r]));
  const groups = rows.filter((r) => r.prefix);
  for (const [name, family] of families) {
    if (!name.startsWith('pgveil_')) continue;
    const row = exact.get(name);
    if (row) {
      if (!row.types.includes(family.type)) problems.push(`${name}: exported as ${family.type}, documented (line ${row.line}) as ${row.types.join(', ') || 'nothing'}`);
      for (const [label, values] of family.labels) {
        if (!row.labels.has(label)) { problems.push(`${name}: label ${label} is exported but not documented (line ${row.line})`); continue; }
        const allowed = row.labels.get(label);
        for (const value of values) {
          if (allowed && !allowed.includes(value)) problems.push(`${name}: ${label}="${value}" is exported but not among the documented values (line ${row.line})`);
        }
      }
      continue;
    }
    const group = groups.find((g) => name.startsWith(g.name));
    if (!group) problems.push(`${name}: exported (${family.type}) but not documented in ${docFile}`);
    else if (!group.types.includes(family.type)) problems.push(`${name}: exported as ${family.type}, group ${group.name}* (line ${group.line}) lists ${group.types.join(', ')}`);
  }
  for (const row of rows) {
    const shown = row.prefix ? `${row.name}*` : row.name;
    const found = row.prefix ? [...families.keys()].some((n) => n.startsWith(row.name)) : families.has(row.name);
    if (!found) problems.push(`${shown}: documented (line ${row.line}) but not exported`);
  }
  return problems;
}

let h: Harness;
test.before(async () => { h = await startHarness({ admin: true }); });
test.after(async () => { await h?.close(); });

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${h.proxy.adminPort}/metrics`);
  assert.is(res.status, 200);
  return res.text();
}

test('every pgveil_* metric family /metrics exports is documented with its type, labels and label values, and every documented one is exported', async () => {
  // Some traffic first, so labelled families carry samples whose labels can be compared.
  const alice = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await alice.connect();
  await alice.query('select name from crm.employees');
  await alice.query('select 1');
  await alice.query('select * from pg_catalog.pg_authid').catch(() => {});
  await alice.query('selec 1').catch(() => {});
  await alice.end();
  const wrong = new pg.Client(clientConfig(h, 'bob@globex.com', { password: 'not-the-password-1' }));
  await wrong.connect().catch(() => {});

  const rows = documentedMetrics(readFileSync(join(repo, docFile), 'utf8'));
  const families = exportedFamilies(await scrape());
  assert.ok(rows.length >= 20, `${docFile} documents ${rows.length} metric rows`);
  assert.ok([...families.keys()].filter((n) => n.startsWith('pgveil_')).length >= 20, 'the scrape holds pgveil_* families');
  const problems = disagreements(rows, families);
  assert.equal(problems, [], problems.join('\n'));
});

test('the comparison catches an undocumented family, a missing one, a wrong type and an undocumented label or value', () => {
  const doc = [
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
    '| `pgveil_a_total` | counter | `outcome`: `ok`, `bad` | a |',
    '| `pgveil_b_seconds` | histogram | — | b |',
    '| `pgveil_gone_total` | counter | — | documented, not exported |',
    '| `pgveil_process_*` | counter, gauge | various | process |',
  ].join('\n');
  const exposition = [
    '# TYPE pgveil_a_total counter', 'pgveil_a_total{outcome="ok"} 1', 'pgveil_a_total{outcome="odd"} 1',
    '# TYPE pgveil_b_seconds gauge', 'pgveil_b_seconds 1',
    '# TYPE pgveil_c_total counter', 'pgveil_c_total{reason="x"} 1',
    '# TYPE pgveil_process_open_fds gauge', 'pgveil_process_open_fds 9',
    '# TYPE pgveil_process_weird summary',
    '# TYPE pgveil_h_seconds histogram', 'pgveil_h_seconds_bucket{le="1",kind="k"} 1',
  ].join('\n');
  const problems = disagreements(documentedMetrics(doc), exportedFamilies(exposition));
  assert.equal(problems.sort(), [
    'pgveil_a_total: outcome="odd" is exported but not among the documented values (line 3)',
    'pgveil_b_seconds: exported as gauge, documented (line 4) as histogram',
    'pgveil_c_total: exported (counter) but not documented in docs/operations/metrics.md',
    'pgveil_gone_total: documented (line 5) but not exported',
    'pgveil_h_seconds: exported (histogram) but not documented in docs/operations/metrics.md',
    'pgveil_process_weird: exported as summary, group pgveil_process_* (line 6) lists counter, gauge',
  ].sort());
  const labelled = disagreements(documentedMetrics('| `pgveil_h_seconds` | histogram | — | h |'), exportedFamilies('# TYPE pgveil_h_seconds histogram\npgveil_h_seconds_bucket{le="1",kind="k"} 1'));
  assert.equal(labelled, ['pgveil_h_seconds: label kind is exported but not documented (line 1)']);
});

test.run();
