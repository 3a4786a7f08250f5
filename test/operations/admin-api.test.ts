// The admin control API of one pgveil (real HTTP with fetch, real pg clients):
// without admin.token its paths are 404; with it, a missing or wrong token is
// 401, counted and logged with the client address (never the token); the
// session list shows user, org, address, since, state and statement count;
// ending a session sends its client 57P01 and closes its upstream backend;
// unlock lets a locked-out user log in again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ProxyHandle } from '../../src/session/server.js';
import { capturingLogger, connectClient, connectError, passwords, startHarness, writeConfig, type Harness, type LogLine } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ofEvent, waitForAudit } from '../audit-wiring/audit-file.js';
import { newToken, startProxyWith } from './ops-setup.js';

let h: Harness;
let proxy: ProxyHandle;
let plain: ProxyHandle;
let lines: LogLine[];
let auditFile: string;
const token = newToken();

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer', lockout: { maxFailures: 2, windowSeconds: 600, lockSeconds: 600 } });
  const captured = capturingLogger();
  lines = captured.lines;
  auditFile = join(h.dir, 'logs/ops-admin.jsonl');
  proxy = await startProxyWith(writeConfig(h, [
    `admin: { host: 127.0.0.1, port: 0, token: "${token}" }`,
    'audit: { file: logs/ops-admin.jsonl, statements: none, onFailure: block }',
  ]), captured.logger);
  plain = await startProxyWith(writeConfig(h, ['admin: { host: 127.0.0.1, port: 0 }']), capturingLogger().logger);
});

test.after(async () => {
  await plain?.close();
  await proxy?.close();
  await h?.close();
});

/** Session listings the audited proxy answered with 200 (the tests poll, so the count is kept, not assumed). */
let listingsOk = 0;

const call = async (p: ProxyHandle, method: string, path: string, opts: { token?: string; body?: unknown } = {}) => {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${p.adminPort}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* plain-text answers */ }
  if (p === proxy && method === 'GET' && path === '/sessions' && res.status === 200) listingsOk++;
  return { status: res.status, json, text };
};

const metric = async (p: ProxyHandle, pattern: RegExp): Promise<number> => {
  const m = pattern.exec(await p.metrics.registry.metrics());
  return m ? Number(m[1]) : 0;
};

test('without admin.token the control paths answer 404 (even with a token sent) and /metrics still works', async () => {
  assert.is((await call(plain, 'GET', '/sessions')).status, 404);
  assert.is((await call(plain, 'GET', '/sessions', { token })).status, 404);
  assert.is((await call(plain, 'DELETE', '/sessions/0-1', { token })).status, 404);
  assert.is((await call(plain, 'POST', '/unlock', { token, body: { user: 'bob@globex.com' } })).status, 404);
  assert.is((await call(plain, 'GET', '/metrics')).status, 200);
});

