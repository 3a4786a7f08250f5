// `pgveil report` (Markdown, the default) as an operator runs it: real files,
// the CLI as a child process (the fixture report) or in this process (the
// variants), the table cells read back from the output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configDir, pgveil, pgveilInProcess, policy, users } from './fixtures.js';
import { loadAll } from '../../src/config/load.js';
import { compilePolicy, profileFor } from '../../src/policy/compile.js';

/** The rows of the table under `## <relation>`: header cell → cell text, code spans unwrapped. */
function section(markdown: string, relation: string): Array<Record<string, string>> {
  const lines = markdown.split('\n');
  // Headings escape Markdown punctuation (`public.audit\_log`).
  const start = lines.findIndex((l) => l.replace(/\\(.)/g, '$1') === `## ${relation}`);
  assert.ok(start >= 0, `no section for ${relation}:\n${markdown}`);
  const table: string[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    table.push(line);
  }
  const [header, rule, ...body] = table.map(cells);
  assert.ok(rule.every((c) => c === '---'), 'second line is the header rule');
  return body.map((row) => {
    assert.is(row.length, header.length, `every row has as many cells as the header: ${row.join(' | ')}`);
    // The subject's name is a code span inside the cell: read it as plain text.
    return Object.fromEntries(header.map((h, i) => [h, h === 'Subject' ? row[i].replace(/`/g, '') : row[i]]));
  });
}

/** A GFM table line split at unescaped pipes; `\|` → `|`, code spans and bold unwrapped. */
function cells(line: string): string[] {
  return line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|').replace(/^(`+) ?(.*?) ?\1$/, '$2').replace(/^\*\*(.*)\*\*$/, '$1'));
}

// The report of the fixture files, made once for the tests that only read it.
const fixtureDir = configDir();
const fixtureReport = pgveil(fixtureDir, 'report', '--config', 'pgveil.yaml');

function rowOf(rows: Array<Record<string, string>>, subject: string): Record<string, string> {
  const row = rows.find((r) => r.Subject.startsWith(subject));
  assert.ok(row, `no row for ${subject}`);
  return row;
}

test('report: Markdown by default, a table per listed relation with a row per user and per group', () => {
  assert.is(fixtureReport.status, 0, fixtureReport.stderr);
  assert.is(fixtureReport.stderr, '');
  const employees = section(fixtureReport.stdout, 'public.employees');
  assert.equal(employees.map((e) => e.Subject.split(' (')[0]), [
    'user alice@acme.com', 'user bob@globex.com', 'user former@acme.com', 'user hana@acme.com',
    'group analysts', 'group auditors', 'group finance', 'group hr',
  ]);
  assert.equal(Object.keys(employees[0]), ['Subject', 'Access', 'Rows', 'ssn', 'email', 'salary', 'notes']);
});

test('report: a user row shows the filter serve binds for that user, attributes as quoted literals', () => {
  const alice = rowOf(section(fixtureReport.stdout, 'public.employees'), 'user alice@acme.com');
  // The very profile serve builds at login.
  const loaded = loadAll(join(fixtureDir, 'pgveil.yaml'));
  const profile = profileFor(compilePolicy(loaded.policy, loaded.users, 1), loaded.users.users.get('alice@acme.com')!);
  assert.is(alice.Rows, profile.tables.get('public.employees')!.filters.join(' AND '));
  assert.is(alice.Rows, '(org_id = ($pgv$acme$pgv$::pg_catalog.text)) AND (region = ANY((ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$UK$pgv$::pg_catalog.text]::pg_catalog.text[])))');
  assert.is(alice.Access, 'allowed');
  assert.is(alice.ssn, 'partial (keepFirst=0, keepLast=4, fill="*")');
  assert.is(alice.email, 'email');
  assert.is(alice.salary, 'null');
  assert.is(alice.notes, 'custom (expr="left(${column}, 10)")');
});

test('report: exemptions show: hr sees ssn and salary as stored, an auditor has no org filter, a missing attribute is "false"', () => {
  const employees = section(fixtureReport.stdout, 'public.employees');
  const hana = rowOf(employees, 'user hana@acme.com');
  // hana is an auditor (no org filter) but has no regions attribute: the region filter cannot bind and fails closed.
  assert.is(hana.Rows, 'false');
  assert.is(hana.ssn, 'as stored');
  assert.is(hana.salary, 'as stored');
  assert.is(rowOf(employees, 'user bob@globex.com').salary, 'as stored');
  assert.match(rowOf(employees, 'user former@acme.com').Subject, /disabled: cannot log in/);
});

test('report: denied access shows no filter or columns; unlisted relations and writes are stated once', () => {
  const projects = section(fixtureReport.stdout, 'public.projects');
  const hana = rowOf(projects, 'user hana@acme.com');
  assert.equal([hana.Access, hana.Rows, hana.budget], ['denied', '—', '—']);
  assert.is(rowOf(projects, 'user alice@acme.com').budget, 'round (step=1000)');
  const audit = section(fixtureReport.stdout, 'public.audit_log');
  assert.is(rowOf(audit, 'user bob@globex.com').Access, 'allowed', 'bob is exempt from the globex deny');
  assert.equal(fixtureReport.stdout.match(/Relations the policy does not list: allowed for every user/g)?.length, 1);
  assert.match(fixtureReport.stdout, /Writes .* refused \(defaults\.writes: deny\)/);
  assert.match(fixtureReport.stdout, /## Legend/);
});

test('report: a group row shows the rules membership decides, placeholders unbound', () => {
  const employees = section(fixtureReport.stdout, 'public.employees');
  const auditors = rowOf(employees, 'group auditors');
  assert.is(auditors.Rows, '(region = ANY(${user.attributes.regions}))');
  // employees is allowed by organization: a member's access depends on their org.
  assert.is(auditors.Access, 'denied (may differ by organization or user)');
  const hr = rowOf(employees, 'group hr');
  assert.is(hr.Rows, '(org_id = ${user.org}) AND (region = ANY(${user.attributes.regions}))');
  assert.is(hr.ssn, 'as stored');
  const projects = section(fixtureReport.stdout, 'public.projects');
  assert.is(rowOf(projects, 'group analysts').Access, 'allowed');
  assert.equal([rowOf(projects, 'group hr').Access, rowOf(projects, 'group hr').Rows], ['denied', '—']);
});

test('report: names with | and backticks stay inside their cell', async () => {
  const odd = `${policy}  public."Odd|Name":
    ownership:
      - filter: "note <> \`x\` || \${user.org}"
    redaction:
      '"a|b"': { mask: full }
`.replace('note <> `x` ||', "note <> 'a|`b' ||");
  const dir = configDir({ policy: odd });
  const r = await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml');
  assert.is(r.status, 0, r.stderr);
  const rows = section(r.stdout, 'public."Odd|Name"');
  assert.equal(Object.keys(rows[0]), ['Subject', 'Access', 'Rows', 'a|b']);
  assert.is(rowOf(rows, 'user alice@acme.com').Rows, "(note <> 'a|`b' || ($pgv$acme$pgv$::pg_catalog.text))");
  assert.is(rowOf(rows, 'user alice@acme.com')['a|b'], 'full');
});

test('report: names the policy and users files with their SHA-256 and the time it was made', () => {
  const sha = (f: string) => createHash('sha256').update(readFileSync(join(fixtureDir, f))).digest('hex');
  assert.ok(fixtureReport.stdout.includes(`- Policy: policy.yaml (sha256 ${sha('policy.yaml')})`), fixtureReport.stdout);
  assert.ok(fixtureReport.stdout.includes(`- Users: users.yaml (sha256 ${sha('users.yaml')})`), fixtureReport.stdout);
  assert.match(fixtureReport.stdout, /- Generated: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
  assert.ok(!fixtureReport.stdout.includes('SCRAM-SHA-256'), 'hana has a verifier in users.yaml; it is not in the report');
});

test('report: a layer switched off is stated, and its rules are gone from every row', async () => {
  const dir = configDir({ policy: policy.replace('defaults:', 'layers: { redaction: false }\ndefaults:') });
  const r = await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /The redaction layer is switched off/);
  const alice = rowOf(section(r.stdout, 'public.employees'), 'user alice@acme.com');
  assert.equal([alice.ssn, alice.email, alice.salary], ['as stored', 'as stored', 'as stored']);
});

test('report: an invalid policy is a configuration error at file:line:col (exit 2); bad options are usage errors', async () => {
  const dir = configDir({ policy: policy.replace('mask: email', 'mask: emial') });
  const r = await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml');
  assert.is(r.status, 2);
  assert.match(r.stderr, /^policy\.yaml:12:\d+: tables\."public\.employees"\.redaction\.email\.mask: /m);
  assert.is(r.stdout, '');
  assert.is((await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml', '--format', 'pdf')).status, 2);
  assert.is((await pgveilInProcess(dir, 'report')).status, 2);
  assert.is((await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml', 'extra')).status, 2);
});

test('report: the users file it reads is the configured one (a user added there appears)', async () => {
  const dir = configDir({ users: `${users}  zed@globex.com: { org: globex }\n` });
  const r = await pgveilInProcess(dir, 'report', '--config', 'pgveil.yaml');
  const zed = rowOf(section(r.stdout, 'public.employees'), 'user zed@globex.com');
  assert.is(zed.Rows, '(org_id = ($pgv$globex$pgv$::pg_catalog.text)) AND false', 'no regions attribute: that filter fails closed');
});

test.run();
