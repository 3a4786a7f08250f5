// Why sessions end, as the operator sees it: every way a session ends is
// counted in pgveil_disconnects_total{reason} and logged ("session ended":
// user, address, reason, duration, statements); failed logins are logged
// with user, reason and client address, refused connections with reason and
// address. And every counter pgveil exposes follows the Prometheus naming
// conventions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyHandle } from '../../src/session/server.js';
import { capturingLogger, connectClient, connectError, passwords, startHarness, writeConfig, type Harness, type LogLine } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';
import { RawClient, frame, sqlstate } from '../helpers/raw-client.js';
import { startProxyWith } from './ops-setup.js';

let h: Harness;
let proxy: ProxyHandle;
let lines: LogLine[];
let usersFile: string;

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer' });
  // Users of their own, so disabling one here touches no other proxy.
  usersFile = join(h.dir, 'users-reasons.yaml');
  writeFileSync(usersFile, readFileSync(join(h.dir, 'users.yaml')));
  const captured = capturingLogger();
  lines = captured.lines;
  proxy = await startProxyWith(writeConfig(h, ['users: users-reasons.yaml', 'admin: { host: 127.0.0.1, port: 0 }']), captured.logger);
});

test.after(async () => {
  await proxy?.close();
  await h?.close();
});

const disconnects = async (p: ProxyHandle, reason: string): Promise<number> =>
  Number(new RegExp(`pgveil_disconnects_total\\{reason="${reason}"\\} (\\d+)`).exec(await p.metrics.registry.metrics())?.[1] ?? 0);

const endedLine = (user: string, reason: string) => lines.find((l) => l.msg === 'session ended' && l.user === user && l.reason === reason);

test('a client that says goodbye ends with reason client, logged with user, address, duration and statements', async () => {
  const c = await connectClient(h, proxy.port, 'alice@acme.com');
  await c.query('select 1');
  await c.query('select 2');
  await c.end();
  await waitFor('the session end', () => endedLine('alice@acme.com', 'client') !== undefined);
  const line = endedLine('alice@acme.com', 'client')!;
  assert.is(line.level, 'info');
  assert.is(line.statements, 2);
  assert.is(line.address, '127.0.0.1');
  assert.type(line.durationMs, 'number');
  assert.match(String(line.session), /^0-[0-9a-z]+$/);
  assert.is(await disconnects(proxy, 'client'), 1);
});

test('a failed login is logged with user, reason and address, and ends with reason auth_failed', async () => {
  assert.is((await connectError(h, proxy.port, 'bob@globex.com', { password: 'wrong-password-here' }))?.code, '28P01');
  assert.is((await connectError(h, proxy.port, 'nobody@nowhere.com', { password: 'whatever-password' }))?.code, '28P01');
  const refused = lines.filter((l) => l.msg === 'authentication refused');
  assert.equal(refused.map((l) => [l.level, l.user, l.reason, l.address]), [
    ['warn', 'bob@globex.com', 'wrong_password', '127.0.0.1'],
    ['warn', 'nobody@nowhere.com', 'unknown_user', '127.0.0.1'],
  ]);
  await waitFor('both session ends', async () => (await disconnects(proxy, 'auth_failed')) === 2);
  assert.ok(endedLine('bob@globex.com', 'auth_failed'));
});

test('disabling a user ends their session with 57P01 and reason user_disabled', async () => {
  const c = await connectClient(h, proxy.port, 'carol@acme.com');
  writeFileSync(usersFile, readFileSync(usersFile, 'utf8').replace(/(  carol@acme\.com:\n)/, '$1    disabled: true\n'));
  assert.ok(await proxy.reload());
  await waitFor('the client to see its end', () => c.lastError !== undefined);
  assert.is(c.lastError!.code, '57P01');
  await waitFor('the session end', () => endedLine('carol@acme.com', 'user_disabled') !== undefined);
  assert.is(await disconnects(proxy, 'user_disabled'), 1);
});

test('a session whose upstream backend is terminated ends with reason upstream_lost', async () => {
  const c = await connectClient(h, proxy.port, 'alice@acme.com', { application_name: 'lose-upstream' });
  const upstream = await h.pg.connect('analytics');
  await upstream.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgveil:alice@acme.com:lose-upstream'");
  await upstream.end();
  await waitFor('the client to see its end', () => c.lastError !== undefined);
  await waitFor('the session end', () => endedLine('alice@acme.com', 'upstream_lost') !== undefined);
  assert.is(await disconnects(proxy, 'upstream_lost'), 1);
});

