// Runs a command asynchronously: the proxy under test lives in the test
// process, so a blocking spawnSync would starve it. Also the `pgveil` CLI and
// `pgveil serve` as child processes, and a poll with a bound.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RunResult { status: number | null; stdout: string; stderr: string }

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
    child.stdin.end(opts.input ?? '');
  });
}

/** psql with a connection string, a password in the environment and one command; -X ignores ~/.psqlrc. */
export function psql(conninfo: string, sqlText: string, password: string): Promise<RunResult> {
  return run('psql', [conninfo, '-X', '-tA', '-c', sqlText], { env: { ...process.env, PGPASSWORD: password } });
}

/** bin/pgveil.js of this checkout (the tests run from build/test/<dir>/). */
export const pgveilBin = fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url));

/** `pgveil <args>` as a child process (30 s unless `timeoutMs`). */
export function pgveil(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [pgveilBin, ...args], { timeoutMs: 30000, ...opts });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms for up to `ms` (a bound against hangs, not a timing assertion). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `pgveil serve --config F` as a child process (log level info); resolves once `ready` appears in its log. */
export async function serveChild(configFile: string, ready: string): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [pgveilBin, 'serve', '--config', configFile], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(`"${ready}" from pgveil serve`, () => out.includes(ready) || child.exitCode !== null, 60000);
  if (!out.includes(ready)) throw new Error(`pgveil serve exited before "${ready}":\n${out}`);
  return { child, output: () => out, exited };
}
