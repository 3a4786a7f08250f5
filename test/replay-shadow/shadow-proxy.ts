// Test helpers for the shadow policy: the active and the tightening
// candidate policies the shadow and replay tests share, a pgveil started from
// the harness's config plus `shadow:` (and optional extra config lines), and
// waits on its counters (the candidate decides after the client's answer, off
// its path).
import { employeesPolicy, policyDefaults, writeConfig, type Harness } from '../helpers/harness.js';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { createLogger, silentLogger } from '../../src/observe/log.js';

/** The active policy (the harness adds its defaults): crm.employees by org with ssn masked, lookup denied to globex. */
export const activePolicy = `${employeesPolicy}  public.lookup:
    access:
      deny: { orgs: [globex] }
`;

/** Tightens: lookup denied to everyone, salary nulled. Protects the same relations (the active catalog serves it). */
export const tighterPolicy = `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
      salary: { mask: "null" }
  public.lookup:
    access:
      deny: { orgs: [acme, globex] }
`;

/** Writes a config beside the harness's: the same settings plus `shadow: <shadowFile>` and the top-level lines `extra`. */
export function shadowConfig(h: Harness, shadowFile: string, ...extra: string[]): string {
  return writeConfig(h, [`shadow: ${JSON.stringify(shadowFile)}`, ...extra]);
}

export function startShadowProxy(configFile: string): Promise<ProxyHandle> {
  return startProxy({ configFile, logger: process.env.PGVEIL_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger });
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
