// Shared setup of the operations tests: admin tokens, a proxy started in
// this process with a logger whose lines the test reads, and the log lines of
// a `pgveil serve` child. Derived configs, clients, the CLI and waits are in
// test/helpers (harness.ts, run.ts).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../src/observe/log.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import type { LogLine } from '../helpers/harness.js';

/** A fresh plain token (base64 of 24 random bytes: 32 characters). */
export function newToken(): string {
  return randomBytes(24).toString('base64');
}

export function startProxyWith(configFile: string, logger: Logger): Promise<ProxyHandle> {
  return startProxy({ configFile, logger, watch: false });
}

/** The log lines of a child's output (JSON lines; anything else skipped). */
export function logLines(output: string): LogLine[] {
  return output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}
