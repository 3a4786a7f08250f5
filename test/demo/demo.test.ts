// `pgveil demo` end to end, the way a person uses it: start the CLI, paste
// the printed psql lines into a shell, press Ctrl-C. Plus the files
// writeDemoFiles produces, checked through the real config loader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from '../../src/config/load.js';
import { generatePassword, writeDemoFiles } from '../../src/demo/setup.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const PSQL = process.env.PSQL ?? 'psql';

function hasPsql(): boolean {
  return spawnSync(PSQL, ['--version']).status === 0;
}

/** The environment a user's shell would have, minus libpq variables that would override the printed line. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  env.PGCONNECT_TIMEOUT = '10';
  return env;
}

/** Runs a printed line in bash with extra psql arguments appended; -X skips any ~/.psqlrc. */
function runLine(line: string, extra: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `${line} -X ${extra}`], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('generatePassword meets the password policy', () => {
  for (let i = 0; i < 200; i++) {
    const pw = generatePassword();
    assert.ok(pw.length >= 16);
    const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(pw)).length;
    assert.is(classes, 4, pw);
    assert.not.match(pw, /['"\\$`!\s]/, 'no characters a shell or conninfo would trip over');
  }
});

test('writeDemoFiles: files load with the real loader, secrets are protected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-demo-test-'));
  try {
    const upstreamPassword = 'upstream-' + generatePassword();
    const files = writeDemoFiles(dir, { host: '127.0.0.1', port: 5432, database: 'analytics', user: 'pgveil_service', password: upstreamPassword });
    const loaded = loadAll(files.configFile);
    assert.is(loaded.config.listen.port, 0);
    assert.is(loaded.config.listen.host, '127.0.0.1');
    assert.is(loaded.config.tls.mode, 'require');
    assert.match(String(loaded.config.upstream.password), /^sealed:/);
    assert.equal([...loaded.users.users.keys()].sort(), ['alice@acme.com', 'bob@globex.com', 'hana@acme.com']);
    assert.equal(loaded.users.users.get('hana@acme.com')?.groups, ['hr']);
    assert.equal(Object.keys(loaded.policy.tables).sort(), ['crm.accounts', 'crm.employees', 'crm.events']);
    assert.match(String(loaded.policy.secrets.scrambleKey), /^sealed:/);
    assert.is(files.users.length, 3);

    for (const f of [files.masterKeyFile, files.serverKey]) assert.is(statSync(f).mode & 0o777, 0o600, f);
    const everything = readdirSync(dir, { recursive: true })
      .map((name) => join(dir, String(name)))
      .filter((p) => statSync(p).isFile())
      .map((p) => readFileSync(p, 'utf8'))
      .join('\n');
    assert.not.ok(everything.includes(upstreamPassword), 'upstream password is only stored sealed');
    for (const u of files.users) assert.not.ok(everything.includes(u.password), `${u.name}'s password is only stored as a verifier`);
    assert.not.match(everything, /BEGIN (RSA )?PRIVATE KEY[\s\S]*BEGIN (RSA )?PRIVATE KEY/, 'only the server key is written, not the CA key');

    const withPort = writeDemoFiles(join(dir, 'p'), { host: '127.0.0.1', port: 5432, database: 'analytics', user: 'pgveil_service', password: 'x' }, { listenPort: 16432 });
    assert.is(loadAll(withPort.configFile).config.listen.port, 16432);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo rejects a bad --port with a usage error', () => {
  const r = spawnSync(process.execPath, ['bin/pgveil.js', 'demo', '--port', 'abc'], { cwd: root, encoding: 'utf8' });
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /--port/);
});

interface RunningDemo { child: ChildProcess; stdout: string; stderr: string }