test('a message of no known type ends the session with 08P01 and reason protocol_error; a bare probe leaves no trace', async () => {
  const probe = await RawClient.connect(proxy.port);
  probe.socket.end(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])); // SSLRequest, then gone
  const raw = await RawClient.connect(proxy.port);
  await raw.login('alice@acme.com', passwords['alice@acme.com']);
  raw.send(frame('x', Buffer.from('junk')));
  const answer = await raw.message();
  assert.is(sqlstate(answer), '08P01');
  await waitFor('the session end', async () => (await disconnects(proxy, 'protocol_error')) === 1);
  assert.ok(endedLine('alice@acme.com', 'protocol_error'));
  assert.not.ok(lines.some((l) => l.msg === 'session ended' && l.user === undefined), 'a probe was logged as a session');
});

test('an idle session past idleTimeoutSeconds ends with 57P05 and reason idle_timeout', async () => {
  const text = readFileSync(h.configFile, 'utf8').replace(/^  idleTimeoutSeconds: \d+$/m, '  idleTimeoutSeconds: 1');
  const file = join(h.dir, 'pgveil-idle.yaml');
  writeFileSync(file, text);
  const captured = capturingLogger();
  const idleProxy = await startProxyWith(file, captured.logger);
  try {
    const c = await connectClient(h, idleProxy.port, 'bob@globex.com');
    await waitFor('the idle timeout', () => c.lastError !== undefined);
    assert.is(c.lastError!.code, '57P05');
    await waitFor('the session end', async () => (await disconnects(idleProxy, 'idle_timeout')) === 1);
    assert.ok(captured.lines.some((l) => l.msg === 'session ended' && l.reason === 'idle_timeout' && l.user === 'bob@globex.com'));
  } finally {
    await idleProxy.close();
  }
});

test('a connection refused for too many clients is logged with reason and address', async () => {
  const captured = capturingLogger();
  const tiny = await startProxyWith(writeConfig(h, ['limits: { maxMessageBytes: 1048576, maxClients: 1 }']), captured.logger);
  try {
    const first = await connectClient(h, tiny.port, 'alice@acme.com');
    assert.is((await connectError(h, tiny.port, 'bob@globex.com'))?.code, '53300');
    const refusal = captured.lines.find((l) => l.msg === 'connection refused')!;
    assert.equal([refusal.level, refusal.reason, refusal.address], ['warn', 'too_many_clients', '127.0.0.1']);
    await first.end();
  } finally {
    await tiny.close();
  }
});

test('closing the proxy ends the sessions left with 57P01 and reason shutdown', async () => {
  const captured = capturingLogger();
  const other = await startProxyWith(writeConfig(h, []), captured.logger);
  const c = await connectClient(h, other.port, 'alice@acme.com');
  await other.close();
  await waitFor('the client to see its end', () => c.lastError !== undefined);
  assert.is(c.lastError!.code, '57P01');
  assert.is(await disconnects(other, 'shutdown'), 1);
});

test('every counter of pgveil\'s own ends in _total; the cache counts hits, misses, evictions and miss seconds as counters beside an entries gauge', async () => {
  const c = await connectClient(h, proxy.port, 'alice@acme.com');
  for (let i = 0; i < 3; i++) await c.query('select name from crm.employees where id = 1');
  await c.end();
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`);
  const text = await res.text();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  for (const [name, type] of types) {
    if (/^pgveil_(process|nodejs)_/.test(name)) continue; // prom-client's default metrics, named by prom-client
    if (type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} does not end in _total`);
    else assert.not.ok(name.endsWith('_total'), `${type} ${name} ends in _total`);
    assert.not.match(name, /_(ms|milliseconds|kb|mb)(_|$)/, `${name} is not in base units`);
    if (type === 'histogram') assert.match(name, /_(seconds|bytes)$/, `histogram ${name} has no unit`);
  }
  for (const name of ['pgveil_cache_hits_total', 'pgveil_cache_misses_total', 'pgveil_cache_evictions_total', 'pgveil_cache_miss_seconds_total']) {
    assert.is(types.get(name), 'counter', name);
  }
  assert.is(types.get('pgveil_cache_entries'), 'gauge');
  assert.match(text, /^pgveil_cache_hits_total [1-9]/m);
  assert.match(text, /^pgveil_cache_misses_total [1-9]/m);
  assert.match(text, /^pgveil_disconnects_total\{reason="client"\} [1-9]/m);
});

test.run();
