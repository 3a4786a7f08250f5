// The control API under `workers: 2` (a real `pgveil serve` child): the
// primary lists the sessions of both workers, ends a session on whichever
// worker owns it (57P01 to that client), and an unlock lifts the lockout in
// the primary and in every worker; SIGTERM drains both workers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { connectClient, connectError, passwords, startHarness, writeConfig, type Harness } from '../helpers/harness.js';
import { pgveil, serveChild, waitFor } from '../helpers/run.js';
import { logLines, newToken } from './ops-setup.js';

let h: Harness;
let child: ChildProcess;
let output: () => string;
let exited: Promise<number | null>;
let port = 0;
let configFile = '';
let adminPort = 0;
const token = newToken();

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer', lockout: { maxFailures: 3, windowSeconds: 600, lockSeconds: 600 } });
  port = await freePort();
  adminPort = await freePort();
  configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `admin: { host: 127.0.0.1, port: ${adminPort}, token: "${token}" }`,
    'workers: 2',
  ]);
  ({ child, output, exited } = await serveChild(configFile, 'pgveil workers listening'));
});

test.after(async () => {
  if (child?.exitCode === null) { child.kill('SIGKILL'); await exited; }
  await h?.close();
});

/** The client side's port of a node-postgres connection: the session list's `port`. */
function localPort(c: unknown): number {
  return (c as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
}

/** The primary's session list, straight over HTTP (quicker than the CLI for polling). */
async function sessions(): Promise<Array<{ id: string; state: string }>> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/sessions`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { sessions: Array<{ id: string; state: string }> }).sessions;
}

/** Connects until there is a session on each worker (consecutive connections alternate between them). */
async function oneOnEachWorker(user: string) {
  const clients = [];
  const byWorker = new Map<number, Awaited<ReturnType<typeof connectClient>>>();
  for (let i = 0; i < 8 && byWorker.size < 2; i++) {
    const c = await connectClient(h, port, user);
    clients.push(c);
    byWorker.set((c as unknown as { processID: number }).processID >>> 24, c);
  }
  assert.is(byWorker.size, 2, 'no session landed on one of the workers');
  return { clients, byWorker };
}

test('pgveil sessions lists the sessions of both workers; kill ends one on the other worker with 57P01', async () => {
  const { clients, byWorker } = await oneOnEachWorker('alice@acme.com');
  const r = await pgveil(['sessions', '--config', configFile, '--json']);
  assert.is(r.status, 0, r.stderr);
  const listed = JSON.parse(r.stdout) as Array<{ id: string; user: string; state: string; port: number }>;
  assert.is(listed.length, clients.length);
  const workersListed = new Set(listed.map((s) => s.id.split('-')[0]));
  assert.equal([...workersListed].sort(), ['1', '2']);

  // End the session on worker 2, then the one on worker 1: the primary routes each to its owner.
  for (const worker of [2, 1]) {
    const target = byWorker.get(worker)!;
    const session = listed.find((s) => s.port === localPort(target))!;
    assert.ok(session.id.startsWith(`${worker}-`), `session ${session.id} is not on worker ${worker}`);
    const k = await pgveil(['sessions', '--config', configFile, 'kill', session.id]);
    assert.is(k.status, 0, k.stderr);
    await waitFor(`the session on worker ${worker} to end`, () => target.lastError !== undefined);
    assert.is(target.lastError!.code, '57P01');
  }
  const others = clients.filter((c) => !c.lastError);
  for (const c of others) assert.is((await c.query('select 1 as one')).rows[0].one, 1);
  const missing = await pgveil(['sessions', '--config', configFile, 'kill', '2-zzzzzz']);
  assert.is(missing.status, 1);
  for (const c of clients) if (!c.lastError) await c.end();
});

test('pgveil unlock lifts a lockout in every worker', async () => {
  for (let i = 0; i < 3; i++) {
    assert.is((await connectError(h, port, 'bob@globex.com', { password: `wrong-password-${i}` }))?.code, '28P01');
  }
  await waitFor('the lock to reach both workers', async () => {
    const errs = [await connectError(h, port, 'bob@globex.com'), await connectError(h, port, 'bob@globex.com')];
    return errs.every((e) => e?.code === '28P01');
  });
  const r = await pgveil(['unlock', '--config', configFile, 'bob@globex.com']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /unlocked bob@globex\.com/);
  // Consecutive connections alternate between the workers: each of them lets bob in.
  const workersSeen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const c = await connectClient(h, port, 'bob@globex.com', { password: passwords['bob@globex.com'] });
    workersSeen.add((c as unknown as { processID: number }).processID >>> 24);
    await c.end();
  }
  assert.equal([...workersSeen].sort(), [1, 2]);
});

test('SIGTERM drains both workers: a running statement completes, then every session ends with 57P01', async () => {
  const { clients, byWorker } = await oneOnEachWorker('carol@acme.com');
  const busy = byWorker.get(2)!;
  const idle = byWorker.get(1)!;
  const running = busy.query('select pg_sleep(3) as slept').then((r) => r.rows, (err: { code?: string }) => err.code);
  await waitFor('the statement to be running', async () => (await sessions()).some((s) => s.state === 'active'));
  child.kill('SIGTERM');
  await waitFor('the idle session to end', () => idle.lastError !== undefined);
  assert.is(idle.lastError!.code, '57P01');
  assert.equal(await running, [{ slept: '' }]);
  await waitFor('the drained session to end', () => busy.lastError !== undefined);
  assert.is(busy.lastError!.code, '57P01');
  assert.is(await exited, 0);
  for (const c of clients) assert.is(c.lastError?.code, '57P01');
  assert.ok(logLines(output()).some((l) => l.msg === 'session ended' && l.reason === 'shutdown' && l.worker === 2));
});

test.run();
