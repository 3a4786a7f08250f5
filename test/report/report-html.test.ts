// `pgveil report --format html` opened in a real browser: Debian's headless
// Chromium renders the page, and the test reads the table cells back from the
// DOM Chromium built, and checks that a screenshot of it is a painted PNG.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { configDir, pgveil, users } from './fixtures.js';
import { run } from '../helpers/run.js';

// A user name that is markup: it must come out as text, never as an element.
const hostile = '<img src=x onerror=alert(1)>@evil.example';
const dir = configDir({ users: `${users}  "${hostile}": { org: globex, attributes: { regions: [US] } }\n` });
const page = join(dir, 'report.html');

/** Chromium headless with a throwaway profile (root needs --no-sandbox). */
function chromium(...args: string[]) {
  const profile = mkdtempSync(join(tmpdir(), 'pgveil-chromium-'));
  return run('chromium', ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, ...args, `file://${page}`], { timeoutMs: 120_000 });
}

function decode(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&(lt|gt|quot|#39|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", amp: '&' })[e]!);
}

/** Rendered table of `relation`: subject → (data-column → text). */
function tableOf(dom: string, relation: string): Map<string, Record<string, string>> {
  const attr = relation.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  const start = dom.indexOf(`<table data-relation="${attr}">`);
  assert.ok(start >= 0, `no table for ${relation}`);
  const table = dom.slice(start, dom.indexOf('</table>', start));
  const rows = new Map<string, Record<string, string>>();
  for (const tr of table.matchAll(/<tr class="[^"]*" data-subject="([^"]*)">([\s\S]*?)<\/tr>/g)) {
    const cells: Record<string, string> = {};
    for (const td of tr[2].matchAll(/<td[^>]* data-column="([^"]*)"[^>]*>([\s\S]*?)<\/td>/g)) cells[decode(td[1])] = decode(td[2]);
    const th = /<th scope="row">([\s\S]*?)<\/th>/.exec(tr[2]);
    cells.subject = th ? decode(th[1]) : '';
    rows.set(decode(tr[1]), cells);
  }
  return rows;
}

test('report --format html --output: a page Chromium renders with the expected cells', async () => {
  const r = pgveil(dir, 'report', '--config', 'pgveil.yaml', '--format', 'html', '--output', page);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, '');
  const dumped = await chromium('--dump-dom');
  assert.is(dumped.status, 0, dumped.stderr);
  const dom = dumped.stdout;

  const employees = tableOf(dom, 'public.employees');
  const alice = employees.get('user:alice@acme.com')!;
  assert.is(alice.access, 'allowed');
  assert.is(alice.rows, '(org_id = ($pgv$acme$pgv$::pg_catalog.text)) AND (region = ANY((ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$UK$pgv$::pg_catalog.text]::pg_catalog.text[])))');
  assert.is(alice.ssn, 'partial (keepFirst=0, keepLast=4, fill="*")');
  assert.is(alice.salary, 'null');
  assert.is(employees.get('user:hana@acme.com')!.ssn, 'as stored');
  assert.is(employees.get('group:auditors')!.rows, '(region = ANY(${user.attributes.regions}))');

  const projects = tableOf(dom, 'public.projects');
  assert.equal(projects.get('user:hana@acme.com'), { access: 'denied', rows: '—', budget: '—', subject: 'user hana@acme.comorg acme; groups hr, auditors' });
  assert.is(projects.get('user:bob@globex.com')!.budget, 'round (step=1000)');
});

test('report html: self-contained (no script, no external resource) and markup in names stays text', async () => {
  const html = readFileSync(page, 'utf8');
  assert.not.match(html, /<script/i);
  // Only these elements and attributes: nothing that loads or runs anything.
  const tags = new Set<string>();
  const attributes = new Set<string>();
  for (const m of html.matchAll(/<([a-z0-9]+)((?:\s+[a-z-]+(?:="[^"]*")?)*)\s*>/gi)) {
    tags.add(m[1].toLowerCase());
    for (const a of m[2].matchAll(/([a-z-]+)(?:="[^"]*")?/gi)) attributes.add(a[1].toLowerCase());
  }
  assert.ok(tags.has('table') && tags.has('td') && attributes.has('data-column'), 'the scan read the tags');
  const allowedTags = ['html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'h2', 'dl', 'dt', 'dd', 'span', 'time', 'ul', 'li', 'p', 'section', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'code'];
  assert.equal([...tags].filter((t) => !allowedTags.includes(t)), []);
  assert.equal([...attributes].filter((a) => !['lang', 'charset', 'http-equiv', 'content', 'class', 'scope', 'data-hash', 'data-relation', 'data-subject', 'data-column'].includes(a)), []);
  assert.not.match(html, /url\(/i);
  assert.match(html, /<style>/);
  const dumped = await chromium('--dump-dom');
  assert.not.match(dumped.stdout, /<img/i, 'the hostile name did not become an element');
  const row = tableOf(dumped.stdout, 'public.employees').get(`user:${hostile}`);
  assert.ok(row, 'the hostile user has a row');
  assert.ok(row.subject.startsWith(`user ${hostile}`), row.subject);
  assert.match(dumped.stdout, /Relations the policy does not list: allowed for every user/);
  assert.match(dumped.stdout, /<h2>Legend<\/h2>/);
});

test('report html: a screenshot is a painted PNG of the requested size', async () => {
  const profile = mkdtempSync(join(tmpdir(), 'pgveil-shot-'));
  const shot = join(profile, 'report.png');
  const r = await chromium(`--screenshot=${shot}`, '--window-size=1200,900', '--hide-scrollbars');
  assert.is(r.status, 0, r.stderr);
  const png = readFileSync(shot);
  assert.equal([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.is(png.readUInt32BE(16), 1200, 'width');
  assert.is(png.readUInt32BE(20), 900, 'height');
  // Painted, not blank: the pixels hold many different values (a blank page has one or two).
  const chunks: Buffer[] = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') chunks.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const pixels = inflateSync(Buffer.concat(chunks));
  assert.ok(new Set(pixels).size > 32, `only ${new Set(pixels).size} distinct byte values: the page looks blank`);
});

test.run();
