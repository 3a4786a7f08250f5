// The shadow policy and replay with a real audit log: a pgveil with
// `audit.statements: full` and a tightening shadow writes shadow_difference
// records beside the statement records; `pgveil policy replay` then reads
// that same file and finds the same differences. With `statements:
// fingerprint` the shadow records carry the fingerprint instead of the text,
// and the file cannot be replayed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient, policyDefaults, startHarness, type Harness } from '../helpers/harness.js';
import { pgveil, type RunResult } from '../helpers/run.js';
import { readAudit, type AuditLine } from '../audit-wiring/audit-file.js';
import { activePolicy, differences, settle, shadowConfig, startShadowProxy, tighterPolicy } from './shadow-proxy.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({ policyYaml: activePolicy, tlsMode: 'disable' });
  writeFileSync(join(h.dir, 'tighter.yaml'), tighterPolicy);
  writeFileSync(join(h.dir, 'same.yaml'), policyDefaults + activePolicy);
});
test.after(async () => { await h?.close(); });

function replay(configFile: string, ...args: string[]): Promise<RunResult> {
  return pgveil(['policy', 'replay', '--config', configFile, ...args], { timeoutMs: 60000 });
}

/** Runs the day's traffic through a pgveil with the tighter shadow and `statements`, waits for its candidate, closes it (flushing the audit log). */
async function recordTraffic(statements: 'full' | 'fingerprint'): Promise<{ configFile: string; auditFile: string }> {
  const configFile = shadowConfig(h, join(h.dir, 'tighter.yaml'), `audit: { file: logs-${statements}/audit.jsonl, statements: ${statements}, onFailure: block }`);
  const proxy = await startShadowProxy(configFile);
  try {
    const alice = await connectClient(h, proxy.port, 'alice@acme.com');
    const bob = await connectClient(h, proxy.port, 'bob@globex.com');
    await alice.query('SELECT code FROM public.lookup ORDER BY code');
    await alice.query('SELECT code FROM public.lookup ORDER BY code');
    assert.equal((await alice.query('SELECT salary::int AS salary FROM crm.employees')).rows, [{ salary: 90000 }]);
    await bob.query('SELECT code FROM public.lookup').catch(() => undefined);
    await bob.query('SELECT 1');
    assert.is(await settle(() => differences(proxy, 'newly_refused'), 2), 2);
    assert.is(await settle(() => differences(proxy, 'rewritten_differently'), 1), 1);
    await alice.end();
    await bob.end();
  } finally {
    await proxy.close();
  }
  return { configFile, auditFile: join(h.dir, `logs-${statements}/audit.jsonl`) };
}

let full: { configFile: string; auditFile: string };

test('statements: full: each difference is a shadow_difference record with the text, both decisions and why', async () => {
  full = await recordTraffic('full');
  const lines = readAudit(full.auditFile);
  const shadow = lines.filter((l) => l.event === 'shadow_difference');
  const sessions = new Map(lines.filter((l) => l.event === 'statement').map((l) => [l.text, l.session]));
  const pick = ({ user, text, active, candidate, kind, reason }: AuditLine) => ({ user, text, active, candidate, kind, reason });
  assert.equal(shadow.map(pick), [
    { user: 'alice@acme.com', text: 'SELECT code FROM public.lookup ORDER BY code', active: 'forwarded', candidate: 'refused', kind: 'newly_refused', reason: '42501 permission denied for table lookup' },
    { user: 'alice@acme.com', text: 'SELECT code FROM public.lookup ORDER BY code', active: 'forwarded', candidate: 'refused', kind: 'newly_refused', reason: '42501 permission denied for table lookup' },
    { user: 'alice@acme.com', text: 'SELECT salary::int AS salary FROM crm.employees', active: 'rewritten', candidate: 'rewritten', kind: 'rewritten_differently', reason: 'crm.employees.salary: mask none → null' },
  ]);
  assert.is(shadow[0].session, sessions.get('SELECT code FROM public.lookup ORDER BY code'), 'the record names the session of the statement');
  assert.ok(typeof shadow[0].prev === 'string' && typeof shadow[0].seq === 'number', 'chained like every record');
  const text = readFileSync(full.auditFile, 'utf8');
  assert.not.match(text, /NULL::|pg_catalog\.right/, 'no rewritten SQL, the candidate\'s or the active one\'s');
});

test('replay reads the file a real session wrote and finds the same differences', async () => {
  const r = await replay(full.configFile, '--policy', join(h.dir, 'tighter.yaml'), full.auditFile);
  assert.is(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stdout, /^alice@acme\.com: 2 statements \(3 records\)$/m);
  assert.match(r.stdout, /^ {2}newly refused:\n {4}SELECT code FROM public\.lookup ORDER BY code {3}\(2 records\)\n {6}candidate: 42501 permission denied for table lookup$/m);
  assert.match(r.stdout, /^ {2}rewritten differently:\n {4}SELECT salary::int AS salary FROM crm\.employees {3}\(1 record\)\n {6}crm\.employees\.salary: mask none → null$/m);
  assert.match(r.stdout, /^bob@globex\.com: 2 statements \(2 records\), no differences$/m);
  assert.match(r.stdout, /^result: 1 newly refused, 0 newly allowed, 1 rewritten differently/m);
  assert.not.match(r.stdout, /decided otherwise by the active policy now/, 'the recorded decisions are the active policy\'s');

  const same = await replay(full.configFile, '--policy', join(h.dir, 'same.yaml'), full.auditFile);
  assert.is(same.status, 0, same.stderr + same.stdout);
});

test('statements: fingerprint: shadow records carry the fingerprint, not the text; replay has nothing to decide (exit 2)', async () => {
  const fp = await recordTraffic('fingerprint');
  const lines = readAudit(fp.auditFile);
  const shadow = lines.filter((l) => l.event === 'shadow_difference');
  assert.is(shadow.length, 3);
  for (const record of shadow) {
    assert.is(record.text, undefined);
    assert.match(String(record.fingerprint), /^[0-9a-f]{16}$/);
  }
  const statementFingerprint = lines.find((l) => l.event === 'statement' && l.decision === 'forwarded' && l.user === 'alice@acme.com')?.fingerprint;
  assert.is(shadow[0].fingerprint, statementFingerprint, 'the same fingerprint as the statement record');

  const r = await replay(fp.configFile, '--policy', join(h.dir, 'tighter.yaml'), fp.auditFile);
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stderr, /statement records carry no text: replay needs an audit log written with audit\.statements: full/);
});

test.run();