test('a missing or wrong token is refused with 401, counted, and logged with the address but never the token', async () => {
  const missing = await call(proxy, 'GET', '/sessions');
  assert.is(missing.status, 401);
  assert.not.ok('sessions' in missing.json);
  const wrong = await call(proxy, 'GET', '/sessions', { token: token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A') });
  assert.is(wrong.status, 401);
  assert.is((await call(proxy, 'POST', '/unlock', { token: 'x', body: { user: 'alice@acme.com' } })).status, 401);
  assert.is((await call(proxy, 'DELETE', '/sessions/0-1', { token: `${token}x` })).status, 401);
  assert.is(await metric(proxy, /pgveil_admin_actions_total\{action="sessions",outcome="refused"\} (\d+)/), 2);
  assert.is(await metric(proxy, /pgveil_admin_actions_total\{action="unlock",outcome="refused"\} (\d+)/), 1);
  const refused = lines.filter((l) => l.msg === 'admin request refused');
  assert.is(refused.length, 4);
  assert.equal(refused.map((l) => [l.level, l.address, l.reason]).slice(0, 2), [['warn', '127.0.0.1', 'no token'], ['warn', '127.0.0.1', 'wrong token']]);
  assert.not.ok(JSON.stringify(lines).includes(token.slice(0, 12)), 'the token appears in the log');
});

test('GET /sessions lists each session with user, org, address, since, state and statements', async () => {
  const alice = await connectClient(h, proxy.port, 'alice@acme.com');
  const bob = await connectClient(h, proxy.port, 'bob@globex.com');
  const carol = await connectClient(h, proxy.port, 'carol@acme.com');
  await alice.query('select 1');
  await alice.query('select 2');
  await bob.query('begin');
  await bob.query('select 1');
  await carol.query('begin');
  await carol.query('select 1/0').catch(() => {});
  const sleeping = alice.query('select pg_sleep(3)');
  sleeping.catch(() => {}); // if an assertion below fails, teardown ends this query: report the assertion, not an unhandled rejection
  // The queries and the HTTP request travel on different sockets: ask until pgveil has seen alice's
  // query and carol's ReadyForQuery (pg rejects her query at the ErrorResponse, which may reach pgveil
  // in an earlier chunk than the ReadyForQuery after it).
  let sessions: Array<Record<string, unknown>> = [];
  const of = (user: string) => sessions.find((s) => s.user === user)!;
  await waitFor('alice\'s statement to be running and carol\'s failed one to be over', async () => {
    const { status, json } = await call(proxy, 'GET', '/sessions', { token });
    assert.is(status, 200);
    sessions = json.sessions as Array<Record<string, unknown>>;
    return of('alice@acme.com')?.state === 'active' && of('carol@acme.com')?.state !== 'active';
  });
  assert.is(sessions.length, 3);
  assert.is(of('alice@acme.com').state, 'active');
  assert.is(of('alice@acme.com').statements, 3);
  assert.is(of('alice@acme.com').org, 'acme');
  assert.is(of('bob@globex.com').state, 'idle in transaction');
  assert.is(of('bob@globex.com').org, 'globex');
  assert.is(of('bob@globex.com').statements, 2);
  assert.is(of('carol@acme.com').state, 'failed transaction');
  for (const s of sessions) {
    assert.match(String(s.id), /^0-[0-9a-z]+$/);
    assert.is(s.address, '127.0.0.1');
    assert.type(s.port, 'number');
    assert.ok(Math.abs(Date.parse(String(s.since)) - Date.now()) < 60_000, `since ${String(s.since)}`);
  }
  await sleeping;
  const after = await call(proxy, 'GET', '/sessions', { token });
  assert.is((after.json.sessions as Array<Record<string, unknown>>).find((s) => s.user === 'alice@acme.com')!.state, 'idle');
  assert.ok(await metric(proxy, /pgveil_admin_actions_total\{action="sessions",outcome="ok"\} (\d+)/) >= 2, 'each listing counted');
  await Promise.all([alice.end(), bob.end(), carol.end()]);
});

test('DELETE /sessions/<id> ends that session with 57P01 and closes its upstream backend; others go on', async () => {
  const victim = await connectClient(h, proxy.port, 'bob@globex.com', { application_name: 'kill-me' });
  const other = await connectClient(h, proxy.port, 'alice@acme.com');
  const upstream = await h.pg.connect('analytics');
  upstream.on('error', () => {}); // the server stopping at teardown must not crash the file
  const backends = async (app: string) => Number((await upstream.query('select count(*) from pg_stat_activity where application_name = $1', [app])).rows[0].count);
  assert.is(await backends('pgveil:bob@globex.com:kill-me'), 1);
  const listed = (await call(proxy, 'GET', '/sessions', { token })).json.sessions as Array<{ id: string; user: string; port: number }>;
  const victimPort = (victim as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
  const id = listed.find((s) => s.user === 'bob@globex.com' && s.port === victimPort)!.id;
  const disconnectsBefore = await metric(proxy, /pgveil_disconnects_total\{reason="terminated"\} (\d+)/);

  const killed = await call(proxy, 'DELETE', `/sessions/${id}`, { token });
  assert.is(killed.status, 200);
  assert.equal(killed.json, { terminated: id });
  await waitFor('the client to see the termination', () => victim.lastError !== undefined);
  assert.is(victim.lastError!.code, '57P01');
  assert.match(victim.lastError!.message, /terminating connection due to administrator command/);
  await waitFor('the upstream backend to go', async () => (await backends('pgveil:bob@globex.com:kill-me')) === 0);
  assert.is(await metric(proxy, /pgveil_disconnects_total\{reason="terminated"\} (\d+)/), disconnectsBefore + 1);
  assert.is((await other.query('select 1 as one')).rows[0].one, 1);

  const again = await call(proxy, 'DELETE', `/sessions/${id}`, { token });
  assert.is(again.status, 404);
  assert.match(String(again.json.error), /no open session/);
  assert.is(await metric(proxy, /pgveil_admin_actions_total\{action="terminate",outcome="not_found"\} (\d+)/), 1);
  assert.is(await metric(proxy, /pgveil_admin_actions_total\{action="terminate",outcome="ok"\} (\d+)/), 1);
  const ended = lines.find((l) => l.msg === 'session ended' && l.session === id)!;
  assert.is(ended.reason, 'terminated');
  await other.end();
  await upstream.end();
});

test('POST /unlock lets a locked-out user log in again', async () => {
  for (const pw of ['wrong-password-1', 'wrong-password-2']) {
    assert.is((await connectError(h, proxy.port, 'bob@globex.com', { password: pw }))?.code, '28P01');
  }
  assert.is((await connectError(h, proxy.port, 'bob@globex.com'))?.code, '28P01', 'bob is locked even with his password');
  const bad = await call(proxy, 'POST', '/unlock', { token, body: { name: 'bob' } });
  assert.is(bad.status, 400);
  const unlocked = await call(proxy, 'POST', '/unlock', { token, body: { user: 'bob@globex.com' } });
  assert.is(unlocked.status, 200);
  assert.equal(unlocked.json, { user: 'bob@globex.com', wasLocked: true });
  assert.is(await connectError(h, proxy.port, 'bob@globex.com', { password: passwords['bob@globex.com'] }), undefined);
  const notLocked = await call(proxy, 'POST', '/unlock', { token, body: { user: 'bob@globex.com' } });
  assert.equal(notLocked.json, { user: 'bob@globex.com', wasLocked: false });
  assert.is(await metric(proxy, /pgveil_admin_actions_total\{action="unlock",outcome="ok"\} (\d+)/), 2);
  assert.ok(lines.some((l) => l.msg === 'admin action' && l.action === 'unlock' && l.target === 'bob@globex.com' && l.wasLocked === true));
});

test('a wrong method on a control path is 405 once the token is right', async () => {
  assert.is((await call(proxy, 'PUT', '/sessions', { token })).status, 405);
  assert.is((await call(proxy, 'GET', '/unlock', { token })).status, 405);
});

test('every admin action is in the audit log (refusals too, never the token), with unlock and the ended session\'s disconnect', async () => {
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'unlock').length >= 2);
  const admin = ofEvent(records, 'admin');
  assert.equal(ofEvent(records, 'admin', { outcome: 'refused' }).map((r) => r.action), ['sessions', 'sessions', 'unlock', 'terminate']);
  for (const r of admin) assert.is(r.by, 'admin:127.0.0.1');
  const terminated = ofEvent(records, 'admin', { action: 'terminate', outcome: 'ok' });
  assert.is(terminated.length, 1);
  assert.equal(ofEvent(records, 'admin', { action: 'terminate', outcome: 'not_found' }).map((r) => r.target), [terminated[0].target]);
  assert.is(ofEvent(records, 'admin', { action: 'sessions', outcome: 'ok' }).length, listingsOk);
  assert.ok(listingsOk >= 3, `${listingsOk} listings`);
  assert.equal(ofEvent(records, 'admin', { action: 'unlock', outcome: 'ok' }).map((r) => r.target), ['bob@globex.com', 'bob@globex.com']);
  assert.equal(ofEvent(records, 'unlock').map((r) => [r.user, r.by]), [['bob@globex.com', 'admin:127.0.0.1'], ['bob@globex.com', 'admin:127.0.0.1']]);
  const ended = ofEvent(records, 'disconnect', { session: terminated[0].target });
  assert.equal(ended.map((r) => [r.user, r.reason]), [['bob@globex.com', 'terminated']]);
  assert.ok(ofEvent(records, 'disconnect', { reason: 'auth_failed', user: 'bob@globex.com' }).length >= 3);
  assert.not.ok(readFileSync(auditFile, 'utf8').includes(token.slice(0, 12)), 'the token is in the audit file');
});

test.run();
