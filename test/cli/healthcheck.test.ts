// `pgveil healthcheck --config FILE`, what the container image's HEALTHCHECK
// runs: healthy (0) while the pgveil serving that config answers, unhealthy
// (1, never Docker's reserved 2) otherwise — whether or not the config opens
// the admin endpoint, and with TLS required (the default) or not. The probe
// must leave nothing in pgveil's log: it runs every 30 s for ever.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, createServerCertificate } from '../../src/demo/certs.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'bin/pgveil.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A config with no PostgreSQL behind it: serve starts anyway, so health is pgveil's own. */
async function workspace(opts: { tls: boolean; admin?: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-healthcheck-'));
  writeFileSync(join(dir, 'master.key'), generateMasterKey() + '\n', { mode: 0o600 });
  let tls = 'tls: { mode: disable }';
  if (opts.tls) {
    const ca = createCertificateAuthority('healthcheck test CA');
    const server = createServerCertificate(ca, { commonName: 'localhost', hosts: ['localhost', '127.0.0.1'] });
    writeFileSync(join(dir, 'server.crt'), server.certPem);
    writeFileSync(join(dir, 'server.key'), server.keyPem, { mode: 0o600 });
    tls = 'tls: { cert: server.crt, key: server.key }';
  }
  const listenPort = await freePort();
  writeFileSync(join(dir, 'pgveil.yaml'), `listen: { host: 127.0.0.1, port: ${listenPort} }
${tls}
upstream: { host: 127.0.0.1, port: ${await freePort()}, database: analytics, user: pgveil_service, connectTimeoutMs: 1000 }
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
${opts.admin ?? ''}
`);
  writeFileSync(join(dir, 'users.yaml'), 'organizations: { acme: {} }\nusers:\n  alice@acme.com: { org: acme }\n');
  writeFileSync(join(dir, 'policy.yaml'), 'layers: { access: true, ownership: true, redaction: true }\ndefaults: { unlistedRelations: allow, writes: deny }\n');
  return { dir, config: join(dir, 'pgveil.yaml'), listenPort };
}

interface Served { child: ChildProcess; output(): string; exited: Promise<unknown> }

async function serve(configFile: string): Promise<Served> {
  const env: NodeJS.ProcessEnv = { ...process.env, PGVEIL_LOG_LEVEL: 'debug' };
  delete env.PGVEIL_MASTER_KEY;
  const child = spawn(process.execPath, [bin, 'serve', '--config', configFile], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise((r) => child.once('exit', r));
  for (let i = 0; i < 300 && !out.includes('pgveil listening') && child.exitCode === null; i++) await sleep(100);
  assert.ok(out.includes('pgveil listening'), out);
  return { child, output: () => out, exited };
}

async function stop(s: Served): Promise<void> {
  s.child.kill('SIGTERM');
  await Promise.race([s.exited, sleep(10_000).then(() => s.child.kill('SIGKILL'))]);
}

function healthcheck(configFile: string) {
  const r = spawnSync(process.execPath, [bin, 'healthcheck', '--config', configFile], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Log lines written while the probes ran, except the debug-level ones. */
function logSince(out: string, from: number): string[] {
  return out.slice(from).split('\n').filter((l) => l !== '' && !/"level":"debug"/.test(l));
}

for (const tls of [true, false]) {
  test(`no admin endpoint, TLS ${tls ? 'required' : 'off'}: healthy while serve runs (probing the client port, quietly), unhealthy (1) once it stops`, async () => {
    const w = await workspace({ tls });
    const s = await serve(w.config);
    try {
      const before = s.output().length;
      for (let i = 0; i < 3; i++) {
        const r = healthcheck(w.config);
        assert.is(r.code, 0, r.stderr);
        assert.is(r.stdout, `ok: listen 127.0.0.1:${w.listenPort}\n`);
      }
      await sleep(300);
      assert.equal(logSince(s.output(), before), [], s.output());
    } finally {
      await stop(s);
    }
    const r = healthcheck(w.config);
    assert.is(r.code, 1);
    assert.match(r.stderr, new RegExp(`^pgveil healthcheck: unhealthy: listen 127\\.0\\.0\\.1:${w.listenPort}: `));
  });
}

test('admin on 0.0.0.0 (the image\'s documented setting): GET /healthz through loopback', async () => {
  const adminPort = await freePort();
  const w = await workspace({ tls: false, admin: `admin: { host: 0.0.0.0, port: ${adminPort} }` });
  const s = await serve(w.config);
  try {
    const r = healthcheck(w.config);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, `ok: admin 127.0.0.1:${adminPort}\n`);
  } finally {
    await stop(s);
  }
  const r = healthcheck(w.config);
  assert.is(r.code, 1);
  assert.match(r.stderr, `unhealthy: admin 127.0.0.1:${adminPort}: `);
});

test('a missing config or a usage error is unhealthy (1), not Docker\'s reserved 2', () => {
  const missing = healthcheck(join(tmpdir(), 'pgveil-healthcheck-no-such-dir', 'pgveil.yaml'));
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /^pgveil healthcheck: unhealthy: /);
  const r = spawnSync(process.execPath, [bin, 'healthcheck'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 1);
  assert.match(r.stderr, 'missing --config');
});

test.run();
