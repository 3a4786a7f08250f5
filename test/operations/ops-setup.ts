// Shared setup of the operations tests: config files derived from the
// harness's (an admin section with a token, other top-level keys), a proxy
// started on one in this process with a logger whose lines the test reads,
// real `pgveil` CLI and `pgveil serve` child processes, and small waits.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createLogger, type Logger } from '../../src/observe/log.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { run, type RunResult } from '../helpers/run.js';
import { clientConfig, type Harness } from '../helpers/harness.js';

export const pgveilBin = fileURLToPath(new URL('../../../bin/pgveil.js', import.meta.url));

/** A fresh plain token (base64 of 24 random bytes: 32 characters). */
export function newToken(): string {
  return randomBytes(24).toString('base64');
}

let configs = 0;

/**
 * Writes a config next to the harness's (so its relative paths hold) with
 * each top-level `key: …` line of `lines` replacing the harness's line of that
 * key, or added.
 */
export function writeConfig(h: Harness, lines: string[]): string {
  let text = readFileSync(h.configFile, 'utf8');
  for (const line of lines) {
    const key = /^(\w+):/.exec(line)?.[1];
    if (!key) throw new Error(`writeConfig: not a top-level key line: ${line}`);
    const existing = new RegExp(`^${key}:.*$`, 'm');
    text = existing.test(text) ? text.replace(existing, line) : `${text.trimEnd()}\n${line}\n`;
  }
  const file = join(h.dir, `pgveil-ops-${++configs}.yaml`);
  writeFileSync(file, text);
  return file;
}

export interface LogLine { level: string; msg: string; [field: string]: unknown }

/** A logger that keeps every line (debug and up) for the test to read. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { logger: createLogger({ level: 'debug', write: (line) => lines.push(JSON.parse(line) as LogLine) }), lines };
}

export function startProxyWith(configFile: string, logger: Logger): Promise<ProxyHandle> {
  return startProxy({ configFile, logger, watch: false });
}

/** `pgveil <args>` as a child process. */
export function pgveil(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return run(process.execPath, [pgveilBin, ...args], { env, timeoutMs: 30000 });
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

/** A connected node-postgres client to a proxy on `port` (plain TCP; the harness config must allow tls prefer). */
export async function connectClient(h: Harness, port: number, user: string, extra: Record<string, unknown> = {}): Promise<pg.Client & { lastError?: { code?: string; message: string } }> {
  const c = new pg.Client({ ...clientConfig(h, user), port, ssl: false, ...extra }) as pg.Client & { lastError?: { code?: string; message: string } };
  c.on('error', (err: Error & { code?: string }) => { c.lastError ??= { code: err.code, message: err.message }; });
  await c.connect();
  return c;
}

/** The error a connect attempt ends with (undefined when it logged in; the client is then closed). */
export async function connectError(h: Harness, port: number, user: string, extra: Record<string, unknown> = {}): Promise<{ code?: string; message: string } | undefined> {
  const c = new pg.Client({ ...clientConfig(h, user), port, ssl: false, connectionTimeoutMillis: 10000, ...extra });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
  await c.end();
  return undefined;
}

/** `pgveil serve --config F` as a child process; resolves once `ready` appears in its log. */
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

/** The log lines of a child's output (JSON lines; anything else skipped). */
export function logLines(output: string): LogLine[] {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}
