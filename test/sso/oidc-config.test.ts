// sso.oidc in pgveil.yaml: the CA file is resolved beside the config and
// must exist, the claim names default to email/org/groups, and a client
// secret that cannot be opened stops the portal's OIDC pages at start
// (not at the first sign-in).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import { oidcLoginRoutes, oidcRedirectUri } from '../../src/sso/oidc-login.js';
import { noAudit } from '../../src/audit/record.js';
import { silentLogger } from '../../src/observe/log.js';
import { rsaCert } from '../auth/test-certs.js';

const cert = rsaCert('config test');

function configWith(oidc: string, extraFiles: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-oidc-config-'));
  const files: Record<string, string> = {
    'users.yaml': 'organizations: { acme: {} }\nusers: {}\n',
    'policy.yaml': 'defaults: { unlistedRelations: allow }\ntables: {}\n',
    'portal.crt': cert.certPem,
    'portal.key': cert.keyPem,
    'master.key': `${generateMasterKey()}\n`,
    'pgveil.yaml': `tls: { mode: require, cert: portal.crt, key: portal.key }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
secrets: { masterKeyFile: master.key }
portal: { host: 127.0.0.1, port: 0, tls: { cert: portal.crt, key: portal.key }, publicUrl: "https://db.example.com:8443/" }
sso:
  oidc: ${oidc}
`,
    ...extraFiles,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return join(dir, 'pgveil.yaml');
}

test('sso.oidc.ca is resolved beside the config file, and the claims default to email, org and groups', () => {
  const file = configWith('{ issuer: "https://idp.example.com/", clientId: pgveil, clientSecret: s3cret, ca: certs/idp-ca.pem }');
  const dir = join(file, '..');
  mkdirSync(join(dir, 'certs'));
  writeFileSync(join(dir, 'certs', 'idp-ca.pem'), cert.certPem);
  const config = loadConfig(file);
  assert.is(config.sso?.oidc?.ca, join(dir, 'certs', 'idp-ca.pem'));
  assert.equal(config.sso?.oidc?.claims, { user: 'email', org: 'org', groups: 'groups' });
});

test('a missing sso.oidc.ca file is a config error at that key', () => {
  const file = configWith('{ issuer: "https://idp.example.com/", clientId: pgveil, clientSecret: s3cret, ca: missing-ca.pem }');
  try {
    loadConfig(file);
    assert.unreachable('expected a ConfigError');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.ok((err as ConfigError).issues.some((i) => i.path === 'sso.oidc.ca'), JSON.stringify((err as ConfigError).issues));
  }
});

test('the redirect URI to register is the public URL (trailing slash or not) plus /sso/oidc/callback', () => {
  const config = loadConfig(configWith('{ issuer: "https://idp.example.com/", clientId: pgveil, clientSecret: s3cret }'));
  assert.is(oidcRedirectUri(config), 'https://db.example.com:8443/sso/oidc/callback');
});

test('behind a path prefix in publicUrl, the redirect URI and the pending-login cookie carry the prefix the browser sees', async () => {
  const file = configWith('{ issuer: "https://127.0.0.1:9/", clientId: pgveil, clientSecret: s3cret }');
  writeFileSync(file, readFileSync(file, 'utf8').replace('publicUrl: "https://db.example.com:8443/"', 'publicUrl: "https://db.example.com/pgveil/"'));
  const config = loadConfig(file);
  assert.is(oidcRedirectUri(config), 'https://db.example.com/pgveil/sso/oidc/callback');
  const [, callback] = oidcLoginRoutes(config, { onIdentity: async () => ({ status: 200, html: '' }), audit: noAudit, logger: silentLogger });
  const answer = await callback.handle({ method: 'GET', path: '/sso/oidc/callback', params: [], form: new URLSearchParams(), query: new URLSearchParams(), cookies: new Map(), address: '127.0.0.1' });
  assert.is(answer.status, 400);
  assert.match(String(answer.headers?.['set-cookie']), /; Path=\/pgveil\/sso\/oidc;/);
  assert.match(answer.html, /href="\/pgveil\/sso\/oidc\/start"/);
});

test('a client secret sealed with another master key stops the OIDC pages from starting, naming the key but not the value', () => {
  const sealed = seal('the-client-secret', Buffer.from(generateMasterKey(), 'base64'));
  const config = loadConfig(configWith(`{ issuer: "https://idp.example.com/", clientId: pgveil, clientSecret: "${sealed}" }`));
  try {
    oidcLoginRoutes(config, { onIdentity: async () => ({ status: 200, html: '' }), audit: noAudit, logger: silentLogger });
    assert.unreachable('expected the secret not to open');
  } catch (err) {
    const message = (err as Error).message;
    assert.match(message, /sso\.oidc\.clientSecret/);
    assert.not.ok(message.includes(sealed) || message.includes('the-client-secret'));
  }
});

test.run();