/** Starts `pgveil demo` in its own process group (like a terminal job) and waits for the banner. */
function startDemo(): Promise<RunningDemo> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/pgveil.js', 'demo'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const demo: RunningDemo = { child, stdout: '', stderr: '' };
    const timer = setTimeout(() => reject(new Error(`demo did not become ready in 60 s\n${demo.stderr}`)), 60_000);
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => { demo.stderr += d; });
    child.stdout?.on('data', (d: string) => {
      demo.stdout += d;
      if (/Press Ctrl-C to stop/.test(demo.stdout)) { clearTimeout(timer); resolve(demo); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited early with ${code}\n${demo.stderr}`)); });
  });
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) { resolve(child.exitCode); return; }
    const timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

function bannerInfo(stdout: string): { dir: string; proxyPort: number; pgPort: number } {
  const dir = /^demo directory: (.+)$/m.exec(stdout)?.[1] ?? '';
  const ports = /pgveil on 127\.0\.0\.1:(\d+) in front of PostgreSQL on 127\.0\.0\.1:(\d+)/.exec(stdout);
  return { dir, proxyPort: Number(ports?.[1]), pgPort: Number(ports?.[2]) };
}

function killGroup(pid: number): void {
  try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
}

test('pgveil demo: printed psql lines connect; Ctrl-C stops everything and removes the temp dir', async () => {
  if (!hasPsql()) throw new Error('psql not found: run scripts/install-test-tools.sh');
  const started = Date.now();
  const demo = await startDemo();
  const pid = demo.child.pid as number;
  try {
    console.log(`  demo ready in ${Date.now() - started} ms`);
    const lines = demo.stdout.split('\n').filter((l) => l.startsWith('PGPASSWORD='));
    assert.is(lines.length, 4, demo.stdout);
    const alice = lines.find((l) => l.includes('user=alice@acme.com') && l.includes('sslmode=require'));
    const bob = lines.find((l) => l.includes('user=bob@globex.com'));
    const verifyFull = lines.find((l) => l.includes('sslmode=verify-full'));
    assert.ok(alice && bob && verifyFull, demo.stdout);
    const { dir, proxyPort, pgPort } = bannerInfo(demo.stdout);
    assert.ok(dir && existsSync(join(dir, 'pgveil.yaml')), 'demo directory is printed and exists');
    assert.ok(proxyPort > 0 && pgPort > 0, demo.stdout);

    const one = runLine(alice, `-tAc 'select 1'`);
    assert.is(one.status, 0, one.stderr);
    assert.is(one.stdout.trim(), '1');

    // The demo's service role is the hardened one check --live asks for.
    const live = spawnSync(process.execPath, ['bin/pgveil.js', 'check', '--config', join(dir, 'pgveil.yaml'), '--live'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    assert.is(live.status, 0, live.stdout + live.stderr);
    assert.match(live.stdout + live.stderr, /live check: clean/);

    const who = runLine(bob, `-tAc "select current_user, current_setting('application_name')"`);
    assert.is(who.status, 0, who.stderr);
    assert.match(who.stdout.trim(), /^pgveil_service\|pgveil:bob@globex\.com:psql/);

    const full = runLine(verifyFull, `-tAc 'select 2'`);
    assert.is(full.status, 0, full.stderr);
    assert.is(full.stdout.trim(), '2');

    // The policy is enforced: alice sees her org only, with masked values; hana (hr) sees raw SSNs.
    const masked = runLine(alice, `-tAc "select ssn, salary is null, email from crm.employees order by id limit 1"`);
    assert.is(masked.status, 0, masked.stderr);
    assert.match(masked.stdout.trim(), /^X+\d{4}\|t\|a\*\*\*@acme\.example$/);
    const orgs = runLine(bob, `-tAc "select string_agg(distinct org_id, ',') from crm.employees"`);
    assert.is(orgs.stdout.trim(), 'globex');
    const hana = lines.find((l) => l.includes('user=hana@acme.com'));
    if (hana) {
      const raw = runLine(hana, `-tAc "select ssn from crm.employees order by id limit 1"`);
      assert.match(raw.stdout.trim(), /^\d{3}-\d{2}-\d{4}$/);
    }

    // A partition named directly must not hand bob acme's rows: pgveil refuses
    // or filters it, and upstream the service role has no grant on it anyway.
    const partition = runLine(bob, `-tAc 'select count(*) from crm.events_acme'`);
    assert.ok(partition.status !== 0 || partition.stdout.trim() === '0', `bob read crm.events_acme: ${partition.stdout}`);

    // Another user's password must not work: the line's user with bob's password.
    const bobPassword = /^PGPASSWORD=('[^']*') /.exec(bob)?.[1] ?? '';
    const wrong = runLine(alice.replace(/^PGPASSWORD='[^']*' /, `PGPASSWORD=${bobPassword} `), `-tAc 'select 1'`);
    assert.is.not(wrong.status, 0);
    assert.match(wrong.stderr, /password authentication failed|28P01/);

    // Ctrl-C in a terminal signals the whole foreground group, postgres included.
    process.kill(-pid, 'SIGINT');
    const code = await exited(demo.child, 20_000);
    assert.is(code, 0, demo.stderr);
    assert.not.ok(existsSync(dir), 'temp dir removed');
    assert.not.ok(await portOpen(proxyPort), 'pgveil no longer listens');
    assert.not.ok(await portOpen(pgPort), 'postgres is stopped');
    for (const l of lines) {
      const pw = /^PGPASSWORD='([^']*)'/.exec(l)?.[1] ?? '';
      assert.ok(pw.length >= 16, l);
      assert.not.ok(demo.stderr.includes(pw), 'no password in the log output');
    }
  } finally {
    if (demo.child.exitCode === null) killGroup(pid);
  }
});

test('pgveil demo: SIGTERM to the demo alone also stops postgres and exits 0', async () => {
  const demo = await startDemo();
  const pid = demo.child.pid as number;
  try {
    const { dir, pgPort } = bannerInfo(demo.stdout);
    process.kill(pid, 'SIGTERM');
    const code = await exited(demo.child, 20_000);
    assert.is(code, 0, demo.stderr);
    assert.not.ok(existsSync(dir), 'temp dir removed');
    assert.not.ok(await portOpen(pgPort), 'postgres is stopped');
    assert.not.match(demo.stderr, /TypeError|Error:/, demo.stderr);
  } finally {
    if (demo.child.exitCode === null) killGroup(pid);
  }
});

test.run();
