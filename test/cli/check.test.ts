// `pgveil check` as a user runs it: a child process, exit codes, output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function pgveil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repo, 'bin/pgveil.js'), ...args], { encoding: 'utf8', cwd: repo });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configDir(config: string, users = 'users: {}\n', policy = 'defaults: { unlistedRelations: allow }\ntables: {}\n'): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-check-'));
  writeFileSync(join(dir, 'pgveil.yaml'), config);
  writeFileSync(join(dir, 'users.yaml'), users);
  writeFileSync(join(dir, 'policy.yaml'), policy);
  return dir;
}

const good = `tls: { mode: disable }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
`;

test('a valid config set: ok lines, exit 0', () => {
  const dir = configDir(good);
  const r = pgveil('check', '--config', join(dir, 'pgveil.yaml'));
  assert.is(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), ['pgveil.yaml', 'users.yaml', 'policy.yaml'].map((f) => `ok: ${join(dir, f)}`));
  assert.is(r.stderr, '');
});

test('an invalid config set: every problem as file:line:col: path: message, exit 2', () => {
  const dir = configDir(good.replace('mode: disable', 'mode: off'), 'users:\n  bob:\n    org: nowhere\n');
  const r = pgveil('check', '--config', join(dir, 'pgveil.yaml'));
  assert.is(r.status, 2);
  assert.is(r.stdout, `ok: ${join(dir, 'policy.yaml')}\n`);
  assert.equal(r.stderr.trim().split('\n'), [
    `${join(dir, 'pgveil.yaml')}:1:14: tls.mode: expected one of "require", "prefer", "disable"; got "off"`,
    `${join(dir, 'users.yaml')}:3:10: users.bob.org: unknown organization "nowhere" (no organizations are defined)`,
    '2 problems in 2 files',
  ]);
});

test('paths under the working directory are shown relative to it', () => {
  const r = pgveil('check', '--config', 'config/pgveil.yaml');
  assert.is(r.status, 2);
  assert.ok(r.stderr.includes('config/pgveil.yaml:16:9: tls.cert: file not found: config/certs/server.crt'), r.stderr);
  assert.ok(r.stdout.includes('ok: config/users.yaml'), r.stdout);
});

test('E4 the shipped sample policy passes check (only the deployment files it names are missing)', () => {
  const r = pgveil('check', '--config', 'config/pgveil.yaml');
  assert.ok(r.stdout.includes('ok: config/policy.yaml'), r.stdout + r.stderr);
  assert.not.match(r.stderr, /policy\.yaml/);
});

const badPolicy = `defaults: { unlistedRelations: allow, writes: deny }
tables:
  public.employees:
    ownership:
      - filter: "org_id = \${user.org}) OR (true"
      - filter: "org_id = \${user.org}; drop table x"
      - filter: "org_id = = \${user.org}"
    redaction:
      badge: { mask: hash }
      notes: { mask: custom, expr: "left(\${column}, )" }
`;

test('E4 check refuses what serve refuses: escaping filters, a bad expression, hash without scrambleKey (exit 2)', () => {
  const dir = configDir(good, 'users: {}\n', badPolicy);
  const r = pgveil('check', '--config', join(dir, 'pgveil.yaml'));
  assert.is(r.status, 2);
  const p = join(dir, 'policy.yaml');
  const t = 'tables."public.employees"';
  assert.equal(r.stderr.trim().split('\n'), [
    `${p}:5:17: ${t}.ownership[0].filter: unbalanced ")" at character 21`,
    `${p}:5:17: ${t}.ownership[0].filter: 1 unclosed "("`,
    `${p}:6:17: ${t}.ownership[1].filter: ";" at character 21: a filter or mask is one expression`,
    `${p}:7:17: ${t}.ownership[2].filter: not a valid SQL expression: syntax error at or near "="`,
    `${p}:9:14: ${t}.redaction.badge: mask hash needs secrets.scrambleKey (the key the pgveil helper schema is installed with)`,
    `${p}:10:36: ${t}.redaction.notes.expr: not a valid SQL expression: syntax error at or near ")"`,
    '6 problems in 1 file',
  ]);
  // serve runs the same checks with the same messages and exit code, before it touches the upstream.
  const s = pgveil('serve', '--config', join(dir, 'pgveil.yaml'));
  assert.is(s.status, 2);
  assert.equal(s.stderr.trim().split('\n'), r.stderr.trim().split('\n').slice(0, -1));
});

test('E4 an empty policy file, and one that does not state defaults.unlistedRelations, are refused', () => {
  for (const [policy, message] of [
    ['', 'the policy file is empty (truncated while being written?); it must at least state defaults.unlistedRelations'],
    ['layers: { access: true }\ntables: {}\n', 'defaults.unlistedRelations must be stated (allow or deny): a policy that does not say it may be a truncated one'],
    ['defaults: { writes: deny }\n', 'defaults: defaults.unlistedRelations must be stated (allow or deny): a policy that does not say it may be a truncated one'],
    ['- public.employees\n', 'expected a mapping, got a list'],
  ]) {
    const dir = configDir(good, 'users: {}\n', policy);
    const r = pgveil('check', '--config', join(dir, 'pgveil.yaml'));
    assert.is(r.status, 2, policy);
    assert.ok(r.stderr.includes(`policy.yaml:1:1: ${message}\n`), r.stderr);
  }
});

test('--live with no upstream listening: exit 2, says it could not connect and checked nothing upstream', () => {
  // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
  const dir = configDir(good.replace('host: 127.0.0.1,', 'host: 127.0.0.1, port: 1,'));
  const r = pgveil('check', '--config', join(dir, 'pgveil.yaml'), '--live');
  assert.is(r.status, 2);
  assert.match(r.stderr, /^pgveil check --live: cannot connect to the upstream 127\.0\.0\.1:1 database analytics as svc: .*; nothing was checked upstream$/m);
});

test('--format: json needs --live, and only text or json are known (exit 2)', () => {
  const dir = configDir(good);
  const json = pgveil('check', '--config', join(dir, 'pgveil.yaml'), '--format', 'json');
  assert.is(json.status, 2);
  assert.match(json.stderr, /--format json needs --live/);
  const other = pgveil('check', '--config', join(dir, 'pgveil.yaml'), '--live', '--format', 'yaml');
  assert.is(other.status, 2);
  assert.match(other.stderr, /--format must be text or json, not "yaml"/);
});

test('usage errors exit 2', () => {
  assert.is(pgveil('check').status, 2);
  assert.is(pgveil('check', '--config', 'x.yaml', 'extra').status, 2);
});

test('a ConfigError thrown by any command exits 2 with the issues', () => {
  // serve loads the config first; a missing file never gets as far as listening.
  const r = pgveil('serve', '--config', join(tmpdir(), 'pgveil-nowhere', 'pgveil.yaml'));
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /pgveil\.yaml:1:1: file not found/);
});

test.run();
