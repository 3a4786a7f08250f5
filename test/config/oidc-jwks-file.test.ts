// auth.oidc.jwks naming a file: the file is read when the config is loaded,
// so `pgveil check` (and serve) reject one that is not a usable JWKS instead
// of every later token login failing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const config = (jwks: string) => `tls: { mode: require, cert: server.crt, key: server.key }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
auth:
  oidc:
    issuer: https://idp.example.com/
    audience: pgveil
    jwks: ${jwks}
    claims: { user: email, org: org, groups: groups }
`;

const publicJwk = () => ({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' });

/** A config directory whose jwks file holds `jwksText`; returns the config file. */
function configWithJwks(jwksText: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-jwks-config-'));
  const files: Record<string, string> = {
    'pgveil.yaml': config('idp-jwks.json'), 'idp-jwks.json': jwksText, 'server.crt': 'placeholder\n', 'server.key': 'placeholder\n',
    'users.yaml': 'users: {}\n', 'policy.yaml': 'defaults: { unlistedRelations: allow }\ntables: {}\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return join(dir, 'pgveil.yaml');
}

function check(file: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repo, 'bin/pgveil.js'), 'check', '--config', file], { encoding: 'utf8', cwd: repo });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a JWKS file with a public key loads; its path is resolved beside the config', () => {
  const file = configWithJwks(JSON.stringify({ keys: [publicJwk()] }));
  assert.is(loadConfig(file).auth.oidc?.jwks, join(dirname(file), 'idp-jwks.json'));
  const r = check(file);
  assert.is(r.status, 0, r.stderr);
});

const broken: Array<[string, string, string]> = [
  ['not JSON', '{"keys": [', 'not JSON'],
  ['no keys array', '{"kty":"EC"}', 'not a JWKS (expected an object with a "keys" array)'],
  ['only a symmetric key', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', 'has no RSA, EC or OKP public key'],
  ['empty key list', '{"keys":[]}', 'has no RSA, EC or OKP public key'],
];

for (const [what, text, message] of broken) {
  test(`JWKS file that is ${what}: a load error at auth.oidc.jwks, and pgveil check exits 2`, () => {
    const file = configWithJwks(text);
    let issues: ConfigError['issues'] = [];
    try { loadConfig(file); } catch (err) { if (err instanceof ConfigError) issues = err.issues; else throw err; }
    assert.equal(issues.map((i) => `${i.line}:${i.column}: ${i.path}: ${i.message}`), [`9:11: auth.oidc.jwks: ${message}`]);
    const r = check(file);
    assert.is(r.status, 2);
    assert.ok(r.stderr.includes(`${file}:9:11: auth.oidc.jwks: ${message}`), r.stderr);
  });
}

test('a JWKS file that is missing: file not found at auth.oidc.jwks', () => {
  const file = configWithJwks('{}');
  writeFileSync(file, config('nowhere.json'));
  assert.throws(() => loadConfig(file), (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'auth.oidc.jwks' && i.message.startsWith('file not found: ')));
});

test.run();
