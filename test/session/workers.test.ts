// workers: 2 (docs/configuration.md): `pgveil serve` forks two
// processes sharing the port. A CancelRequest reaches the upstream backend of
// the right session whichever worker it lands on; a wrong key cancels
// nothing; lockout counts failures across workers (threat D1 in docs/threat-model.md); an unknown
// user gets the same fake salt from every worker (D2); /metrics sums the
// workers; a worker that dies is replaced; SIGTERM stops everything.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, frame, int32, startupPacket } from '../helpers/raw-client.js';
import { freePort } from '../../src/demo/embedded-postgres.js';

let h: Harness;
let proxy: ChildProcess;
let port = 0;
let adminPort = 0;
let stderr = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function canConnect(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function workerPids(): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=', '--ppid', String(proxy.pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}

/** `pgveil serve` with the harness's config on `listenPort`, plus `extraYaml`; resolves once the primary reports its workers listening. */
async function serve(name: string, listenPort: number, extraYaml: string, onOutput: (text: string) => void): Promise<ChildProcess> {
  const configFile = h.configFile.replace(/\.yaml$/, `-${name}.yaml`);
  let text = readFileSync(h.configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${listenPort} }`);
  assert.ok(text.includes(`port: ${listenPort}`));
  for (const line of extraYaml.split('\n').filter(Boolean)) { // a replaced top-level or auth line, or a new one
    const key = /^( *\w+):/.exec(line)?.[1];
    const existing = key ? new RegExp(`^${key}:.*$`, 'm') : undefined;
    text = existing?.test(text) ? text.replace(existing, line) : `${text}\n${line}`;
  }
  writeFileSync(configFile, text + '\n');
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url)), 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); onOutput(d.toString()); });
  for (let i = 0; i < 600 && !out.includes('pgveil workers listening'); i++) await sleep(100);
  assert.ok(out.includes('pgveil workers listening'), `the primary did not report its workers listening:\n${out}`);
  return child;
}

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer', lockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 60 }, maxClients: 10 });
  port = await freePort();
  adminPort = await freePort();
  proxy = await serve('workers', port, `workers: 2\nadmin: { host: 127.0.0.1, port: ${adminPort} }`, (t) => { stderr += t; });
});

test.after(async () => {
  if (proxy.exitCode === null) {
    const exited = new Promise((r) => proxy.once('exit', r));
    proxy.kill('SIGKILL');
    await exited;
  }
  await h.close();
});

const config = (user: string, extra: Record<string, unknown> = {}) => ({ ...clientConfig(h, user), port, ssl: false, connectionTimeoutMillis: 5000, ...extra });

function cancel(processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      const m = Buffer.alloc(16);
      m.writeInt32BE(16, 0); m.writeInt32BE(80877102, 4); m.writeInt32BE(processId, 8); m.writeInt32BE(secretKey, 12);
      s.end(m);
    });
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
}

test('both workers serve sessions under the policy, and each log line names its worker', async () => {
  const workersSeen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const c = new pg.Client(config('alice@acme.com'));
    await c.connect();
    workersSeen.add((c as unknown as { processID: number }).processID >>> 24);
    const r = await c.query('select distinct org_id from crm.employees');
    assert.equal(r.rows.map((x) => x.org_id), ['acme']);
    await c.end();
  }
  assert.equal([...workersSeen].sort(), [1, 2]);
  assert.match(stderr, /"msg":"pgveil listening"[^\n]*"worker":1/);
  assert.match(stderr, /"msg":"pgveil listening"[^\n]*"worker":2/);
});

test('a cancel reaches the right backend whichever worker receives it; a wrong key cancels nothing', async () => {
  for (let i = 0; i < 4; i++) { // consecutive cancel connections alternate between the workers
    const c = new pg.Client(config('alice@acme.com'));
    await c.connect();
    const key = c as unknown as { processID: number; secretKey: number };
    const started = Date.now();
    const running = c.query('select pg_sleep(10)').then(() => undefined, (e) => e as { code?: string });
    await sleep(150);
    await cancel(key.processID, key.secretKey ^ 1);
    await cancel(key.processID ^ (3 << 24), key.secretKey); // the other worker's id with this key: not that worker's session
    await sleep(300);
    await cancel(key.processID, key.secretKey);
    const err = await running;
    assert.is(err?.code, '57014');
    const took = Date.now() - started;
    assert.ok(took >= 450, `a wrong key cancelled the query after ${took} ms`);
    assert.ok(took < 3000, `cancel took ${took} ms`);
    assert.is((await c.query('select 1 as one')).rows[0].one, 1, 'the session goes on after the cancel');
    await c.end();
  }
});

test('D1 lockout counts failures across workers', async () => {
  for (let i = 0; i < 3; i++) { // consecutive connections alternate, so both workers see failures
    const c = new pg.Client(config('bob@globex.com', { password: `wrong-${i}-password` }));
    const err = await c.connect().then(() => undefined, (e) => e as { code?: string });
    assert.is(err?.code, '28P01');
  }
  await sleep(200);
  for (let i = 0; i < 4; i++) { // whichever worker answers, bob is locked
    const c = new pg.Client(config('bob@globex.com', { password: passwords['bob@globex.com'] }));
    const err = await c.connect().then(() => c.end(), (e) => e as { code?: string });
    assert.is((err as { code?: string } | undefined)?.code, '28P01');
  }
  const alice = new pg.Client(config('alice@acme.com'));
  await alice.connect();
  await alice.end();
});

test('E3 failed logins from one address are counted across workers', async () => {
  const otherPort = await freePort();
  const other = await serve('address', otherPort, 'workers: 2\n  addressLockout: { maxFailures: 4, windowSeconds: 60, lockSeconds: 60 }', () => {});
  try {
    const attempt = async (password: string) => {
      const c = new pg.Client({ ...config('carol@acme.com', { password }), port: otherPort });
      c.on('error', () => {});
      return c.connect().then(async () => { const id = (c as unknown as { processID: number }).processID >>> 24; await c.end(); return `ok ${id}`; }, (e: { code?: string }) => e.code);
    };
    assert.match(String(await attempt(passwords['carol@acme.com'])), /^ok [12]$/);
    for (let i = 0; i < 4; i++) assert.is(await attempt(`wrong-${i}-password`), '28P01'); // two on each worker
    await sleep(200);
    assert.equal([await attempt(passwords['carol@acme.com']), await attempt(passwords['carol@acme.com'])], ['28000', '28000'], 'both workers refuse the address');
  } finally {
    other.kill('SIGKILL');
  }
});

test('D2 an unknown user gets the same fake salt from every worker', async () => {
  const salts = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const c = await RawClient.connect(port);
    c.send(startupPacket({ user: 'nobody@nowhere.example', database: 'analytics' }));
    await c.message(); // AuthenticationSASL
    c.send(frame('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(32), Buffer.from('n,,n=,r=AAAAAAAAAAAAAAAAAAAAAAAA')])));
    const cont = await c.message();
    c.close();
    salts.add(/s=([^,]+)/.exec(cont!.body.subarray(4).toString())?.[1] ?? '');
  }
  assert.is(salts.size, 1, 'one salt, whichever worker answered');
});

test('the admin endpoint in the primary sums the workers and reports ready', async () => {
  const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  assert.is(ready.status, 200);
  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < 2; i++) { const c = new pg.Client(config('alice@acme.com')); await c.connect(); clients.push(c); }
    assert.equal(new Set(clients.map((c) => (c as unknown as { processID: number }).processID >>> 24)).size, 2, 'one session on each worker');
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    assert.match(text, /^pgveil_connections_current 2$/m, 'the two sessions, summed over the workers');
    assert.match(text, /^pgveil_auth_lockouts_total 1$/m, 'the lockout above, counted once by the primary');
    assert.match(text, /^pgveil_policy_generation 1$/m);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

test('maxClients is shared: each of two workers takes half', async () => {
  await sleep(200); // sessions of earlier tests are gone
  const clients: pg.Client[] = [];
  let refused = 0;
  try {
    for (let i = 0; i < 12; i++) {
      const c = new pg.Client(config('alice@acme.com'));
      c.on('error', () => {});
      const ok = await c.connect().then(() => true, (e: { code?: string }) => { assert.is(e.code, '53300'); return false; });
      if (ok) clients.push(c); else refused++;
    }
    assert.is(clients.length, 10, 'maxClients: 10 in all');
    assert.is(refused, 2);
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

test('a worker that dies is replaced, and the other keeps serving meanwhile', async () => {
  const before = await workerPids();
  assert.is(before.length, 2);
  process.kill(before[0], 'SIGKILL');
  // Until the primary has seen the exit, node:cluster may still hand it a connection.
  for (let i = 0; i < 50 && !stderr.includes('worker exited; starting a new one'); i++) await sleep(20);
  assert.match(stderr, /worker exited; starting a new one/);
  const c = new pg.Client(config('alice@acme.com'));
  await c.connect(); // served by the survivor while the replacement starts
  await c.end();
  let after: number[] = [];
  for (let i = 0; i < 50; i++) {
    after = await workerPids();
    if (after.length === 2 && !after.includes(before[0]) && stderr.split('"msg":"pgveil listening"').length - 1 >= 3) break;
    await sleep(100);
  }
  assert.is(after.length, 2);
  assert.not.ok(after.includes(before[0]));
  await sleep(300);
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const d = new pg.Client(config('alice@acme.com'));
    await d.connect();
    seen.add((d as unknown as { processID: number }).processID >>> 24);
    await d.end();
  }
  assert.equal([...seen].sort(), [1, 2], 'the replacement took the dead worker\'s id');
});

test('a policy change reaches every worker (SIGHUP to the primary, and each worker\'s file watch)', async () => {
  const policyFile = join(h.dir, 'policy.yaml');
  writeFileSync(policyFile, `${readFileSync(policyFile, 'utf8')}    redaction:\n      ssn: { mask: "null" }\n`);
  proxy.kill('SIGHUP');
  let generation = 0;
  for (let i = 0; i < 100 && generation < 2; i++) {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    generation = Number(/^pgveil_policy_generation (\d+)$/m.exec(text)?.[1] ?? 0);
    if (generation < 2) await sleep(100);
  }
  assert.ok(generation >= 2, 'the lowest generation over the workers moved on');
  const seen = new Set<number>();
  for (let i = 0; i < 4; i++) {
    const c = new pg.Client(config('alice@acme.com'));
    await c.connect();
    seen.add((c as unknown as { processID: number }).processID >>> 24);
    assert.equal((await c.query('select ssn from crm.employees')).rows, [{ ssn: null }]);
    await c.end();
  }
  assert.equal([...seen].sort(), [1, 2]);
});

test('SIGTERM ends open sessions and stops the primary and every worker', async () => {
  const c = new pg.Client(config('alice@acme.com'));
  await c.connect();
  const lost = new Promise((r) => c.on('error', r));
  const pids = await workerPids();
  const exited = new Promise<number | null>((r) => proxy.once('exit', (code) => r(code)));
  proxy.kill('SIGTERM');
  assert.is(await exited, 0);
  await Promise.race([lost, sleep(2000)]);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'worker ' + pid + ' still running');
  assert.not.ok(await canConnect(port));
});

test('a worker that cannot listen stops serve with exit code 1', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const takenPort = (taken.address() as net.AddressInfo).port;
  const configFile = h.configFile.replace(/\.yaml$/, '-taken.yaml');
  writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace('listen: { host: 127.0.0.1, port: 0 }', `listen: { host: 127.0.0.1, port: ${takenPort} }`) + '\nworkers: 2\n');
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url)), 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await Promise.race([new Promise<number | null>((r) => child.once('exit', r)), sleep(20_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') child.kill('SIGKILL');
  taken.close();
  assert.is(code, 1, err);
  assert.match(err, /cannot listen on 127\.0\.0\.1:\d+ \(listen\): the port is already in use/);
});

test.run();
