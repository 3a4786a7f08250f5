// OIDC access tokens as passwords: tokens issued by a real OpenID provider
// (oidc-provider, JWKS over https with a test certificate) are accepted and
// give the identity the configured claims name; every forged, stale or
// misdirected token is refused with a reason that holds no token material.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, UnsecuredJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importPKCS8, type JWTPayload } from 'jose';
import { OidcTokenError, OidcTokenVerifier, type OidcConfig } from '../../src/auth/oidc-token.js';
import { startOidcProvider, testAudience, type TestOidcProvider } from '../helpers/oidc-provider.js';

let idp: TestOidcProvider;
test.before(async () => { idp = await startOidcProvider(); });
test.after(async () => { await idp.close(); });

const claims = { user: 'email', org: 'org', groups: 'groups' };
const person = { email: 'dana@acme.com', org: 'acme', groups: ['analysts', 'hr'] };
const config = (over: Partial<OidcConfig> = {}): OidcConfig => ({ issuer: idp.issuer, audience: testAudience, jwks: idp.jwksUrl, claims, ...over });
/** Trusts the provider's certificate; no cooldown, so an unknown kid always causes a refetch. */
const verifier = (over: Partial<OidcConfig> = {}) => OidcTokenVerifier.create(config(over), { ca: idp.ca, cooldownMs: 0 });

const now = () => Math.floor(Date.now() / 1000);
/** What the provider puts in its own tokens, for tokens built by the tests. */
const valid = (): JWTPayload => ({ ...person, iss: idp.issuer, aud: testAudience, iat: now(), exp: now() + 600, sub: 'bi-tool' });

async function refusal(token: string, v = verifier()): Promise<string> {
  try {
    await v.verify(token);
  } catch (err) {
    assert.instance(err, OidcTokenError);
    const e = err as OidcTokenError;
    // Nothing of the token or its claims in what may be logged.
    for (const secret of [token, token.split('.')[1] ?? token, 'dana@acme.com', 'analysts']) {
      if (secret) assert.not.ok(e.message.includes(secret) || e.reason.includes(secret), 'the error leaks token material');
    }
    return e.reason;
  }
  assert.unreachable('the token was accepted');
  return '';
}

test('a token issued by the provider gives user, org and groups from the named claims and its expiry in ms', async () => {
  const token = await idp.issueToken(person);
  const identity = await verifier().verify(token);
  assert.equal({ user: identity.user, org: identity.org, groups: identity.groups }, { user: person.email, org: person.org, groups: person.groups });
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp as number;
  assert.is(identity.expiresAt, exp * 1000);
  assert.ok(identity.expiresAt > Date.now());
});

test('groups: one string is one group, no groups claim is no groups', async () => {
  assert.equal((await verifier().verify(await idp.issueToken({ ...person, groups: 'hr' }))).groups, ['hr']);
  assert.equal((await verifier().verify(await idp.issueToken({ email: 'dana@acme.com', org: 'acme' }))).groups, []);
});

test('claim names: a dotted path reaches nested claims, a top-level name with dots is taken as it is', async () => {
  const token = await idp.issueToken({ preferred_username: 'dana', tenant: { id: 'acme' }, 'https://acme.com/groups': ['eu'], realm_access: { roles: ['x'] } });
  const id = await verifier({ claims: { user: 'preferred_username', org: 'tenant.id', groups: 'https://acme.com/groups' } }).verify(token);
  assert.equal({ user: id.user, org: id.org, groups: id.groups }, { user: 'dana', org: 'acme', groups: ['eu'] });
  assert.equal((await verifier({ claims: { user: 'preferred_username', org: 'tenant.id', groups: 'realm_access.roles' } }).verify(token)).groups, ['x']);
});

test('aud as an array is accepted when it contains the audience', async () => {
  assert.is((await verifier().verify(await idp.signToken({ ...valid(), aud: ['other-api', testAudience] }))).user, 'dana@acme.com');
});

