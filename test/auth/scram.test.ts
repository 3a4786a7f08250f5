// SCRAM-SHA-256(-PLUS): verifiers, SASLprep, the server and client
// exchanges against each other (pure, no sockets), and interop both ways
// with real implementations: a real PostgreSQL (its verifiers, its server
// exchange, its channel binding hash) against our client exchange, and real
// clients (libpq's psql, node-postgres) against pgveil itself, started by
// the harness in front of that same PostgreSQL. What no real client sends
// (a "y" flag over TLS, binding data for another certificate) is sent to
// pgveil by a raw TLS client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PgError } from '../../src/errors.js';
import { saslprep } from '../../src/auth/saslprep.js';
import { endPointDigest, supportsChannelBinding, tlsServerEndPointHash } from '../../src/auth/channel-binding.js';
import {
  createVerifier, fakeVerifier, formatVerifier, parseVerifier, verifierMatches, type ScramVerifier,
} from '../../src/auth/scram-verifier.js';
import { scramMechanisms, ScramServerExchange, SCRAM_SHA_256, SCRAM_SHA_256_PLUS } from '../../src/auth/scram-server.js';
import { md5PasswordMessage, ScramClientExchange } from '../../src/auth/scram-client.js';
import { hasOpenssl, opensslCert, rsaCert, type TestCert } from './test-certs.js';
import { rawLogin } from './raw-pg-login.js';
import { passwords, postgresTlsSettings, startHarness, type Harness } from '../helpers/harness.js';
import { RawClient, startupPacket } from '../helpers/raw-client.js';
import { errorField, RawTlsClient } from '../helpers/raw-tls-client.js';
import { psql } from '../helpers/run.js';

const certA = rsaCert('server-a');
const certB = rsaCert('server-b');

// ---------------------------------------------------------------- verifiers

test('createVerifier / parseVerifier / formatVerifier round trip', () => {
  const text = createVerifier('correct horse');
  const v = parseVerifier(text);
  assert.is(v.iterations, 4096);
  assert.is(v.salt.length, 16);
  assert.is(v.storedKey.length, 32);
  assert.is(v.serverKey.length, 32);
  assert.is(formatVerifier(v), text);
  assert.ok(verifierMatches(text, 'correct horse'));
  assert.not.ok(verifierMatches(text, 'correct horsE'));
  assert.not.ok(verifierMatches('garbage', 'correct horse'));
  assert.is.not(createVerifier('correct horse'), text, 'a fresh random salt each time');
  const salt = Buffer.alloc(16, 7);
  assert.is(createVerifier('x', { salt, iterations: 5000 }), createVerifier('x', { salt, iterations: 5000 }));
  assert.ok(createVerifier('x', { iterations: 5000 }).startsWith('SCRAM-SHA-256$5000:'));
});

test('parseVerifier rejects malformed text without echoing it', () => {
  const good = createVerifier('pw');
  const [head, keys] = good.split('$').slice(1);
  const bad = [
    '', 'md5abc', good.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'), `SCRAM-SHA-256$0:${head.split(':')[1]}$${keys}`,
    `SCRAM-SHA-256$x:${head.split(':')[1]}$${keys}`, good + ':', good.replace(/:[^$]+\$/, ':!!!!$'),
    `SCRAM-SHA-256$${head}$${keys.split(':')[0]}:AAAA`, `SCRAM-SHA-256$4096:$${keys}`,
  ];
  for (const text of bad) {
    try {
      parseVerifier(text);
      assert.unreachable(`accepted ${text}`);
    } catch (err) {
      assert.instance(err, Error);
      assert.not.instance(err, PgError);
      if (text.length > 8) assert.not.ok((err as Error).message.includes(text), 'message must not contain the verifier');
    }
  }
});

