// The SSO password lives in a state file beside users.yaml, so it works on
// every worker of `workers: 2` (the portal, in the primary, writes the file;
// each worker reads it) and after pgveil restarts within its lifetime.
// pgveil serve runs as a child process; the password is issued by the same
// handler the primary's sign-in pages call, run here against the same files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { serveChild, waitFor } from '../helpers/run.js';
import { ssoPolicy, writeSsoConfig, testIssuer, orgsSeen, type TestIssuer } from './sso-fixture.js';

let h: Harness;
let issuer: TestIssuer;
let port: number;
let configFile: string;

test.before(async () => {
  h = await startHarness({ policyYaml: ssoPolicy });
  port = await freePort();
  configFile = writeSsoConfig(h, { listenPort: port, portalPort: await freePort(), audit: 'audit-workers.jsonl', extra: 'workers: 2\n' });
  issuer = await testIssuer(h, configFile, { databasePort: port });
});
test.after(async () => {
  await issuer?.close();
  await h?.close();
});

const orgsSeenAs = (user: string, password: string) => orgsSeen(h, port, user, password);

const audit = () => {
  const file = join(h.dir, 'audit-workers.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};

test('workers: 2 — a password issued after the workers started logs in on both, and again after a restart', async () => {
  let serve = await serveChild(configFile, 'pgveil workers listening');
  try {
    const zed = await issuer.signIn({ user: 'zed@acme.com', org: 'acme' });
    assert.is(zed.status, 200);
    // Consecutive connections go to alternating workers: several in a row reach both.
    for (let i = 0; i < 4; i++) assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], `login ${i + 1}`);
    await waitFor('auth records from two workers', () => {
      const sessions = audit().split('\n').filter((l) => l.includes('"event":"auth"') && l.includes('"method":"sso"') && l.includes('"outcome":"success"'))
        .map((l) => (JSON.parse(l) as { session: string }).session.split('-')[0]);
      return new Set(sessions).size >= 2;
    });
    serve.child.kill('SIGTERM');
    await serve.exited;
    serve = await serveChild(configFile, 'pgveil workers listening');
    assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], 'after the restart');
    assert.equal(await orgsSeenAs('zed@acme.com', zed.password!), ['acme'], 'after the restart, the other worker');
    assert.is((await orgsSeenAs('yan@acme.com', zed.password!) as { code?: string }).code, '28P01', "not another user's");
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

test.run();
