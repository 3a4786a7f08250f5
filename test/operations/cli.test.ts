// `pgveil sessions` and `pgveil unlock` as real child processes against a
// running pgveil whose admin.token is sealed with the master key: the table of
// sessions, kill (57P01 to that client), unlock (the locked user gets in), and
// the exit codes: 1 for an unknown session, a refused token or an unreachable
// admin API, 2 for a config without admin.token.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxyHandle } from '../../src/session/server.js';
import { seal } from '../../src/secrets/seal.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { capturingLogger, connectClient, connectError, passwords, startHarness, writeConfig, type Harness } from '../helpers/harness.js';
import { pgveil, waitFor } from '../helpers/run.js';
import { newToken, startProxyWith } from './ops-setup.js';

let h: Harness;
let proxy: ProxyHandle;
let configFile: string;
let adminPort: number;
const token = newToken();

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer', lockout: { maxFailures: 2, windowSeconds: 600, lockSeconds: 600 } });
  const masterKey = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  adminPort = await freePort();
  configFile = writeConfig(h, [`admin: { host: 127.0.0.1, port: ${adminPort}, token: "${seal(token, masterKey)}" }`]);
  proxy = await startProxyWith(configFile, capturingLogger().logger);
});

test.after(async () => {
  await proxy?.close();
  await h?.close();
});

test('pgveil sessions prints a table of the open sessions', async () => {
  const alice = await connectClient(h, proxy.port, 'alice@acme.com');
  const bob = await connectClient(h, proxy.port, 'bob@globex.com');
  await alice.query('select 1');
  await bob.query('begin');
  const r = await pgveil(['sessions', '--config', configFile]);
  assert.is(r.status, 0, r.stderr);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  assert.equal(header.split(/\s+/), ['id', 'user', 'org', 'address', 'since', 'state', 'statements']);
  assert.is(rows.length, 2);
  const aliceRow = rows.find((l) => l.includes('alice@acme.com'))!;
  assert.match(aliceRow, /^0-[0-9a-z]+\s+alice@acme\.com\s+acme\s+127\.0\.0\.1:\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+idle\s+1$/);
  assert.match(rows.find((l) => l.includes('bob@globex.com'))!, /\sglobex\s.*\sidle in transaction\s+1$/);
  const json = await pgveil(['sessions', '--config', configFile, '--json']);
  assert.is(json.status, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as Array<{ user: string }>).map((s) => s.user).sort(), ['alice@acme.com', 'bob@globex.com']);
  await Promise.all([alice.end(), bob.end()]);
});

test('pgveil sessions kill <id> ends that session with 57P01; an unknown id exits 1', async () => {
  const victim = await connectClient(h, proxy.port, 'carol@acme.com');
  const list = JSON.parse((await pgveil(['sessions', '--config', configFile, '--json'])).stdout) as Array<{ id: string; user: string }>;
  const id = list.find((s) => s.user === 'carol@acme.com')!.id;
  const r = await pgveil(['sessions', '--config', configFile, 'kill', id]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`terminated session ${id}`));
  await waitFor('the client to see the termination', () => victim.lastError !== undefined);
  assert.is(victim.lastError!.code, '57P01');
  const again = await pgveil(['sessions', '--config', configFile, 'kill', id]);
  assert.is(again.status, 1);
  assert.match(again.stderr, /no open session/);
});

test('pgveil unlock lets a locked-out user log in again', async () => {
  for (const pw of ['wrong-password-1', 'wrong-password-2']) {
    assert.is((await connectError(h, proxy.port, 'bob@globex.com', { password: pw }))?.code, '28P01');
  }
  assert.is((await connectError(h, proxy.port, 'bob@globex.com'))?.code, '28P01', 'bob is locked');
  const r = await pgveil(['unlock', '--config', configFile, 'bob@globex.com']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /unlocked bob@globex\.com/);
  assert.is(await connectError(h, proxy.port, 'bob@globex.com', { password: passwords['bob@globex.com'] }), undefined);
  const again = await pgveil(['unlock', '--config', configFile, 'bob@globex.com']);
  assert.is(again.status, 0);
  assert.match(again.stdout, /was not locked/);
});

test('exit 2 without admin.token (saying so) and for bad usage; exit 1 for a refused token and an unreachable admin API', async () => {
  const noToken = writeConfig(h, [`admin: { host: 127.0.0.1, port: ${adminPort} }`]);
  const r1 = await pgveil(['sessions', '--config', noToken]);
  assert.is(r1.status, 2);
  assert.match(r1.stderr, /sets no admin\.token/);
  const r2 = await pgveil(['unlock', '--config', noToken, 'bob@globex.com']);
  assert.is(r2.status, 2);
  assert.match(r2.stderr, /sets no admin\.token/);
  assert.is((await pgveil(['unlock', '--config', configFile])).status, 2);
  assert.is((await pgveil(['sessions', '--config', configFile, 'kill'])).status, 2);
  assert.is((await pgveil(['sessions', '--config', configFile, 'list'])).status, 2);
  const short = await pgveil(['sessions', '--config', writeConfig(h, [`admin: { host: 127.0.0.1, port: ${adminPort}, token: "short" }`])]);
  assert.is(short.status, 2);
  assert.match(short.stderr, /too short/);

  const wrong = await pgveil(['sessions', '--config', writeConfig(h, [`admin: { host: 127.0.0.1, port: ${adminPort}, token: "${newToken()}" }`])]);
  assert.is(wrong.status, 1);
  assert.match(wrong.stderr, /refused the token/);
  const elsewhere = await pgveil(['unlock', '--config', writeConfig(h, [`admin: { host: 127.0.0.1, port: ${await freePort()}, token: "${token}" }`]), 'bob@globex.com']);
  assert.is(elsewhere.status, 1);
  assert.match(elsewhere.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+/);
  for (const r of [wrong, elsewhere]) assert.not.ok(r.stderr.includes(token), 'the token is printed');
});

test.run();