test('SASLprep follows PostgreSQL: ASCII as is, mapping, NFKC, raw fallback when prohibited', () => {
  assert.is(saslprep('plain ASCII \u0001 stays'), 'plain ASCII \u0001 stays');
  assert.is(saslprep('a\u00A0b\u00ADc\u20AC'), 'a bc\u20AC', 'NBSP → space, soft hyphen dropped');
  assert.is(saslprep('\uFF50\u00E4ss'), 'p\u00E4ss', 'fullwidth p → p (NFKC)');
  assert.is(saslprep('pa\u0308ss'), 'p\u00E4ss', 'decomposed → composed (NFKC)');
  assert.is(saslprep('\u2163x'), 'IVx', 'roman numeral four → IV');
  assert.is(saslprep('x\uE000y'), null, 'private use is prohibited');
  assert.is(saslprep('\u00E9\u0000'), null, 'control characters are prohibited outside pure ASCII');
  assert.is(saslprep('\u{1F642}pw'), null, 'unassigned in Unicode 3.2 is prohibited');
  assert.is(saslprep('\u05E9alom'), null, 'RandALCat mixed with LCat is prohibited');
  assert.is(saslprep('\u05E9\u05DC\u05D5\u05DD'), '\u05E9\u05DC\u05D5\u05DD', 'RTL only is fine');
  assert.is(saslprep('\u00AD'), null, 'empty after mapping');
  assert.is(saslprep('\uD800x\u00E9'), null, 'lone surrogate → raw bytes');
  // The verifier follows: equivalent spellings give the same keys.
  const salt = Buffer.alloc(16, 1);
  assert.is(createVerifier('pa\u0308ss', { salt }), createVerifier('p\u00E4ss', { salt }));
  assert.ok(verifierMatches(createVerifier('\uFF50\uFF41\uFF53\uFF53'), 'pass'));
  assert.is.not(createVerifier('x\uE000y', { salt }), createVerifier('xy', { salt }));
});

test('fakeVerifier: deterministic per user and secret, never authenticates', () => {
  const secret = Buffer.alloc(32, 9);
  const a1 = fakeVerifier('nobody@x', secret);
  const a2 = fakeVerifier('nobody@x', secret);
  assert.equal(a1.salt, a2.salt);
  assert.equal(a1.storedKey, a2.storedKey);
  assert.is(a1.salt.length, 16);
  assert.is(a1.iterations, 4096);
  assert.not.equal(fakeVerifier('other@x', secret).salt, a1.salt);
  assert.not.equal(fakeVerifier('nobody@x', Buffer.alloc(32, 8)).salt, a1.salt);
  // Even a client that somehow holds the fake keys' password cannot pass:
  // run the exchange with a real verifier copied into the fake's slots.
  const real = parseVerifier(createVerifier('guess'));
  const fake = fakeVerifier('ghost', secret);
  Object.assign(fake, real);
  const r = runExchange({ user: 'ghost', verifier: fake }, 'guess');
  assert.is(r.error?.code, '28P01');
  assert.is(r.error?.message, 'password authentication failed for user "ghost"');
});

// ---------------------------------------------------------------- channel binding