test('ES256, PS384 and EdDSA keys from a JWKS file verify too (not only RS256)', async () => {
  const signers = await Promise.all((['ES256', 'PS384', 'EdDSA'] as const).map(async (alg) => ({ alg, ...(await generateKeyPair(alg, { extractable: true })) })));
  const jwks = { keys: await Promise.all(signers.map(async (k) => ({ ...(await exportJWK(k.publicKey)), kid: `k-${k.alg}`, alg: k.alg }))) };
  const file = join(mkdtempSync(join(tmpdir(), 'pgveil-jwks-')), 'jwks.json');
  writeFileSync(file, JSON.stringify(jwks));
  const v = OidcTokenVerifier.create(config({ jwks: file }));
  for (const k of signers) {
    const token = await new SignJWT(valid()).setProtectedHeader({ alg: k.alg, kid: `k-${k.alg}` }).sign(k.privateKey);
    assert.is((await v.verify(token)).org, 'acme', k.alg);
  }
});

test('expired token: refused (expired)', async () => {
  assert.is(await refusal(await idp.signToken({ ...valid(), iat: now() - 7200, exp: now() - 3600 })), 'expired');
});

test('token that is not yet valid (nbf in the future): refused (not_yet_valid)', async () => {
  assert.is(await refusal(await idp.signToken({ ...valid(), nbf: now() + 3600 })), 'not_yet_valid');
});

test('token without exp: refused (missing_exp); exp that is not a number: refused (bad_claims)', async () => {
  const { exp: _exp, ...noExp } = valid();
  assert.is(await refusal(await idp.signToken(noExp)), 'missing_exp');
  assert.is(await refusal(await idp.signToken({ ...noExp, exp: 'tomorrow' } as unknown as JWTPayload)), 'bad_claims');
});

test('token for another audience: refused (wrong_audience), also by the provider itself', async () => {
  assert.is(await refusal(await idp.signToken({ ...valid(), aud: 'other-api' })), 'wrong_audience');
  assert.is(await refusal(await idp.issueToken(person), verifier({ audience: 'another-pgveil' })), 'wrong_audience');
});

test('token from another issuer: refused (wrong_issuer)', async () => {
  assert.is(await refusal(await idp.signToken({ ...valid(), iss: 'https://evil.example.com' })), 'wrong_issuer');
  assert.is(await refusal(await idp.issueToken(person), verifier({ issuer: 'https://idp.example.com/' })), 'wrong_issuer');
});

test('unsigned token (alg none): refused (algorithm_not_allowed)', async () => {
  const token = new UnsecuredJWT(valid()).encode();
  assert.is(await refusal(token), 'algorithm_not_allowed');
});

test('token re-signed with another key under the provider\'s kid: refused (bad_signature)', async () => {
  const genuine = await idp.issueToken(person);
  const { kid } = decodeProtectedHeader(genuine);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256');
  const forged = await new SignJWT(valid()).setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' }).sign(other);
  assert.is(await refusal(forged), 'bad_signature');
  // The genuine signature on other claims fails too.
  const [h, , s] = genuine.split('.');
  assert.is(await refusal(`${h}.${Buffer.from(JSON.stringify({ ...valid(), groups: ['admins'] })).toString('base64url')}.${s}`), 'bad_signature');
});

test('HS256 token whose secret is the provider\'s public key: refused (algorithm_not_allowed)', async () => {
  const jwk = idp.publicJwks().keys[0];
  const { createPublicKey } = await import('node:crypto');
  const pem = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(jwk))]) {
    const token = await new SignJWT(valid()).setProtectedHeader({ alg: 'HS256', kid: jwk.kid }).sign(secret);
    assert.is(await refusal(token), 'algorithm_not_allowed');
  }
});

test('token signed under a kid the JWKS URL does not have, even after a refetch: refused (unknown_key)', async () => {
  const v = verifier();
  await v.verify(await idp.issueToken(person)); // keys cached
  const before = idp.jwksFetches();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stranger = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256');
  const token = await new SignJWT(valid()).setProtectedHeader({ alg: 'RS256', kid: 'not-a-provider-key' }).sign(stranger);
  assert.is(await refusal(token, v), 'unknown_key');
  assert.ok(idp.jwksFetches() > before, 'the unknown kid made the verifier fetch the JWKS again');
});

