// `pgveil policy diff` as a CI job runs it: the configured policy against
// candidate files that loosen or tighten in each way, exit codes (1 =
// something loosens) and the listed changes. The CLI runs in this process
// (its real entry point, real files); the first two cases run it as a child
// process too, as a CI job would, exit code and output included.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { config, configDir, pgveil, pgveilInProcess, policy, type CliResult } from './fixtures.js';

const lit = (s: string) => `($pgv$${s}$pgv$::pg_catalog.text)`;
const aliceRegions = '(region = ANY((ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$UK$pgv$::pg_catalog.text]::pg_catalog.text[])))';
const aliceRows = `(org_id = ${lit('acme')}) AND ${aliceRegions}`;

const diffArgs = (options: string[]) => ['policy', 'diff', '--config', 'pgveil.yaml', ...options, 'candidate.yaml'];

function diff(candidate: string, ...options: string[]): Promise<CliResult> {
  return pgveilInProcess(configDir({ extra: { 'candidate.yaml': candidate } }), ...diffArgs(options));
}

/** The same as a child process: bin/pgveil.js, its exit code and its flushed output. */
function diffChild(candidate: string, ...options: string[]): CliResult {
  return pgveil(configDir({ extra: { 'candidate.yaml': candidate } }), ...diffArgs(options));
}

/** The text listing: "user x × relation:" / "policy-wide:" heading → its change lines. */
function sections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split('\n')) {
    if (line.endsWith(':') && !line.startsWith(' ')) out.set(line.slice(0, -1), (current = []));
    else if (line.startsWith('  ') && current) current.push(line.trim());
    else current = undefined;
  }
  return out;
}

function changes(stdout: string, heading: string): string[] {
  return sections(stdout).get(heading) ?? [];
}

function edit(from: string, to: string): string {
  assert.ok(policy.includes(from), `fixture has ${from}`);
  return policy.replace(from, to);
}

test('policy diff: the same policy: no changes, exit 0', () => {
  const r = diffChild(policy);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^active: +policy\.yaml \(sha256 [0-9a-f]{64}\)\ncandidate: candidate\.yaml \(sha256 [0-9a-f]{64}\)\n/);
  assert.ok(r.stdout.endsWith('no changes to effective access\n'), r.stdout);
});

test('policy diff: access granted to more subjects loosens (exit 1) and shows what they now see', () => {
  const r = diffChild(edit('allow: { groups: [analysts] }', 'allow: { groups: [analysts, hr] }'));
  assert.is(r.status, 1, r.stderr);
  assert.equal(changes(r.stdout, 'user hana@acme.com × public.projects'), ['access: denied → allowed (now: rows all rows; columns budget round (step=1000))  [loosens]']);
  assert.equal(changes(r.stdout, 'group hr × public.projects'), ['access: denied → allowed (now: rows all rows; columns budget round (step=1000))  [loosens]']);
  assert.match(r.stdout, /\n2 loosen, 0 tighten, 0 cannot be proven tighter: the candidate loosens the policy \(exit 1\)\n$/);
});

test('policy diff: access taken away tightens (exit 0)', async () => {
  const r = await diff(edit('deny: { orgs: [globex], except: { users: [bob@globex.com] } }', 'deny: { orgs: [globex] }'));
  assert.is(r.status, 0, r.stdout);
  assert.equal(changes(r.stdout, 'user bob@globex.com × public.audit_log'), ['access: allowed → denied  [tightens]']);
  assert.match(r.stdout, /\n0 loosen, 1 tighten, 0 cannot be proven tighter: nothing loosens\n$/);
});

test('policy diff: a removed filter loosens, shown as the bound text before → after', async () => {
  const r = await diff(edit('      - filter: "region = ANY(${user.attributes.regions})"\n', ''));
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), [`rows: ${aliceRows} → (org_id = ${lit('acme')})  [loosens]`]);
  assert.equal(changes(r.stdout, 'group auditors × public.employees'), ['rows: (region = ANY(${user.attributes.regions})) → all rows  [loosens]']);
});

