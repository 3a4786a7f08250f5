// pgveil in a child process of its own (`node bin/pgveil.js serve --config`),
// as deployed, so what a bench reads of its memory or CPU is the proxy's
// alone and not the bench's clients'. The config is a copy of the given one
// listening on a free fixed port.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/demo/embedded-postgres.js';

export interface PgveilProcess {
  pid: number;
  port: number;
  /** Resolves with the exit code (or signal) if the process ends. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** Memory of a process from /proc/<pid>/status, in MiB: VmHWM (peak resident) and VmRSS (resident now). */
export function processMemoryMiB(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwm: kib('VmHWM') / 1024, rss: kib('VmRSS') / 1024 };
}

export async function startPgveilProcess(configFile: string): Promise<PgveilProcess> {
  const port = await freePort();
  const ownConfig = configFile.replace(/\.yaml$/, `-child-${port}.yaml`);
  const text = readFileSync(configFile, 'utf8');
  if (!/^listen: \{ host: 127\.0\.0\.1, port: 0 \}$/m.test(text)) throw new Error(`startPgveilProcess: no 'listen: { host: 127.0.0.1, port: 0 }' line in ${configFile}`);
  writeFileSync(ownConfig, text.replace(/^listen: .*$/m, `listen: { host: 127.0.0.1, port: ${port} }`));
  const bin = fileURLToPath(new URL('../../bin/pgveil.js', import.meta.url));
  // PGVEIL_BENCH_PROFILE=dir writes a CPU profile of the proxy process there (as bench/roundtrip.ts does).
  const profile = process.env.PGVEIL_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PGVEIL_BENCH_PROFILE}`] : [];
  const child: ChildProcess = spawn(process.execPath, [...profile, bin, 'serve', '--config', ownConfig], {
    env: { ...process.env, PGVEIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
  const deadline = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`pgveil did not start listening on ${port} (${await Promise.race([exited, Promise.resolve('still running')])})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid: child.pid!, port, exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
