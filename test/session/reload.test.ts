// Users and policy are reloaded on change: an invalid file is rejected and
// the old one stays; disabling a user ends their open sessions (C3).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => { h = await startHarness(); });
test.after(async () => { await h?.close(); });

async function connect(user: string): Promise<pg.Client> {
  const c = new pg.Client(clientConfig(h, user));
  c.on('error', () => {});
  await c.connect();
  return c;
}

test('E4 an invalid users.yaml is rejected, the old users stay, sessions go on', async () => {
  const file = join(h.dir, 'users.yaml');
  const good = readFileSync(file, 'utf8');
  const c = await connect('alice@acme.com');
  writeFileSync(file, good + '\n  broken: [\n');
  assert.is(await h.proxy.reload(), false);
  assert.is((await c.query('select 1 as ok')).rows[0].ok, 1);
  const again = await connect('bob@globex.com');
  await again.end();
  writeFileSync(file, good);
  assert.is(await h.proxy.reload(), true);
  await c.end();
});

test('C3 disabling a user ends their open sessions and refuses new logins with 28P01', async () => {
  const file = join(h.dir, 'users.yaml');
  const good = readFileSync(file, 'utf8');
  const bob = await connect('bob@globex.com');
  const alice = await connect('alice@acme.com');
  const ended = new Promise<{ code?: string }>((resolve) => bob.on('error', (e) => resolve(e as { code?: string })));
  writeFileSync(file, good.replace(/(  bob@globex.com:\n)/, '$1    disabled: true\n'));
  assert.is(await h.proxy.reload(), true);
  const err = await ended;
  assert.is(err.code, '57P01');
  assert.is((await alice.query('select 1 as ok')).rows[0].ok, 1, 'other users unaffected');
  const refused = await connect('bob@globex.com').then(() => undefined, (e) => e as { code?: string });
  assert.is(refused?.code, '28P01');
  writeFileSync(file, good);
  assert.is(await h.proxy.reload(), true);
  await alice.end();
});

test('a changed policy file is picked up by the watcher without SIGHUP', async () => {
  const file = join(h.dir, 'policy.yaml');
  const c = await connect('alice@acme.com');
  assert.is((await c.query('select count(*)::int as n from public.lookup')).rows[0].n, 2);
  const before = (await h.proxy.metrics.policyGeneration.get()).values[0].value;
  writeFileSync(file, readFileSync(file, 'utf8') + '  public.lookup:\n    access:\n      deny: { orgs: [acme] }\n');
  const deadline = Date.now() + 5000;
  let refused: { code?: string } | undefined;
  while (Date.now() < deadline && !refused) {
    await new Promise((r) => setTimeout(r, 100));
    refused = await c.query('select count(*) from public.lookup').then(() => undefined, (e) => e as { code?: string });
  }
  assert.is(refused?.code, '42501', 'public.lookup became denied to acme');
  assert.ok((await h.proxy.metrics.policyGeneration.get()).values[0].value > before);
  await c.end();
});

test.run();