test('policy diff: an added filter tightens (exit 0)', async () => {
  const r = await diff(edit('    redaction:\n      ssn:', '      - filter: "active"\n    redaction:\n      ssn:'));
  assert.is(r.status, 0, r.stdout);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), [`rows: ${aliceRows} → ${aliceRows} AND (active)  [tightens]`]);
});

test('policy diff: a rewritten filter cannot be proven tighter: "changes", exit 1', async () => {
  const r = await diff(edit('filter: "org_id = ${user.org}"', 'filter: "org_id = ${user.attributes.region}"'));
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), [`rows: ${aliceRows} → (org_id = ${lit('EU')}) AND ${aliceRegions}  [changes]`]);
  assert.match(r.stdout, /cannot be proven tighter: the candidate loosens the policy \(exit 1\)\n$/);
});

test('policy diff: a filter exemption widened loosens for the newly exempt only', async () => {
  const r = await diff(edit('except: { groups: [auditors] }', 'except: { groups: [auditors, finance] }'));
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'user bob@globex.com × public.employees'), [
    `rows: (org_id = ${lit('globex')}) AND (region = ANY((ARRAY[$pgv$US$pgv$::pg_catalog.text]::pg_catalog.text[]))) → (region = ANY((ARRAY[$pgv$US$pgv$::pg_catalog.text]::pg_catalog.text[])))  [loosens]`,
  ]);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), []);
});

test('policy diff: masks: removed loosens, weaker loosens, stronger tightens, unordered "changes"', async () => {
  const removed = await diff(edit('      email:  { mask: email }\n', ''));
  assert.is(removed.status, 1);
  assert.equal(changes(removed.stdout, 'user alice@acme.com × public.employees'), ['column email: email → as stored  [loosens]']);

  const weaker = await diff(edit('keepLast: 4', 'keepLast: 6'));
  assert.is(weaker.status, 1);
  assert.equal(changes(weaker.stdout, 'user alice@acme.com × public.employees'), ['column ssn: partial (keepFirst=0, keepLast=4, fill="*") → partial (keepFirst=0, keepLast=6, fill="*")  [loosens]']);
  assert.equal(changes(weaker.stdout, 'user hana@acme.com × public.employees'), [], 'hr is exempt either way');

  const stronger = await diff(edit('email:  { mask: email }', 'email:  { mask: full }'));
  assert.is(stronger.status, 0, stronger.stdout);
  assert.equal(changes(stronger.stdout, 'user alice@acme.com × public.employees'), ['column email: email → full  [tightens]']);

  const unordered = await diff(edit('ssn:    { mask: partial, keepLast: 4, fill: "*",', 'ssn:    { mask: email,'));
  assert.is(unordered.status, 1);
  assert.equal(changes(unordered.stdout, 'user alice@acme.com × public.employees'), ['column ssn: partial (keepFirst=0, keepLast=4, fill="*") → email  [changes]']);
});

test('policy diff: a mask exemption widened loosens for the newly exempt', async () => {
  const r = await diff(edit('except: { groups: [hr, finance] }', 'except: { groups: [hr, finance, analysts] }'));
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), ['column salary: null → as stored  [loosens]']);
  assert.equal(changes(r.stdout, 'group analysts × public.employees'), ['column salary: null → as stored  [loosens]']);
});

const withoutProjects = policy.slice(0, policy.indexOf('  public.projects:'));

test('policy diff: a table removed while unlisted relations are allowed loosens (no longer protected)', async () => {
  const r = await diff(withoutProjects);
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.projects'), ['column budget: round (step=1000) → as stored  [loosens]']);
  assert.equal(changes(r.stdout, 'user hana@acme.com × public.projects'), ['access: denied → allowed (now: rows all rows; every column as stored)  [loosens]']);
});

test('policy diff: under deny, removing a table and denying unlisted relations tighten (exit 0)', async () => {
  const r = await diff(withoutProjects.replace('unlistedRelations: allow', 'unlistedRelations: deny'));
  assert.is(r.status, 0, r.stdout);
  assert.equal(changes(r.stdout, 'policy-wide'), ['defaults.unlistedRelations: allow → deny  [tightens]']);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.projects'), ['access: allowed → denied  [tightens]']);
});

