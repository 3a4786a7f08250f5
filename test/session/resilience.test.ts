// Lockout, idle timeout and upstream failure, each against a real
// PostgreSQL through real clients.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/run.js';

let h: Harness;

test.before(async () => {
  h = await startHarness({ lockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 2 }, idleTimeoutSeconds: 1 });
});
test.after(async () => { await h?.close(); });

async function tryConnect(user: string, extra: Record<string, unknown> = {}): Promise<{ client?: pg.Client; error?: { code?: string; message: string } }> {
  const client = new pg.Client(clientConfig(h, user, extra));
  client.on('error', () => {});
  try { await client.connect(); return { client }; } catch (e) { return { error: e as { code?: string; message: string } }; }
}

test('D1 lockout: after maxFailures the right password gets the same 28P01; other users unaffected; released after lockSeconds', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await tryConnect('alice@acme.com', { password: 'wrong-password-' + i });
    assert.is(r.error?.code, '28P01');
  }
  const locked = await tryConnect('alice@acme.com');
  assert.is(locked.error?.code, '28P01');
  assert.is(locked.error?.message, 'password authentication failed for user "alice@acme.com"');
  const bob = await tryConnect('bob@globex.com');
  assert.ok(bob.client, 'bob is not locked');
  await bob.client?.end();
  await new Promise((r) => setTimeout(r, 2200));
  const released = await tryConnect('alice@acme.com');
  assert.ok(released.client, `alice can log in again: ${released.error?.message}`);
  await released.client?.end();
});

test('D5 an idle session is closed with 57P05; a busy one is not', async () => {
  const busy = await tryConnect('carol@acme.com');
  assert.ok(busy.client);
  const r = await busy.client!.query('select pg_sleep(1.6) is null as slept');
  assert.is(r.rows[0].slept, false);
  const closed = new Promise<{ code?: string }>((resolve) => busy.client!.on('error', (e) => resolve(e as { code?: string })));
  const err = await closed;
  assert.is(err.code, '57P05');
});

test('D5 a session that sends a statement more often than the idle timeout stays open past it, and is closed once it stops', async () => {
  const active = await tryConnect('carol@acme.com');
  assert.ok(active.client);
  let error: { code?: string } | undefined;
  active.client!.on('error', (e) => { error ??= e as { code?: string }; }); // the FATAL first; the closed socket after it
  const started = Date.now();
  while (Date.now() - started < 2600) { // 2.6 idle timeouts, never idle for 1 s
    assert.is((await active.client!.query('select 1 as one')).rows[0].one, 1);
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.is(error, undefined, 'not closed while active');
  await waitFor('the idle timeout after the last statement', () => error !== undefined);
  assert.is(error?.code, '57P05');
});

test('E5 upstream stopped: open sessions get an error, new ones a clear 08006; after restart new connections work', async () => {
  const before = await tryConnect('bob@globex.com');
  assert.ok(before.client);
  const ended = new Promise<{ code?: string; message: string }>((resolve) => before.client!.on('error', (e) => resolve(e as { code?: string; message: string })));
  await h.pg.stop();
  const err = await ended;
  assert.ok(err.code === '57P01' || err.code === '08006' || /terminat/.test(err.message), `got ${err.code} ${err.message}`);
  const during = await tryConnect('bob@globex.com');
  assert.is(during.error?.code, '08006');
  assert.match(during.error?.message ?? '', /upstream/);
  await h.pg.start();
  const after = await tryConnect('bob@globex.com');
  assert.ok(after.client, `reconnect after restart: ${after.error?.message}`);
  const r = await after.client!.query('select 1 as ok');
  assert.is(r.rows[0].ok, 1);
  await after.client!.end();
});

test.run();
