// pgveil in its own child process (`pgveil serve` with a copy of a config on
// a fixed port), so a bench can read its CPU from /proc/<pid>/stat without
// counting the bench's own clients. Logs at the default level (info), as
// deployed, to a file next to the config.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/demo/embedded-postgres.js';

export interface PgveilProcess {
  port: number;
  pid: number;
  logFile: string;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; resolves when it is gone. */
  stop(): Promise<void>;
}

export async function startPgveilProcess(configFile: string): Promise<PgveilProcess> {
  const port = await freePort();
  // Next to the original, so its relative paths (certs, users, policy) stay valid.
  const file = configFile.replace(/\.yaml$/, '-process.yaml');
  const text = readFileSync(configFile, 'utf8');
  if (!/port: 0 \}/.test(text)) throw new Error(`startPgveilProcess: no "port: 0 }" listen line in ${configFile}`);
  writeFileSync(file, text.replace('port: 0 }', `port: ${port} }`));
  const logFile = file.replace(/\.yaml$/, '.log');
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [fileURLToPath(new URL('./pgveil-serve.js', import.meta.url)), 'serve', '--config', file], {
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => { running = false; });
  const stop = async () => {
    if (!running) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  for (let i = 0; ; i++) { // ready when it accepts connections (after reading the upstream catalog)
    if (!running) throw new Error(`pgveil exited at start; its log:\n${tail(logFile)}`);
    if (await accepts(port)) break;
    if (i === 300) {
      await stop();
      throw new Error(`pgveil did not listen within 30 s; its log:\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, pid: child.pid!, logFile, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export function tail(file: string, lines = 20): string {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}
