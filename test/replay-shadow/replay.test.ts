// `pgveil policy replay` as an operator runs it: a child process reading
// audit files (statement records as the audit log writes them), deciding
// each recorded text for its user under the active policy and a candidate
// against a real PostgreSQL's catalog; its report and exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { policyDefaults, startHarness, type Harness } from '../helpers/harness.js';
import { pgveil, type RunResult } from '../helpers/run.js';
import { activePolicy, tighterPolicy } from './shadow-proxy.js';

/** Lookup no longer listed (so usable by all), ssn shown: other relations than the active policy, so its own catalog read. */
const looser = `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
`;

let h: Harness;
let seq = 0;

function statement(user: string, text: string | undefined, decision: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ts: new Date().toISOString(), seq: ++seq, event: 'statement', session: '0-1', user, org: user.includes('globex') ? 'globex' : 'acme',
    ...(text === undefined ? { fingerprint: 'a1b2c3d4e5f60718' } : { text }), relations: [], decision, ...extra, prev: '0'.repeat(64),
  });
}

function other(event: Record<string, unknown>): string {
  return JSON.stringify({ ts: new Date().toISOString(), seq: ++seq, ...event, prev: '0'.repeat(64) });
}

/** A day of traffic: alice reads lookup twice and salaries, bob is refused lookup, dave left, two records without text. */
const auditLines = [
  other({ event: 'audit_file_start', file: 'audit.jsonl', previousFile: null }),
  other({ event: 'connect', session: '0-1', address: '127.0.0.1', tls: false }),
  statement('alice@acme.com', 'SELECT code FROM public.lookup ORDER BY code', 'forwarded'),
  statement('alice@acme.com', 'SELECT code FROM public.lookup ORDER BY code', 'forwarded'),
  statement('alice@acme.com', 'SELECT name,\n       salary\n  FROM crm.employees', 'rewritten'),
  statement('alice@acme.com', 'SELECT 1', 'refused', { code: '42501', reason: 'recorded under an older policy' }),
  statement('bob@globex.com', 'SELECT code FROM public.lookup', 'refused', { code: '42501', reason: 'permission denied for table lookup' }),
  statement('bob@globex.com', 'SELECT 1', 'forwarded'),
  statement('bob@globex.com', 'SELEC 1', 'syntax_error', { code: '42601' }),
  statement('dave@acme.com', 'SELECT 2', 'forwarded'),
  statement('carol@acme.com', undefined, 'forwarded'),
  statement('carol@acme.com', undefined, 'rewritten'),
  other({ event: 'disconnect', session: '0-1', reason: 'client', statements: 9, durationMs: 12 }),
];

let auditFile: string;
test.before(async () => {
  h = await startHarness({ policyYaml: activePolicy, tlsMode: 'disable' });
  auditFile = join(h.dir, 'audit.jsonl');
  writeFileSync(auditFile, auditLines.join('\n') + '\n{"ts":"2026-12-0'); // a torn last line, as after a crash
  writeFileSync(join(h.dir, 'tighter.yaml'), tighterPolicy);
  writeFileSync(join(h.dir, 'looser.yaml'), looser);
  writeFileSync(join(h.dir, 'same.yaml'), policyDefaults + activePolicy);
});
test.after(async () => { await h?.close(); });

function replay(...args: string[]): Promise<RunResult> {
  return pgveil(['policy', 'replay', '--config', h.configFile, ...args], { timeoutMs: 60000 });
}

/** The lines of one user's block (from its heading to the next unindented line). */
function userBlock(stdout: string, user: string): string {
  const m = new RegExp(`^${user.replace(/[.@]/g, '\\$&')}: .*\\n(?: .*\\n?)*`, 'm').exec(stdout);
  assert.ok(m, `no block for ${user} in:\n${stdout}`);
  return m![0];
}

test('a tightening candidate: newly refused and rewritten differently, per user, with why; exit 1', async () => {
  const r = await replay('--policy', join(h.dir, 'tighter.yaml'), auditFile);
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^replayed 7 statement records \(6 distinct statements, 2 users\) from 1 file$/m);
  const alice = userBlock(r.stdout, 'alice@acme.com');
  assert.match(alice, /^alice@acme\.com: 3 statements \(4 records\)$/m);
  assert.match(alice, /^ {2}newly refused:\n {4}SELECT code FROM public\.lookup ORDER BY code {3}\(2 records\)\n {6}candidate: 42501 permission denied for table lookup\n {6}public\.lookup: access allowed → denied$/m);
  assert.match(alice, /^ {2}rewritten differently:\n {4}SELECT name, salary FROM crm\.employees {3}\(1 record\)\n {6}crm\.employees\.salary: mask none → null$/m);
  assert.not.match(alice, /newly allowed/);
  assert.match(r.stdout, /^bob@globex\.com: 3 statements \(3 records\), no differences$/m, 'refused under both, a syntax error under both, forwarded under both');
  assert.match(r.stdout, /^not replayed:\n {2}2 statement records without text: .*set audit\.statements: full/m);
  assert.match(r.stdout, /^ {2}dave@acme\.com: 1 record \(no longer in .*users\.yaml\)$/m);
  assert.match(r.stdout, /^ {2}1 line that is not an audit record \(a torn last line, or another kind of file\)$/m, 'the torn last line');
  assert.match(r.stdout, /^result: 1 newly refused, 0 newly allowed, 1 rewritten differently \(distinct statements\)$/m);
  assert.not.match(r.stdout, /NULL::|pg_catalog\.right/, 'no rewritten SQL in the report');
});

