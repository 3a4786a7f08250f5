// Upstream TLS (upstream.tls.mode): pgveil's own link to a real PostgreSQL
// with ssl=on, in each mode, and what a client sees when that link cannot be
// made safely (FATAL 08006, pgveil keeps serving). Also upstream SCRAM with
// channel binding: a man in the middle that terminates pgveil's TLS is
// caught by SCRAM-SHA-256-PLUS even in mode require.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createCertificateAuthority, createServerCertificate, type IssuedCertificate } from '../../src/demo/certs.js';
import type { ProxyHandle } from '../../src/session/server.js';
import {
  clientConfig, postgresTlsSettings, startHarness, startProxyVariant, type Harness, type HarnessOptions,
} from '../helpers/harness.js';

const alice = 'alice@acme.com';

const upstreamCa = createCertificateAuthority('upstream test CA');
const otherCa = createCertificateAuthority('some other CA');
/** Valid for the address pgveil is configured with (upstream.host 127.0.0.1), and only for it. */
const ipCert = createServerCertificate(upstreamCa, { commonName: 'upstream by address', hosts: ['127.0.0.1'] });
/** Signed by the right CA, but for a name that is not upstream.host. */
const nameCert = createServerCertificate(upstreamCa, { commonName: 'localhost', hosts: ['localhost'] });

const caDir = mkdtempSync(join(tmpdir(), 'pgveil-upstream-ca-'));
const upstreamCaFile = join(caDir, 'upstream-ca.crt');
const otherCaFile = join(caDir, 'other-ca.crt');
writeFileSync(upstreamCaFile, upstreamCa.certPem);
writeFileSync(otherCaFile, otherCa.certPem);

// ---------------------------------------------------------------- helpers

interface Outcome { ssl?: boolean; code?: string; message?: string }

/** Logs in to a pgveil as alice and asks upstream whether its own connection is encrypted. */
async function upstreamSsl(h: Harness, proxy: ProxyHandle = h.proxy): Promise<Outcome> {
  const client = new pg.Client(clientConfig(h, alice, { port: proxy.port }));
  client.on('error', () => {});
  try {
    await client.connect();
    const r = await client.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    await client.end();
    return { ssl: r.rows[0]?.ssl as boolean };
  } catch (err) {
    await client.end().catch(() => {});
    const e = err as Error & { code?: string };
    return { code: e.code, message: e.message };
  }
}

function assertUnavailable(o: Outcome, why: string): void {
  assert.is(o.code, '08006', `${why}: ${JSON.stringify(o)}`);
  assert.is(o.message, 'could not connect to the upstream server');
}

const harnesses: Harness[] = [];
const proxies: ProxyHandle[] = [];

async function harness(opts: HarnessOptions): Promise<Harness> {
  const h = await startHarness(opts);
  harnesses.push(h);
  return h;
}

async function variant(h: Harness, change: Parameters<typeof startProxyVariant>[1]): Promise<ProxyHandle> {
  const p = await startProxyVariant(h, change);
  proxies.push(p);
  return p;
}

test.after(async () => {
  for (const p of proxies) await p.close();
  for (const h of harnesses) await h.close();
});

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * A man in the middle between pgveil and PostgreSQL: it accepts pgveil's
 * SSLRequest and terminates TLS with its own certificate, opens its own TLS
 * link to PostgreSQL, and relays the decrypted bytes both ways unchanged.
 * Everything pgveil talks to is the real server; only the TLS is foreign.
 */
