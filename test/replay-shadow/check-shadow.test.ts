// `pgveil check` checks the shadow policy file as `serve` does at startup
// (without upstream): a candidate that does not load is reported as
// file:line:col with exit 2, so check and serve agree. No server needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgveil } from '../helpers/run.js';

function configDir(shadow: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-check-shadow-'));
  writeFileSync(join(dir, 'pgveil.yaml'), `tls: { mode: disable }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
shadow: policy-next.yaml
`);
  writeFileSync(join(dir, 'users.yaml'), 'organizations:\n  acme: {}\nusers: {}\n');
  writeFileSync(join(dir, 'policy.yaml'), 'defaults: { unlistedRelations: allow }\ntables: {}\n');
  writeFileSync(join(dir, 'policy-next.yaml'), shadow);
  return dir;
}

const check = (dir: string) => pgveil(['check', '--config', join(dir, 'pgveil.yaml')], { timeoutMs: 20000 });

test('a valid shadow policy is listed with the other files, exit 0', async () => {
  const dir = configDir('defaults: { unlistedRelations: deny }\ntables:\n  public.orders:\n    access: { allow: { orgs: [acme] } }\n');
  const r = await check(dir);
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), ['pgveil.yaml', 'users.yaml', 'policy.yaml', 'policy-next.yaml'].map((f) => `ok: ${join(dir, f)}`));
});

test('a shadow policy that does not load: its problems as file:line:col, exit 2', async () => {
  const dir = configDir('defaults: { unlistedRelations: allow }\ntables:\n  public.orders:\n    access: { allow: { orgs: [nowhere] } }\n    redaction:\n      ssn: { mask: sideways }\n');
  const r = await check(dir);
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stderr, new RegExp(`${join(dir, 'policy-next.yaml').replace(/[.]/g, '\\.')}:4:\\d+: .*nowhere`));
  assert.match(r.stderr, /policy-next\.yaml:6:\d+: .*sideways/);
  assert.match(r.stdout, /^ok: .*policy\.yaml$/m, 'the active policy itself is fine');
});

test('a shadow policy without defaults (a truncated file) is refused like the policy', async () => {
  const r = await check(configDir(''));
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stderr, /policy-next\.yaml:1:1: .*(empty|unlistedRelations)/);
});

test.run();