test('policy diff: writes allowed, a layer switched off and a function allowed loosen', async () => {
  const r = await diff(edit('writes: deny }', 'writes: allow }\nlayers: { ownership: false }\nfunctions: { allow: [public.lookup] }'));
  assert.is(r.status, 1);
  assert.equal(changes(r.stdout, 'policy-wide'), [
    'layers.ownership: on → off  [loosens]',
    'defaults.writes: deny → allow  [loosens]',
    'functions.allow: public.lookup added  [loosens]',
  ]);
  assert.equal(changes(r.stdout, 'user alice@acme.com × public.employees'), [`rows: ${aliceRows} → all rows  [loosens]`]);
});

test('policy diff --format json: the same changes for a CI job, with the verdict counts', async () => {
  const r = await diff(edit('keepLast: 4', 'keepLast: 6'), '--format', 'json');
  assert.is(r.status, 1);
  const out = JSON.parse(r.stdout) as { loosens: boolean; counts: Record<string, number>; changes: Array<Record<string, unknown>>; candidate: { file: string } };
  assert.is(out.loosens, true);
  assert.is(out.candidate.file, 'candidate.yaml');
  const alice = out.changes.find((c) => (c.subject as { name: string }).name === 'alice@acme.com');
  assert.equal(alice, {
    subject: { kind: 'user', name: 'alice@acme.com' }, relation: 'public.employees', aspect: 'column', verdict: 'loosens', column: 'ssn',
    before: { kind: 'partial', text: 'partial (keepFirst=0, keepLast=4, fill="*")' },
    after: { kind: 'partial', text: 'partial (keepFirst=0, keepLast=6, fill="*")' },
  });
  assert.is(out.counts.loosens, out.changes.length);
  const same = JSON.parse((await diff(policy, '--format', 'json')).stdout) as { loosens: boolean; changes: unknown[] };
  assert.equal([same.loosens, same.changes], [false, []]);
});

test('policy diff: a candidate a reload would reject fails the same way as check does (file:line:col, exit 2)', async () => {
  const candidate = edit('allow: { orgs: [acme, globex] }', 'allow: { orgs: [acme, initech] }').replace('mask: round, step: 1000', 'mask: round, step: 0');
  const dir = configDir({ extra: { 'candidate.yaml': candidate, 'candidate-config.yaml': config.replace('policy: policy.yaml', 'policy: candidate.yaml') } });
  const r = await pgveilInProcess(dir, 'policy', 'diff', '--config', 'pgveil.yaml', 'candidate.yaml');
  assert.is(r.status, 2);
  assert.is(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n'), [
    'candidate.yaml:5:29: tables."public.employees".access.allow.orgs[1]: unknown organization "initech" (known: acme, globex)',
    'candidate.yaml:22:36: tables."public.projects".redaction.budget.step: expected a number > 0, got 0',
  ]);
  // The candidate as the active policy: check (and so serve) reports exactly these problems.
  const check = await pgveilInProcess(dir, 'check', '--config', 'candidate-config.yaml');
  assert.is(check.status, 2);
  assert.equal(check.stderr.trim().split('\n').slice(0, -1), r.stderr.trim().split('\n'));
});

test('policy diff: usage errors exit 2', async () => {
  const dir = configDir({ extra: { 'candidate.yaml': policy } });
  assert.is((await pgveilInProcess(dir, 'policy', 'diff', '--config', 'pgveil.yaml')).status, 2);
  assert.is((await pgveilInProcess(dir, 'policy', 'diff', '--config', 'pgveil.yaml', 'candidate.yaml', 'other.yaml')).status, 2);
  assert.is((await pgveilInProcess(dir, 'policy', 'diff', '--config', 'pgveil.yaml', '--format', 'xml', 'candidate.yaml')).status, 2);
  assert.is((await pgveilInProcess(dir, 'policy', 'diff', 'candidate.yaml')).status, 2);
  const missing = await pgveilInProcess(dir, 'policy', 'diff', '--config', 'pgveil.yaml', 'nope.yaml');
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /nope\.yaml/);
});

test.run();
