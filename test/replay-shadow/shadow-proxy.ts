// Test helpers for the shadow policy: a pgveil started from the harness's
// config plus `shadow:` (and optional extra config lines), and waits on its
// counters (the candidate decides after the client's answer, off its path).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Harness } from '../helpers/harness.js';
import { passwords } from '../helpers/harness.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { createLogger, silentLogger } from '../../src/observe/log.js';

let configs = 0;

/** Writes `pgveil-shadow-N.yaml` beside the harness's config: the same settings plus `shadow: <shadowFile>` and `extra`. */
export function shadowConfig(h: Harness, shadowFile: string, extra = ''): string {
  const file = join(h.dir, `pgveil-shadow-${++configs}.yaml`);
  writeFileSync(file, `${readFileSync(h.configFile, 'utf8')}shadow: ${JSON.stringify(shadowFile)}\n${extra}`);
  return file;
}

export function startShadowProxy(configFile: string): Promise<ProxyHandle> {
  return startProxy({ configFile, logger: process.env.PGVEIL_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger });
}

/** A node-postgres client of `user` through `proxy` (the harness runs without TLS for these tests). */
export async function connectTo(proxy: ProxyHandle, user: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user, password: passwords[user], database: 'analytics', ssl: false });
  c.on('error', () => {});
  await c.connect();
  return c;
}

export async function differences(proxy: ProxyHandle, kind: string): Promise<number> {
  return (await proxy.metrics.shadowDifferences.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

/** The value of an unlabelled counter or gauge. */
export async function metricValue(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}

/** Polls `read` until it returns `expected` (the shadow decides after the answer) or 15 s pass; returns the last value. */
export async function settle(read: () => Promise<number>, expected: number): Promise<number> {
  const deadline = Date.now() + 15000;
  for (;;) {
    const value = await read();
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}
