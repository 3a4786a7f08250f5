// Under `workers: 2` a TOTP code is accepted once across the workers: the
// primary holds the used steps, so the same code on the other worker fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { startHarness, clientConfig, writeConfig, type Harness } from '../helpers/harness.js';
import { serveChild, waitFor } from '../helpers/run.js';
import { codeAt, newTotpUser, startOfStep, totpUserYaml } from '../helpers/totp-users.js';
import { freePort } from '../../src/demo/embedded-postgres.js';

const ivy = newTotpUser('ivy@acme.com', 'Ivy-pass-0009');
let h: Harness;
let child: ChildProcess;
let port = 0;

test.before(async () => {
  h = await startHarness();
  appendFileSync(join(h.dir, 'users.yaml'), totpUserYaml(h, ivy));
  port = await freePort();
  const config = writeConfig(h, [`listen: { host: 127.0.0.1, port: ${port} }`, 'workers: 2', 'audit: { file: audit-workers.jsonl }']);
  child = (await serveChild(config, 'pgveil workers listening')).child;
});
test.after(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  await h.close();
});

interface AuthRecord { event: string; session?: string; user?: string; outcome?: string; reason?: string }
const authRecords = (): AuthRecord[] => readFileSync(join(h.dir, 'audit-workers.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as AuthRecord).filter((r) => r.event === 'auth' && r.user === ivy.name);
const workerOf = (session: string | undefined) => session?.split('-')[0];

async function login(password: string): Promise<string | undefined> {
  const c = new pg.Client({ ...clientConfig(h, ivy.name), port, password, connectionTimeoutMillis: 10000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  await c.end();
  return undefined;
}

test('a code used on one worker is refused on the other', async () => {
  const at = await startOfStep(15);
  const code = codeAt(ivy.secret, at);
  assert.is(await login(ivy.password + code), undefined, 'the first use logs in');
  // Consecutive connections alternate between the workers; two more tries reach both.
  assert.is(await login(ivy.password + code), '28P01');
  assert.is(await login(ivy.password + code), '28P01');
  await waitFor('three auth records', () => authRecords().length >= 3);
  const [ok, ...replays] = authRecords();
  assert.is(ok.outcome, 'success');
  for (const r of replays) assert.equal([r.outcome, r.reason], ['failure', 'replayed_second_factor']);
  const workers = new Set([ok, ...replays].map((r) => workerOf(r.session)));
  assert.is(workers.size, 2, `both workers answered: ${JSON.stringify([ok, ...replays].map((r) => r.session))}`);
});

test.run();
