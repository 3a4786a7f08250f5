// `pgveil serve` as an operator meets it on a bad day (threats E4, E5 in docs/threat-model.md): the
// listen port taken, the upstream down at startup, a master key that does
// not open the sealed values, a key file others can read. Each is the real
// command in a child process; each must say plainly what is wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { seal } from '../../src/secrets/seal.js';
import { startHarness, passwords } from '../helpers/harness.js';

const bin = fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Served { child: ChildProcess; output(): string; exited: Promise<number | null> }

function serve(configFile: string, cwd: string): Served {
  const env: NodeJS.ProcessEnv = { ...process.env, PGVEIL_LOG_LEVEL: 'info' };
  delete env.PGVEIL_MASTER_KEY;
  const child = spawn(process.execPath, [bin, 'serve', '--config', configFile], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/** Waits until `ok(output)` or the process exits (at most 30 s); true when `ok` held. */
async function until(s: Served, ok: (out: string) => boolean): Promise<boolean> {
  let gone = false;
  void s.exited.then(() => { gone = true; });
  for (let i = 0; i < 300 && !ok(s.output()) && !gone; i++) await sleep(100);
  return ok(s.output());
}

async function stop(s: Served): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
  const code = await Promise.race([s.exited, sleep(10_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') { s.child.kill('SIGKILL'); await s.exited; }
}

/** A config set with no PostgreSQL behind it (the upstream port has nothing listening). */
async function workspace(opts: { listenPort?: number; password?: string; masterKey?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-serve-errors-'));
  const masterKey = opts.masterKey ?? generateMasterKey();
  writeFileSync(join(dir, 'master.key'), masterKey + '\n', { mode: 0o600 });
  const upstreamPort = await freePort();
  writeFileSync(join(dir, 'pgveil.yaml'), `listen: { host: 127.0.0.1, port: ${opts.listenPort ?? 0} }
tls: { mode: disable }
upstream:
  host: 127.0.0.1
  port: ${upstreamPort}
  database: analytics
  user: pgveil_service
${opts.password ? `  password: "${opts.password}"\n` : ''}  connectTimeoutMs: 2000
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
`);
  writeFileSync(join(dir, 'users.yaml'), 'organizations: { acme: {} }\nusers:\n  alice@acme.com: { org: acme }\n');
  writeFileSync(join(dir, 'policy.yaml'), 'layers: { access: true, ownership: true, redaction: true }\ndefaults: { unlistedRelations: allow, writes: deny }\n');
  return { dir, config: join(dir, 'pgveil.yaml'), masterKey, upstreamPort };
}

const plainLines = (out: string) => out.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
const logLines = (out: string) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string });

test('E5 the listen port is taken while the upstream is down: serve exits 1 with one line saying so', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const w = await workspace({ listenPort: port });
    const s = serve(w.config, w.dir);
    const code = await Promise.race([s.exited, sleep(30_000).then(() => 'still running' as const)]);
    if (code === 'still running') await stop(s);
    assert.is(code, 1, s.output());
    assert.equal(plainLines(s.output()), [
      `pgveil serve: cannot listen on 127.0.0.1:${port} (listen): the port is already in use (another pgveil or server is listening there; stop it or change listen.port)`,
    ]);
  } finally {
    taken.close();
  }
});

test('E4 a master key that does not open upstream.password: the error names the file and key, never the value', async () => {
  const sealed = seal('service-password', Buffer.from(generateMasterKey(), 'base64')); // sealed under another key
  const w = await workspace({ password: sealed });
  const s = serve(w.config, w.dir);
  const code = await Promise.race([s.exited, sleep(30_000).then(() => 'still running' as const)]);
  if (code === 'still running') await stop(s);
  assert.is(code, 1, s.output());
  assert.equal(plainLines(s.output()), [
    'pgveil serve: pgveil.yaml: upstream.password: sealed value could not be opened with this master key (was it sealed with another key?)',
  ]);
  assert.not.ok(s.output().includes(sealed.slice('sealed:'.length, 40)), 'the sealed value is never shown');
  assert.not.ok(s.output().includes(w.masterKey.slice(0, 12)), 'the key is never shown');
});

test('E4 serve warns once at startup about a master key file others can read, and not once it is chmod 600', async () => {
  const w = await workspace();
  const keyFile = join(w.dir, 'master.key');
  chmodSync(keyFile, 0o644);
  let s = serve(w.config, w.dir);
  assert.ok(await until(s, (out) => out.includes('pgveil listening')), s.output());
  await stop(s);
  const warned = logLines(s.output()).filter((l) => l.msg.includes('master key file'));
  assert.equal(warned, [{ ...warned[0], level: 'warn', msg: `master key file ${keyFile} is readable by group or others (mode 644); run chmod 600 on it` }]);

  chmodSync(keyFile, 0o600);
  s = serve(w.config, w.dir);
  assert.ok(await until(s, (out) => out.includes('pgveil listening')), s.output());
  await stop(s);
  assert.not.ok(s.output().includes('master key file'), s.output());
});

test('E5 upstream down at startup: one warn line naming it, readyz false, no reload failure; ready once it is up', async () => {
  const h = await startHarness({ tlsMode: 'disable' });
  const upstreamPort = await freePort();
  const adminPort = await freePort();
  const configFile = join(h.dir, 'pgveil-upstream-later.yaml');
  writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace(/^  port: \d+$/m, `  port: ${upstreamPort}`)
    + `admin: { host: 127.0.0.1, port: ${adminPort} }\n`);
  let forward: net.Server | undefined;
  const s = serve(configFile, h.dir);
  try {
    assert.ok(await until(s, (out) => out.includes('pgveil listening')), s.output());
    await sleep(5000); // two more retries: they must not log again while the reason stays the same
    const waiting = logLines(s.output()).filter((l) => l.msg.startsWith('waiting for the upstream'));
    assert.is(waiting.length, 1, s.output());
    assert.is(waiting[0].level, 'warn');
    assert.match(waiting[0].msg, new RegExp(`^waiting for the upstream at 127\\.0\\.0\\.1:${upstreamPort} to read its catalog: .*ECONNREFUSED`));
    assert.not.match(s.output(), /reload rejected/);
    let ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    assert.is(ready.status, 503);
    const failures = async () => /^pgveil_reload_failures_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1];
    assert.is(await failures(), '0');

    // The upstream comes up (a port forward to the real PostgreSQL).
    forward = net.createServer((c) => {
      const up = net.connect(h.pg.port, '127.0.0.1');
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => forward!.listen(upstreamPort, '127.0.0.1', r));
    assert.ok(await until(s, (out) => out.includes('upstream catalog read; ready')), s.output());
    ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    assert.is(ready.status, 200);
    assert.is(await failures(), '0');
    const port = Number(/"msg":"pgveil listening".*?"port":(\d+)/.exec(s.output())![1]);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics', ssl: false });
    await client.connect();
    assert.is((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    await client.end();
    assert.not.match(s.output(), /reload rejected|"level":"error"/);
  } finally {
    await stop(s);
    await new Promise((r) => (forward ? forward.close(r) : r(undefined)));
    await h.close();
  }
});

test.run();
