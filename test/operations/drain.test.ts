// SIGTERM drains a real `pgveil serve` child process: idle sessions (also
// idle in a transaction) end at once with 57P01, a statement that is running
// completes and its session ends right after with 57P01, a new connection is
// refused with 57P03 and /readyz answers 503 meanwhile; the process exits 0
// once every session is gone. Past shutdownTimeoutSeconds a statement still
// running is ended too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { connectClient, connectError, startHarness, writeConfig, type Harness } from '../helpers/harness.js';
import { serveChild, waitFor } from '../helpers/run.js';
import { logLines, newToken } from './ops-setup.js';

let h: Harness;
const token = newToken();

test.before(async () => { h = await startHarness({ tlsMode: 'prefer' }); });
test.after(async () => { await h?.close(); });

async function start(shutdownTimeoutSeconds: number) {
  const port = await freePort();
  const adminPort = await freePort();
  const configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `admin: { host: 127.0.0.1, port: ${adminPort}, token: "${token}" }`,
    `shutdownTimeoutSeconds: ${shutdownTimeoutSeconds}`,
  ]);
  const serve = await serveChild(configFile, 'pgveil listening');
  const sessions = async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/sessions`, { headers: { authorization: `Bearer ${token}` } });
    return ((await res.json()) as { sessions: Array<{ user: string; state: string }> }).sessions;
  };
  const readyz = async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status;
  return { ...serve, port, sessions, readyz };
}

test('SIGTERM: idle sessions end with 57P01 at once, a running pg_sleep completes and then ends with 57P01, new connections get 57P03', async () => {
  const serve = await start(30);
  const busy = await connectClient(h, serve.port, 'alice@acme.com');
  const idle = await connectClient(h, serve.port, 'bob@globex.com');
  const inTransaction = await connectClient(h, serve.port, 'carol@acme.com');
  await inTransaction.query('begin');
  await idle.query('select 1');
  const running = busy.query('select pg_sleep(3) as slept').then((r) => ({ rows: r.rows }), (err: { code?: string }) => ({ error: err.code }));
  await waitFor('the statement to be running', async () => (await serve.sessions()).some((s) => s.user === 'alice@acme.com' && s.state === 'active'));

  serve.child.kill('SIGTERM');
  await waitFor('the idle sessions to be ended', () => idle.lastError !== undefined && inTransaction.lastError !== undefined);
  assert.is(idle.lastError!.code, '57P01');
  assert.match(idle.lastError!.message, /terminating connection due to administrator command/);
  assert.is(inTransaction.lastError!.code, '57P01');
  const refused = await connectError(h, serve.port, 'bob@globex.com');
  assert.is(refused?.code, '57P03');
  assert.match(refused!.message, /shutting down/);
  assert.is(await serve.readyz(), 503);
  assert.is(busy.lastError, undefined, 'the running session was ended before its statement completed');

  assert.equal(await running, { rows: [{ slept: '' }] });
  await waitFor('the drained session to be ended', () => busy.lastError !== undefined);
  assert.is(busy.lastError!.code, '57P01');
  assert.is(await serve.exited, 0);

  const lines = logLines(serve.output());
  const ended = lines.filter((l) => l.msg === 'session ended');
  assert.equal(ended.map((l) => [l.user, l.reason]).sort(), [['alice@acme.com', 'shutdown'], ['bob@globex.com', 'shutdown'], ['carol@acme.com', 'shutdown']]);
  const alice = ended.find((l) => l.user === 'alice@acme.com')!;
  assert.is(alice.statements, 1);
  assert.type(alice.durationMs, 'number');
  assert.is(alice.address, '127.0.0.1');
  assert.ok(lines.some((l) => l.msg === 'connection refused' && l.reason === 'draining' && l.address === '127.0.0.1'));
});

test('past shutdownTimeoutSeconds a statement still running is ended with 57P01', async () => {
  const serve = await start(1);
  const busy = await connectClient(h, serve.port, 'alice@acme.com');
  const running = busy.query('select pg_sleep(60)').then(() => 'completed', (err: { code?: string }) => err.code);
  await waitFor('the statement to be running', async () => (await serve.sessions()).some((s) => s.state === 'active'));
  serve.child.kill('SIGTERM');
  assert.is(await running, '57P01');
  assert.is(await serve.exited, 0);
  assert.ok(logLines(serve.output()).some((l) => l.msg === 'shutdown timeout passed; ending the sessions still running a statement'));
});

test.run();