test('a loosening candidate that lists other relations: newly allowed and rewritten differently; exit 1', async () => {
  const r = await replay('--policy', join(h.dir, 'looser.yaml'), auditFile);
  assert.is(r.status, 1, r.stderr + r.stdout);
  const bob = userBlock(r.stdout, 'bob@globex.com');
  assert.match(bob, /^ {2}newly allowed:\n {4}SELECT code FROM public\.lookup {3}\(1 record\)\n {6}active: 42501 permission denied for table lookup\n {6}public\.lookup: no longer listed in the policy\n {6}public\.lookup: access denied → allowed$/m);
  const alice = userBlock(r.stdout, 'alice@acme.com');
  assert.match(alice, /^ {2}rewritten differently:\n {4}SELECT name, salary FROM crm\.employees {3}\(1 record\)\n {6}crm\.employees\.ssn: mask partial .*→ none$/m, 'the whole row is read: ssn is no longer masked');
  assert.match(r.stdout, /^result: 0 newly refused, 1 newly allowed, 1 rewritten differently/m);
});

test('a candidate equal to the active policy: no differences, exit 0', async () => {
  const r = await replay('--policy', join(h.dir, 'same.yaml'), auditFile);
  assert.is(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^alice@acme\.com: 3 statements \(4 records\), no differences$/m);
  assert.match(r.stdout, /^result: 0 newly refused, 0 newly allowed, 0 rewritten differently/m);
});

test('a recorded decision the active policy no longer makes is shown with both', async () => {
  const r = await replay('--policy', join(h.dir, 'same.yaml'), auditFile);
  assert.match(r.stdout, /^decided otherwise by the active policy now than when recorded:\n {2}alice@acme\.com: SELECT 1 {3}\(recorded refused, now forwarded\)$/m);
});

test('--format json: the same findings for scripts', async () => {
  const r = await replay('--policy', join(h.dir, 'tighter.yaml'), '--format', 'json', auditFile);
  assert.is(r.status, 1, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    differences: Record<string, number>; notReplayed: { withoutText: number; users: Array<{ user: string; why: string }> };
    users: Array<{ user: string; differences: Array<{ text: string; kind: string; active: string; candidate: string; records: number }> }>;
  };
  assert.equal(doc.differences, { newly_refused: 1, newly_allowed: 0, rewritten_differently: 1 });
  assert.equal(doc.notReplayed.withoutText, 2);
  assert.equal(doc.notReplayed.users, [{ user: 'dave@acme.com', why: 'unknown', records: 1 }]);
  const alice = doc.users.find((u) => u.user === 'alice@acme.com')!;
  assert.equal(alice.differences.find((d) => d.kind === 'newly_refused'), {
    text: 'SELECT code FROM public.lookup ORDER BY code', records: 2, recorded: ['forwarded'], active: 'forwarded', candidate: 'refused', kind: 'newly_refused',
    details: ['candidate: 42501 permission denied for table lookup', 'public.lookup: access allowed → denied'],
  } as unknown);
});

test('a directory of audit files is read whole (rotated files and the active one)', async () => {
  const dir = join(h.dir, 'logs');
  mkdirSync(dir);
  writeFileSync(join(dir, 'audit-2026-12-01.jsonl'), statement('alice@acme.com', 'SELECT code FROM public.lookup ORDER BY code', 'forwarded') + '\n');
  writeFileSync(join(dir, 'audit.jsonl'), statement('alice@acme.com', 'SELECT code FROM public.lookup ORDER BY code', 'forwarded') + '\n');
  writeFileSync(join(dir, 'notes.txt'), 'not an audit file\n');
  const r = await replay('--policy', join(h.dir, 'tighter.yaml'), dir);
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^replayed 2 statement records \(1 distinct statement, 1 user\) from 2 files$/m);
  assert.match(r.stdout, /SELECT code FROM public\.lookup ORDER BY code {3}\(2 records\)/);
});

test('a log without statement texts cannot be replayed: exit 2, saying to set statements: full', async () => {
  const file = join(h.dir, 'fingerprints.jsonl');
  writeFileSync(file, [statement('alice@acme.com', undefined, 'forwarded'), other({ event: 'connect', session: '0-2', address: '127.0.0.1', tls: false })].join('\n') + '\n');
  const r = await replay('--policy', join(h.dir, 'tighter.yaml'), file);
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stderr, /nothing to replay in .*fingerprints\.jsonl: its 1 statement records carry no text: replay needs an audit log written with audit\.statements: full/);
});

test('usage and configuration errors exit 2: a candidate that does not fit upstream is named at its line', async () => {
  writeFileSync(join(h.dir, 'bad.yaml'), `${policyDefaults.trimStart()}tables:\n  crm.nope: {}\n`);
  const bad = await replay('--policy', join(h.dir, 'bad.yaml'), auditFile);
  assert.is(bad.status, 2, bad.stdout);
  assert.match(bad.stderr, /bad\.yaml:4:3: .*no such table upstream: crm\.nope/);

  const missing = await replay('--policy', join(h.dir, 'tighter.yaml'), join(h.dir, 'no-such.jsonl'));
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /no such file or directory: .*no-such\.jsonl/);

  const noFiles = await replay('--policy', join(h.dir, 'tighter.yaml'));
  assert.is(noFiles.status, 2);
  assert.match(noFiles.stderr, /missing the audit files to replay/);

  const noPolicy = await replay(auditFile);
  assert.is(noPolicy.status, 2);
  assert.match(noPolicy.stderr, /missing --policy/);
});

test.run();