test('token without the user claim or the org claim: refused (missing_user_claim, missing_org_claim)', async () => {
  assert.is(await refusal(await idp.issueToken({ org: 'acme', groups: ['hr'] })), 'missing_user_claim');
  assert.is(await refusal(await idp.issueToken({ email: '', org: 'acme' })), 'missing_user_claim');
  assert.is(await refusal(await idp.issueToken({ email: ['dana@acme.com'], org: 'acme' })), 'missing_user_claim');
  assert.is(await refusal(await idp.issueToken({ email: 'dana@acme.com', groups: ['hr'] })), 'missing_org_claim');
});

test('groups claim of the wrong type (number, object, array with a non-string): refused (bad_groups_claim)', async () => {
  for (const groups of [7, { hr: true }, ['hr', 1], [['hr']], null]) {
    assert.is(await refusal(await idp.issueToken({ ...person, groups })), 'bad_groups_claim', JSON.stringify(groups));
  }
});

test('garbage and oversized tokens: refused (malformed)', async () => {
  for (const token of ['', 'hunter2', 'a.b', 'a.b.c', `${'x'.repeat(20_000)}.e30.x`]) assert.is(await refusal(token), 'malformed');
});

test('JWKS URL whose certificate is not trusted: refused (jwks_unavailable), nothing accepted', async () => {
  const untrusting = OidcTokenVerifier.create(config());
  assert.is(await refusal(await idp.issueToken(person), untrusting), 'jwks_unavailable');
});

test('a key rotated at the provider (new kid) is picked up from the https JWKS without a new verifier', async () => {
  const v = verifier();
  const oldToken = await idp.issueToken(person);
  await v.verify(oldToken);
  const kid = await idp.rotateKey();
  const newToken = await idp.issueToken(person);
  assert.is(decodeProtectedHeader(newToken).kid, kid, 'the provider signs with the new key');
  assert.is((await v.verify(newToken)).user, 'dana@acme.com');
  assert.is((await v.verify(oldToken)).user, 'dana@acme.com', 'the old key is still published and trusted');
});

test('a JWKS file verifies the provider\'s tokens and is read once (a later key is unknown)', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'pgveil-jwks-')), 'idp-jwks.json');
  writeFileSync(file, JSON.stringify(idp.publicJwks()));
  const v = OidcTokenVerifier.create(config({ jwks: file }));
  assert.equal((await v.verify(await idp.issueToken(person))).groups, person.groups);
  await idp.rotateKey();
  assert.is(await refusal(await idp.issueToken(person), v), 'unknown_key');
  assert.is(await refusal(await idp.signToken({ ...valid(), aud: 'x' }), OidcTokenVerifier.create(config({ jwks: file }))), 'unknown_key');
});

test('a JWKS file that is not usable: create throws and names the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-jwks-'));
  const cases: Array<[string, RegExp]> = [['{"keys": [', /not JSON/], ['{}', /"keys" array/], ['{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', /no RSA, EC or OKP/]];
  for (const [text, want] of cases) {
    const file = join(dir, 'jwks.json');
    writeFileSync(file, text);
    assert.throws(() => OidcTokenVerifier.create(config({ jwks: file })), want);
  }
});

test('NODE_EXTRA_CA_CERTS makes a private CA trusted for the JWKS URL without any option', async () => {
  const caFile = join(mkdtempSync(join(tmpdir(), 'pgveil-ca-')), 'ca.pem');
  writeFileSync(caFile, idp.ca);
  const token = await idp.issueToken(person);
  const module = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/auth/oidc-token.js');
  const script = `const { OidcTokenVerifier } = await import(process.env.MOD);
const v = OidcTokenVerifier.create(JSON.parse(process.env.CFG));
try { console.log((await v.verify(process.env.TOKEN)).user); } catch (e) { console.log(e.reason); }`;
  const run = (extra: Record<string, string>) => new Promise<string>((done, fail) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH, MOD: module, CFG: JSON.stringify(config()), TOKEN: token, ...extra } },
      (err, stdout) => (err ? fail(err) : done(stdout.trim())));
  });
  assert.is(await run({ NODE_EXTRA_CA_CERTS: caFile }), 'dana@acme.com');
  assert.is(await run({}), 'jwks_unavailable');
});

test.run();