test('tls-server-end-point digest: MD5/SHA-1 become SHA-256, others kept', () => {
  const require = createRequire(import.meta.url);
  const { signatureAlgorithmHashFromCertificate } = require('pg/lib/crypto/cert-signatures.js') as {
    signatureAlgorithmHashFromCertificate(der: Buffer): string;
  };
  const norm = (h: string) => {
    const n = h.toLowerCase().replace('-', '');
    return n === 'md5' || n === 'sha1' ? 'sha256' : n;
  };
  const cases: Array<[TestCert, string]> = [
    [rsaCert('md5', 'md5'), 'sha256'], [rsaCert('sha1', 'sha1'), 'sha256'], [certA, 'sha256'],
    [rsaCert('384', 'sha384'), 'sha384'], [rsaCert('512', 'sha512'), 'sha512'],
  ];
  if (hasOpenssl()) {
    cases.push(
      [opensslCert(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384']), 'sha384'],
      [opensslCert(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256']), 'sha256'],
      [opensslCert(['-newkey', 'ed25519']), 'sha512'],
      [opensslCert(['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048', '-sha512', '-sigopt', 'rsa_padding_mode:pss']), 'sha512'],
    );
  } else {
    console.log('openssl not installed: EC, Ed25519 and RSA-PSS certificate cases skipped');
  }
  for (const [cert, digest] of cases) {
    assert.is(endPointDigest(cert.der), digest);
    assert.is(norm(signatureAlgorithmHashFromCertificate(cert.der)), digest, 'agrees with node-postgres');
    assert.is(tlsServerEndPointHash(cert.der).length > 0, true);
  }
  if (hasOpenssl()) {
    const ed448 = opensslCert(['-newkey', 'ed448']);
    assert.not.ok(supportsChannelBinding(ed448.der));
    assert.equal(scramMechanisms(true, ed448.der), [SCRAM_SHA_256]);
  }
  assert.throws(() => tlsServerEndPointHash(Buffer.from('not a certificate')));
});

test('scramMechanisms lists -PLUS first, only over TLS', () => {
  assert.equal(scramMechanisms(false), [SCRAM_SHA_256]);
  assert.equal(scramMechanisms(true), [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
  assert.equal(scramMechanisms(true, certA.der), [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
});

test('ScramClientExchange.choose', () => {
  assert.is(ScramClientExchange.choose([SCRAM_SHA_256_PLUS, SCRAM_SHA_256], true), SCRAM_SHA_256_PLUS);
  assert.is(ScramClientExchange.choose([SCRAM_SHA_256_PLUS, SCRAM_SHA_256], false), SCRAM_SHA_256);
  assert.is(ScramClientExchange.choose([SCRAM_SHA_256], true), SCRAM_SHA_256);
  assert.throws(() => ScramClientExchange.choose(['SCRAM-SHA-1'], true), /no supported SASL mechanism/);
});

// ---------------------------------------------------------------- exchanges, in process

interface ExchangeResult { ok: boolean; error?: PgError; clientError?: Error; mechanism?: string }

function runExchange(
  server: { user?: string; verifier: ScramVerifier; serverCertificate?: Buffer },
  password: string,
  client: { serverCertificate?: Buffer; mechanisms?: string[] } = {},
): ExchangeResult {
  const srv = new ScramServerExchange({ user: server.user ?? 'alice', ...server });
  const cli = new ScramClientExchange(password, {
    mechanisms: client.mechanisms ?? scramMechanisms(server.serverCertificate !== undefined, server.serverCertificate),
    serverCertificate: client.serverCertificate,
  });
  try {
    const serverFirst = srv.start(cli.mechanism, cli.clientFirst());
    const serverFinal = srv.finish(cli.serverFirst(serverFirst));
    cli.serverFinal(serverFinal);
    assert.ok(srv.succeeded);
    return { ok: true, mechanism: cli.mechanism };
  } catch (err) {
    if (err instanceof PgError) return { ok: false, error: err, mechanism: cli.mechanism };
    return { ok: false, clientError: err as Error, mechanism: cli.mechanism };
  }
}

const verifier = parseVerifier(createVerifier('s3cret!'));

test('exchange: right and wrong password', () => {
  const ok = runExchange({ verifier }, 's3cret!');
  assert.ok(ok.ok);
  assert.is(ok.mechanism, SCRAM_SHA_256);
  const bad = runExchange({ user: 'alice@acme.com', verifier }, 's3cret?');
  assert.is(bad.error?.code, '28P01');
  assert.is(bad.error?.severity, 'FATAL');
  assert.is(bad.error?.message, 'password authentication failed for user "alice@acme.com"');
});

test('exchange: -PLUS with the same certificate on both sides', () => {
  const r = runExchange({ verifier, serverCertificate: certA.der }, 's3cret!', { serverCertificate: certA.der });
  assert.ok(r.ok, r.error?.message ?? r.clientError?.message);
  assert.is(r.mechanism, SCRAM_SHA_256_PLUS);
});

test('exchange: -PLUS with a different certificate (man in the middle) fails the binding check', () => {
  const r = runExchange({ verifier, serverCertificate: certA.der }, 's3cret!', { serverCertificate: certB.der });
  assert.is(r.error?.code, '28000');
  assert.is(r.error?.message, 'SCRAM channel binding check failed');
});

test('exchange: downgrade (client on TLS, -PLUS stripped from the offer) is refused', () => {
  const r = runExchange({ verifier, serverCertificate: certA.der }, 's3cret!', { serverCertificate: certB.der, mechanisms: [SCRAM_SHA_256] });
  assert.is(r.error?.code, '28000');
  assert.is(r.error?.message, 'SCRAM channel binding negotiation error');
});

test('exchange: "y" is fine when the server really has no TLS', () => {
  const r = runExchange({ verifier }, 's3cret!', { serverCertificate: certA.der, mechanisms: [SCRAM_SHA_256] });
  assert.ok(r.ok);
});

function serverError(fn: (s: ScramServerExchange) => void, opts: { serverCertificate?: Buffer } = {}): PgError {
  const s = new ScramServerExchange({ user: 'alice', verifier, ...opts });
  try {
    fn(s);
  } catch (err) {
    assert.instance(err, PgError);
    return err as PgError;
  }
  throw new Error('expected a PgError');
}

const b = (s: string) => Buffer.from(s, 'latin1');

test('server: mechanism and channel-binding flag must agree', () => {
  let e = serverError((s) => s.start(SCRAM_SHA_256_PLUS, b('p=tls-server-end-point,,n=,r=abc')));
  assert.is(e.code, '08P01', 'PLUS without TLS');
  assert.is(e.message, 'client selected an invalid SASL authentication mechanism');
  e = serverError((s) => s.start('SCRAM-SHA-1', b('n,,n=,r=abc')));
  assert.is(e.code, '08P01');
  e = serverError((s) => s.start(SCRAM_SHA_256, b('p=tls-server-end-point,,n=,r=abc')), { serverCertificate: certA.der });
  assert.is(e.code, '08P01', 'p= with the plain mechanism');
  assert.match(e.detail ?? '', /includes channel binding data/);
  e = serverError((s) => s.start(SCRAM_SHA_256_PLUS, b('n,,n=,r=abc')), { serverCertificate: certA.der });
  assert.is(e.code, '08P01', 'n with -PLUS');
  assert.match(e.detail ?? '', /does not include channel binding data/);
  e = serverError((s) => s.start(SCRAM_SHA_256_PLUS, b('p=tls-unique,,n=,r=abc')), { serverCertificate: certA.der });
  assert.is(e.code, '08P01');
  assert.is(e.message, 'unsupported SCRAM channel-binding type "tls-unique"');
});

test('server: malformed client-first-message', () => {
  const cases: Array<[string, string]> = [
    ['', '08P01'], ['x,,n=,r=abc', '08P01'], ['n,n=,r=abc', '08P01'], ['nn,,n=,r=abc', '08P01'],
    ['n,a=bob,n=,r=abc', '0A000'], ['n,,m=ext,n=,r=abc', '0A000'], ['n,,r=abc', '08P01'], ['n,,n=', '08P01'],
    ['n,,n=,r=', '08P01'], ['n,,n=,r=a\x01b', '08P01'], ['n,,n=,r=abc,1=x', '08P01'], ['n,,n=,r=abc,', '08P01'],
    ['n,,n=,r=abc,x', '08P01'],
  ];
  for (const [text, code] of cases) {
    const e = serverError((s) => s.start(SCRAM_SHA_256, b(text)));
    assert.is(e.code, code, `for ${JSON.stringify(text)}: ${e.message} ${e.detail ?? ''}`);
    assert.is(e.severity, 'FATAL');
  }
  assert.is(serverError((s) => s.start(SCRAM_SHA_256, Buffer.from('n,,n=,r=a\0bc'))).code, '08P01');
  // Unknown extensions after the nonce are ignored, as RFC 5802 says.
  const s = new ScramServerExchange({ user: 'alice', verifier });
  assert.match(s.start(SCRAM_SHA_256, b('n,,n=whoever,r=abc,x=ext')).toString(), /^r=abc[A-Za-z0-9+/=]{24},s=/);
});

test('server: malformed or forged client-final-message', () => {
  const begin = (clientNonce = 'abc') => {
    const s = new ScramServerExchange({ user: 'alice', verifier });
    const first = s.start(SCRAM_SHA_256, b(`n,,n=,r=${clientNonce}`)).toString('latin1');
    return { s, nonce: /^r=([^,]+)/.exec(first)![1] };
  };
  const proof = Buffer.alloc(32, 1).toString('base64');
  const cases: Array<[(n: string) => string, string, RegExp]> = [
    [(n) => `c=eSws,r=${n},p=${proof}`, '08P01', /unexpected SCRAM channel-binding attribute/],
    [(n) => `c=biws,r=${n}x,p=${proof}`, '08P01', /invalid SCRAM response/],
    [() => `c=biws,r=abc,p=${proof}`, '08P01', /invalid SCRAM response/],
    [(n) => `c=biws,r=${n},p=AAAA`, '08P01', /malformed/],
    [(n) => `c=biws,r=${n},p=${proof},x=1`, '08P01', /malformed/],
    [(n) => `c=biws,r=${n}`, '08P01', /malformed/],
    [(n) => `r=${n},c=biws,p=${proof}`, '08P01', /malformed/],
    [(n) => `c=biws,r=${n},p=${proof}`, '28P01', /password authentication failed/],
    [(n) => `c=biws,r=${n},e=ext,p=${proof}`, '28P01', /password authentication failed/],
  ];
  for (const [make, code, re] of cases) {
    const { s, nonce } = begin();
    const e = serverError(() => s.finish(b(make(nonce))));
    assert.is(e.code, code, `${make(nonce)}: ${e.message}`);
    assert.match(e.message, re);
  }
});

test('server: messages out of order and after a failure', () => {
  assert.is(serverError((s) => s.finish(b('c=biws,r=abc,p=x'))).code, '08P01');
  const s = new ScramServerExchange({ user: 'alice', verifier });
  s.start(SCRAM_SHA_256, b('n,,n=,r=abc'));
  assert.is(serverError(() => s.start(SCRAM_SHA_256, b('n,,n=,r=abc'))).code, '08P01');
  const t = new ScramServerExchange({ user: 'alice', verifier });
  assert.throws(() => t.start(SCRAM_SHA_256, b('garbage')));
  assert.is(serverError(() => t.finish(b('c=biws,r=abc,p=x'))).code, '08P01', 'a failed exchange stays failed');
});

test('client: refuses a forged server signature and a foreign nonce', () => {
  const srv = new ScramServerExchange({ user: 'alice', verifier });
  const cli = new ScramClientExchange('s3cret!');
  const first = srv.start(cli.mechanism, cli.clientFirst());
  srv.finish(cli.serverFirst(first));
  assert.throws(() => cli.serverFinal(b(`v=${Buffer.alloc(32).toString('base64')}`)), /invalid server signature/);
  const cli2 = new ScramClientExchange('pw');
  cli2.clientFirst();
  assert.throws(() => cli2.serverFirst(b('r=someoneelse,s=AAAA,i=4096')), /nonce/);
  const cli3 = new ScramClientExchange('pw');
  const cf = cli3.clientFirst().toString();
  const nonce = /r=(.*)$/.exec(cf)![1];
  assert.throws(() => cli3.serverFirst(b(`r=${nonce}x,s=AAAA,i=0`)), /iteration/);
  const cli4 = new ScramClientExchange('pw');
  cli4.clientFirst();
  assert.throws(() => cli4.serverFinal(b('e=invalid-proof')), /unexpected/);
});

test('md5PasswordMessage', () => {
  // Computed independently: 'md5' + md5(hex(md5('secret' + 'postgres')) + '\x01\x02\x03\x04').
  assert.is(md5PasswordMessage('postgres', 'secret', Buffer.from([1, 2, 3, 4])), 'md5bb41a296aab6baccb36ff243a562abff');
});

// ---------------------------------------------------------------- real PostgreSQL and pgveil

// One real PostgreSQL (with TLS, certificate certA) serves both halves: our
// client exchange logs in to it directly, and it is the upstream of the
// pgveil the harness starts in front of it (tls.mode prefer, so clients can
// come with or without TLS).
let h: Harness;
let pgTls = false;

test.before(async () => {
  try {
    h = await startHarness({ tlsMode: 'prefer', postgresSettings: postgresTlsSettings(certA) });
    pgTls = true;
  } catch (err) {
    console.log(`PostgreSQL with TLS did not start (${(err as Error).message}); running without TLS`);
    h = await startHarness({ tlsMode: 'prefer' });
  }
});

test.after(async () => {
  await h?.close();
});

async function roleVerifier(role: string, password: string): Promise<string> {
  const c = await h.pg.connect();
  try {
    await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(role)}`);
    await c.query(`CREATE ROLE ${c.escapeIdentifier(role)} LOGIN PASSWORD ${c.escapeLiteral(password)}`);
    const r = await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    return r.rows[0].rolpassword as string;
  } finally {
    await c.end();
  }
}

test('PostgreSQL: password_encryption is scram-sha-256 by default', async () => {
  const c = await h.pg.connect();
  const r = await c.query('SHOW password_encryption');
  await c.end();
  assert.is(r.rows[0].password_encryption, 'scram-sha-256');
});

test('PostgreSQL: verifiers it makes parse and match here', async () => {
  const v = await roleVerifier('x', 'p');
  const parsed = parseVerifier(v);
  assert.is(parsed.iterations, 4096);
  assert.is(formatVerifier(parsed), v);
  assert.ok(verifierMatches(v, 'p'));
  assert.not.ok(verifierMatches(v, 'q'));
});

test('PostgreSQL: SASLprep agrees on non-ASCII passwords (normalised and raw-fallback cases)', async () => {
  const samples = [
    'p\u00E4ssw\u00F6rd', 'pa\u0308ssw\u0308ord', '\uFF50\uFF41\uFF53\uFF53', 'a\u00A0b\u00ADc\u20AC',
    'x\uE000y', '\u05E9alom', '\u05E9\u05DC\u05D5\u05DD', '\u{1F642}pw', '\u2163 caf\u00E9', 'Stra\u00DFe \u00BD',
  ];
  let i = 0;
  for (const pw of samples) {
    const v = await roleVerifier(`sasl_${i++}`, pw);
    assert.ok(verifierMatches(v, pw), `PostgreSQL's verifier for ${JSON.stringify(pw)} matches`);
    const salt = parseVerifier(v).salt;
    assert.is(createVerifier(pw, { salt }), v, `same verifier for ${JSON.stringify(pw)}`);
  }
});

test('PostgreSQL: accepts a verifier made here, and our client logs in with it', async () => {
  const c = await h.pg.connect();
  await c.query(`CREATE ROLE made_here LOGIN PASSWORD '${createVerifier('Made-Here-1')}'`);
  await c.end();
  const ours = await rawLogin({ port: h.pg.port, user: 'made_here', password: 'Made-Here-1' });
  assert.ok(ours.ok, ours.message);
  const theirs = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: 'made_here', password: 'Made-Here-1', database: 'postgres' });
  await theirs.connect();
  await theirs.end();
});

test('PostgreSQL: our client exchange without TLS (right and wrong password)', async () => {
  await roleVerifier('plain_user', 'Plain-pw-1');
  const ok = await rawLogin({ port: h.pg.port, user: 'plain_user', password: 'Plain-pw-1' });
  assert.ok(ok.ok, ok.message);
  assert.is(ok.mechanism, SCRAM_SHA_256);
  const bad = await rawLogin({ port: h.pg.port, user: 'plain_user', password: 'wrong' });
  assert.not.ok(bad.ok);
  assert.is(bad.code, '28P01');
});

test('PostgreSQL: our client exchange with -PLUS over TLS (same channel binding hash as the server)', async () => {
  if (!pgTls) { console.log('skipped: PostgreSQL runs without TLS here'); return; }
  await roleVerifier('tls_user', 'Tls-pw-1');
  const ok = await rawLogin({ port: h.pg.port, user: 'tls_user', password: 'Tls-pw-1', tls: true });
  assert.ok(ok.ok, ok.message);
  assert.is(ok.mechanism, SCRAM_SHA_256_PLUS);
  const mitm = await rawLogin({ port: h.pg.port, user: 'tls_user', password: 'Tls-pw-1', tls: true, certificateOverride: certB.der });
  assert.is(mitm.code, '28000', mitm.message);
  assert.match(mitm.message ?? '', /channel binding check failed/);
  const stripped = await rawLogin({
    port: h.pg.port, user: 'tls_user', password: 'Tls-pw-1', tls: true,
    filterMechanisms: (m) => m.filter((x) => x !== SCRAM_SHA_256_PLUS),
  });
  assert.is(stripped.code, '28000', 'PostgreSQL detects the downgrade from our "y" flag');
  assert.match(stripped.message ?? '', /channel binding negotiation error/);
});

// ---------------------------------------------------------------- real clients against pgveil

const alice = 'alice@acme.com';

interface SaslSeen { offered: string[]; mechanism: string; gs2Flag: string }

/**
 * Records what node-postgres negotiates: the mechanisms it was offered and the
 * mechanism and gs2 flag it sent. Observes the real client; changes nothing.
 */
function watchSasl(client: pg.Client): SaslSeen {
  const connection = (client as unknown as {
    connection: {
      on(event: 'authenticationSASL', fn: (msg: { mechanisms: string[] }) => void): void;
      sendSASLInitialResponseMessage(mechanism: string, initialResponse: string): void;
    };
  }).connection;
  const seen: SaslSeen = { offered: [], mechanism: '', gs2Flag: '' };
  connection.on('authenticationSASL', (msg) => { seen.offered = msg.mechanisms; });
  const send = connection.sendSASLInitialResponseMessage.bind(connection);
  connection.sendSASLInitialResponseMessage = (mechanism, initialResponse) => {
    seen.mechanism = mechanism;
    seen.gs2Flag = initialResponse.split(',')[0];
    send(mechanism, initialResponse);
  };
  return seen;
}

async function pgConnect(config: pg.ClientConfig): Promise<{ seen: SaslSeen; error?: Error & { code?: string }; value?: number }> {
  const client = new pg.Client({ host: '127.0.0.1', port: h.proxy.port, database: 'analytics', ...config });
  const seen = watchSasl(client);
  try {
    await client.connect();
    const r = await client.query('select 6 * 7 as v');
    await client.end();
    return { seen, value: r.rows[0].v as number };
  } catch (err) {
    await client.end().catch(() => {});
    return { seen, error: err as Error & { code?: string } };
  }
}

test('node-postgres through pgveil: plain, wrong password, unknown user', async () => {
  const ok = await pgConnect({ user: alice, password: passwords[alice], ssl: false });
  assert.is(ok.error, undefined, ok.error?.message);
  assert.is(ok.value, 42);
  assert.equal(ok.seen.offered, [SCRAM_SHA_256], 'no -PLUS without TLS');
  assert.is(ok.seen.gs2Flag, 'n');

  const bad = await pgConnect({ user: 'carol@acme.com', password: 'nope', ssl: false });
  assert.is(bad.error?.code, '28P01');
  assert.is(bad.error?.message, 'password authentication failed for user "carol@acme.com"');

  const ghost = await pgConnect({ user: 'ghost@acme.com', password: 'whatever', ssl: false });
  assert.is(ghost.error?.code, '28P01', 'an unknown user fails the same way');
  assert.is(ghost.error?.message, 'password authentication failed for user "ghost@acme.com"');
  assert.equal(ghost.seen.offered, ok.seen.offered, 'and is offered the same mechanisms');
});

test('node-postgres through pgveil over TLS: -PLUS with enableChannelBinding, flag "n" without', async () => {
  const ssl = { ca: readFileSync(h.caFile, 'utf8'), rejectUnauthorized: true };
  const plus = await pgConnect({ user: alice, password: passwords[alice], ssl, enableChannelBinding: true } as pg.ClientConfig);
  assert.is(plus.error, undefined, plus.error?.message);
  assert.is(plus.value, 42);
  assert.equal(plus.seen.offered, [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
  assert.is(plus.seen.mechanism, SCRAM_SHA_256_PLUS);
  assert.is(plus.seen.gs2Flag, 'p=tls-server-end-point', 'pgveil checked node-postgres\'s binding data');

  // node-postgres without enableChannelBinding says "n" (client does not
  // support binding) even over TLS; that is no downgrade and must work.
  const n = await pgConnect({ user: alice, password: passwords[alice], ssl });
  assert.is(n.error, undefined, n.error?.message);
  assert.is(n.seen.mechanism, SCRAM_SHA_256);
  assert.is(n.seen.gs2Flag, 'n');
});

test('libpq (psql) through pgveil: plain, wrong password, channel_binding=require over TLS', async () => {
  const base = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics gssencmode=disable`;
  let r = await psql(`${base} user=${alice} sslmode=disable`, 'select 6 * 7', passwords[alice]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '42');

  r = await psql(`${base} user=bob@globex.com sslmode=disable`, 'select 1', 'wrong');
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /password authentication failed for user "bob@globex\.com"/);

  // libpq refuses to finish unless the server offered -PLUS and the
  // exchange used it, so success proves pgveil verified libpq's binding.
  r = await psql(`${base} user=${alice} sslmode=verify-full sslrootcert=${h.caFile} channel_binding=require`, 'select 6 * 7', passwords[alice]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), '42');

  // Without TLS pgveil offers no -PLUS, so libpq gives up.
  r = await psql(`${base} user=${alice} sslmode=disable channel_binding=require`, 'select 1', passwords[alice]);
  assert.is.not(r.status, 0);
  assert.match(r.stderr, /channel binding/);
});

// ---------------------------------------------------------------- pgveil's side of channel binding, raw

test('pgveil offers SCRAM-SHA-256-PLUS first over TLS and only SCRAM-SHA-256 without', async () => {
  const plain = await RawClient.connect(h.proxy.port);
  plain.send(startupPacket({ user: alice, database: 'analytics' }));
  const sasl = await plain.message();
  plain.close();
  assert.is(sasl?.type, 'R');
  assert.is(sasl?.body.readInt32BE(0), 10);
  assert.equal(sasl?.body.subarray(4).toString().split('\0').filter(Boolean), [SCRAM_SHA_256]);

  const c = await RawTlsClient.connect(h.proxy.port, { ca: readFileSync(h.caFile, 'utf8') });
  const attempt = await c.scram(alice, passwords[alice]);
  c.close();
  assert.equal(attempt.offered, [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
  assert.is(attempt.mechanism, SCRAM_SHA_256_PLUS);
  assert.is(attempt.error, undefined, errorField(attempt.error, 'M'));
  assert.is(attempt.messages.at(-1)?.type, 'Z', 'logged in with binding data for the certificate pgveil presented');
});

test('pgveil refuses flag "y" over TLS when it offered -PLUS (downgrade by a stripped offer)', async () => {
  const c = await RawTlsClient.connect(h.proxy.port);
  const attempt = await c.scram(alice, passwords[alice], { filterMechanisms: (m) => m.filter((x) => x !== SCRAM_SHA_256_PLUS) });
  assert.is(attempt.mechanism, SCRAM_SHA_256);
  assert.is(errorField(attempt.error, 'C'), '28000');
  assert.is(errorField(attempt.error, 'S'), 'FATAL');
  assert.is(errorField(attempt.error, 'M'), 'SCRAM channel binding negotiation error');
  assert.is(attempt.messages.length, 2, 'refused right after the client-first-message, before any proof');
  assert.is(await c.message(), undefined, 'and the connection is closed');
  c.close();
});

test('pgveil refuses -PLUS binding data for another certificate (man in the middle)', async () => {
  const c = await RawTlsClient.connect(h.proxy.port);
  const attempt = await c.scram(alice, passwords[alice], { certificateOverride: certB.der });
  assert.is(attempt.mechanism, SCRAM_SHA_256_PLUS);
  assert.is(errorField(attempt.error, 'C'), '28000');
  assert.is(errorField(attempt.error, 'M'), 'SCRAM channel binding check failed');
  assert.is(await c.message(), undefined, 'and the connection is closed');
  c.close();
});

test.run();
