// Runs a command asynchronously: the proxy under test lives in the test
// process, so a blocking spawnSync would starve it.
import { spawn } from 'node:child_process';

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
