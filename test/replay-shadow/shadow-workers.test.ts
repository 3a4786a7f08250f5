// The shadow policy under `workers: 2`: `pgveil serve` forks two workers,
// each loads the candidate and shadows its own sessions; the primary's
// /metrics sums their differences, SIGHUP reloads the candidate in both, and
// the shadow_difference records of both workers land in the primary's one
// audit file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectClient, startHarness, writeConfig, type Harness } from '../helpers/harness.js';
import { serveChild, sleep } from '../helpers/run.js';
import { freePort } from '../../src/demo/embedded-postgres.js';

const activePolicy = `
tables:
  public.lookup:
    access:
      deny: { orgs: [globex] }
`;
const tighter = `layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  public.lookup:
    access:
      deny: { orgs: [acme, globex] }
`;

let h: Harness;
let serve: ChildProcess;
let port = 0;
let adminPort = 0;

test.before(async () => {
  h = await startHarness({ policyYaml: activePolicy, tlsMode: 'disable' });
  port = await freePort();
  adminPort = await freePort();
  writeFileSync(join(h.dir, 'tighter.yaml'), tighter);
  const configFile = writeConfig(h, [
    `listen: { host: 127.0.0.1, port: ${port} }`, 'workers: 2', `admin: { host: 127.0.0.1, port: ${adminPort} }`,
    'shadow: tighter.yaml', 'audit: { file: logs/audit.jsonl, statements: full, onFailure: block }',
  ]);
  ({ child: serve } = await serveChild(configFile, 'pgveil workers listening'));
});

test.after(async () => {
  if (serve && serve.exitCode === null) {
    const exited = new Promise((r) => serve.once('exit', r));
    serve.kill('SIGKILL');
    await exited;
  }
  await h?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** Polls the primary's /metrics until `name` is `expected` or 30 s pass; returns the last value. */
async function settleMetric(name: string, expected: number): Promise<number> {
  for (let i = 0; ; i++) {
    const value = await metric(name);
    if (value === expected || i >= 300) return value;
    await sleep(100);
  }
}

const newlyRefused = 'pgveil_shadow_differences_total{kind="newly_refused"}';

test('both workers shadow their own sessions; /metrics sums their differences', async () => {
  assert.is(await settleMetric('pgveil_shadow_generation', 1), 1, 'every worker loaded the candidate');
  const clients = await Promise.all(Array.from({ length: 6 }, () => connectClient(h, port, 'alice@acme.com')));
  for (const c of clients) {
    const r = await c.query('SELECT code FROM public.lookup');
    assert.is(r.rowCount, 2, 'the active policy answers');
  }
  assert.is(await settleMetric(newlyRefused, 6), 6);
  await Promise.all(clients.map((c) => c.end()));
});

test('SIGHUP reloads the candidate in every worker', async () => {
  serve.kill('SIGHUP');
  assert.is(await settleMetric('pgveil_shadow_generation', 2), 2, 'the lowest generation over the workers is 2: both reloaded it');
  const c = await connectClient(h, port, 'alice@acme.com');
  await c.query('SELECT code FROM public.lookup');
  await c.end();
  assert.is(await settleMetric(newlyRefused, 7), 7);
});

test('the records of both workers are in the primary\'s one audit file', async () => {
  const exited = new Promise((r) => serve.once('exit', r));
  serve.kill('SIGTERM');
  await exited;
  const lines = readFileSync(join(h.dir, 'logs/audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const shadow = lines.filter((l) => l.event === 'shadow_difference');
  assert.is(shadow.length, 7);
  for (const record of shadow) assert.equal([record.kind, record.text, record.user], ['newly_refused', 'SELECT code FROM public.lookup', 'alice@acme.com']);
  const workers = new Set(shadow.map((l) => String(l.session).split('-')[0]));
  assert.is(workers.size, 2, `sessions of both workers: ${[...workers].join(', ')}`);
});

test.run();