async function startInterceptor(targetPort: number, cert: IssuedCertificate): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const track = <T extends net.Socket>(s: T): T => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); return s; };
  const server = net.createServer((victim) => {
    track(victim);
    victim.once('data', (request: Buffer) => {
      if (!request.equals(SSL_REQUEST)) { victim.destroy(); return; }
      victim.write('S');
      const front = track(new tls.TLSSocket(victim, { isServer: true, cert: cert.certPem, key: cert.keyPem }));
      const raw = track(net.connect(targetPort, '127.0.0.1'));
      raw.once('connect', () => raw.write(SSL_REQUEST));
      raw.once('data', () => {
        const back = track(tls.connect({ socket: raw, rejectUnauthorized: false }));
        back.once('secureConnect', () => { front.pipe(back); back.pipe(front); });
        back.on('close', () => front.destroy());
        front.on('close', () => back.destroy());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

async function waitFor(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

// ---------------------------------------------------------------- PostgreSQL with a certificate for 127.0.0.1

let pgLog = '';
let ipServer: Harness;

test.before(async () => {
  ipServer = await harness({
    upstreamTls: { mode: 'require' },
    postgresSettings: postgresTlsSettings(ipCert),
    onPostgresLog: (text) => { pgLog += text; },
  });
});

test('require: the upstream link is encrypted', async () => {
  assert.equal(await upstreamSsl(ipServer), { ssl: true });
});

test('verify-full with the CA that signed the upstream certificate works (host is an IP address)', async () => {
  const proxy = await variant(ipServer, { upstreamTls: { mode: 'verify-full', ca: upstreamCaFile } });
  assert.equal(await upstreamSsl(ipServer, proxy), { ssl: true });
});

test('verify-ca with the right CA works', async () => {
  const proxy = await variant(ipServer, { upstreamTls: { mode: 'verify-ca', ca: upstreamCaFile } });
  assert.equal(await upstreamSsl(ipServer, proxy), { ssl: true });
});

test('verify-full and verify-ca with another CA: 08006 for the client, pgveil keeps running', async () => {
  const full = await variant(ipServer, { upstreamTls: { mode: 'verify-full', ca: otherCaFile } });
  assertUnavailable(await upstreamSsl(ipServer, full), 'verify-full, foreign CA');
  assertUnavailable(await upstreamSsl(ipServer, full), 'the same pgveil answers the next client the same way');
  const ca = await variant(ipServer, { upstreamTls: { mode: 'verify-ca', ca: otherCaFile } });
  assertUnavailable(await upstreamSsl(ipServer, ca), 'verify-ca, foreign CA');
  assert.equal(await upstreamSsl(ipServer), { ssl: true }, 'pgveil in the same process is unaffected');
});

test('upstream SCRAM uses -PLUS over TLS: a man in the middle is caught even in mode require', async () => {
  // Direct: pgveil logged in over TLS (first test). Through a relay that
  // re-encrypts with its own certificate, pgveil's binding data names the
  // relay's certificate; PostgreSQL compares it with its own and refuses.
  // Only a client that sent -PLUS binding data gets "channel binding check
  // failed" ("y" would get "negotiation error"; "n" would get in).
  const mitm = await startInterceptor(ipServer.pg.port, createServerCertificate(otherCa, { commonName: 'mitm', hosts: ['127.0.0.1'] }));
  try {
    const proxy = await variant(ipServer, { upstreamPort: mitm.port, upstreamTls: { mode: 'require' } });
    pgLog = '';
    assertUnavailable(await upstreamSsl(ipServer, proxy), 'through the man in the middle');
    assert.ok(await waitFor(() => /SCRAM channel binding check failed/.test(pgLog)), `PostgreSQL's log: ${pgLog}`);
    assert.equal(await upstreamSsl(ipServer), { ssl: true }, 'without the relay the same login works');
  } finally {
    await mitm.close();
  }
});

// ---------------------------------------------------------------- PostgreSQL with a certificate for another name

test('verify-full against a certificate whose SAN does not match upstream.host: 08006; verify-ca accepts it', async () => {
  const h = await harness({ upstreamTls: { mode: 'verify-full', ca: upstreamCaFile }, postgresSettings: postgresTlsSettings(nameCert) });
  assertUnavailable(await upstreamSsl(h), 'certificate for "localhost", upstream.host 127.0.0.1');
  const ca = await variant(h, { upstreamTls: { mode: 'verify-ca', ca: upstreamCaFile } });
  assert.equal(await upstreamSsl(h, ca), { ssl: true });
  assertUnavailable(await upstreamSsl(h), 'pgveil still serves (and still refuses)');
  // With upstream.host the name the certificate is for, verify-full accepts it (the SNI / DNS-name path).
  const byName = await variant(h, { upstreamHost: 'localhost', upstreamTls: { mode: 'verify-full', ca: upstreamCaFile } });
  assert.equal(await upstreamSsl(h, byName), { ssl: true });
});

// ---------------------------------------------------------------- PostgreSQL without TLS

test('require against a server with ssl=off: 08006, never a plaintext fallback', async () => {
  const h = await harness({ upstreamTls: { mode: 'require' } });
  assertUnavailable(await upstreamSsl(h), 'ssl=off upstream');
  const plain = await variant(h, { upstreamTls: { mode: 'disable' } });
  assert.equal(await upstreamSsl(h, plain), { ssl: false }, 'the same server is reachable without TLS');
});

test.run();
