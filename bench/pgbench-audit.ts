// The audit log's cost under pgbench -S: pgveil with
// `audit: { statements: fingerprint }` (B) against the same pgveil without
// (A), run interleaved in rounds of A B B A per protocol, so drift on a busy
// machine falls on both alike. Each round gives a tps ratio; the median of
// the rounds is the figure (a single round moves by about ±5% on a 2-core
// machine where pgbench, PostgreSQL and pgveil share the cores).
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startProxy } from '../src/session/server.js';
import { silentLogger } from '../src/observe/log.js';
import { median, runPgbench } from './pgbench-run.js';
import type { Table } from './results.js';

export interface AuditCostSpec {
  /** The unaudited pgveil's config file; the audited one is this plus an audit section. */
  configFile: string;
  /** libpq environment reaching the unaudited pgveil (PGPORT is swapped for the audited one). */
  env: NodeJS.ProcessEnv;
  clients: number;
  seconds: number;
  rounds: number;
}

export async function auditCost(spec: AuditCostSpec): Promise<{ table: Table; data: unknown }> {
  const file = join(mkdtempSync(join(tmpdir(), 'pgveil-bench-audit-')), 'audit.jsonl');
  const configFile = join(dirname(spec.configFile), 'pgveil-audited.yaml');
  writeFileSync(configFile, `${readFileSync(spec.configFile, 'utf8')}\naudit: { file: ${file}, statements: fingerprint, onFailure: block }\n`);
  const audited = await startProxy({ configFile, logger: silentLogger, watch: false });
  const table: Table = {
    caption: `Audit log cost: pgbench -S, ${spec.clients} clients, ${spec.seconds} s a run, ${spec.rounds} rounds of A B B A (A without, B with audit statements: fingerprint)`,
    columns: ['protocol', 'A tps', 'B tps', 'B/A per round', 'B/A median', 'pgveil CPU µs/stmt A', 'B'],
    rows: [],
  };
  const data: unknown[] = [];
  try {
    for (const mode of ['simple', 'extended', 'prepared'] as const) {
      const run = (port?: number) => runPgbench({ mode, clients: spec.clients, seconds: spec.seconds, env: port ? { ...spec.env, PGPORT: String(port) } : spec.env, proxyPid: process.pid });
      const a: number[] = [], b: number[] = [], cpuA: number[] = [], cpuB: number[] = [], ratios: number[] = [];
      await run(); // warm both
      await run(audited.port);
      for (let round = 0; round < spec.rounds; round++) {
        const a1 = await run(), b1 = await run(audited.port), b2 = await run(audited.port), a2 = await run();
        a.push(a1.tps, a2.tps);
        b.push(b1.tps, b2.tps);
        cpuA.push(a1.cpuPerStatement, a2.cpuPerStatement);
        cpuB.push(b1.cpuPerStatement, b2.cpuPerStatement);
        ratios.push((b1.tps + b2.tps) / (a1.tps + a2.tps));
      }
      table.rows.push([mode, median(a).toFixed(0), median(b).toFixed(0), ratios.map((r) => r.toFixed(3)).join(' '), median(ratios).toFixed(3), median(cpuA).toFixed(1), median(cpuB).toFixed(1)]);
      data.push({ mode, tpsWithout: a, tpsWith: b, cpuWithout: cpuA, cpuWith: cpuB, roundRatios: ratios });
    }
  } finally {
    await audited.close();
    const lines = countLines(file);
    rmSync(dirname(file), { recursive: true, force: true }); // hundreds of MB after a long run
    console.log(`audit comparison: ${lines} audit lines written, then removed`);
  }
  return { table, data };
}

/** Newlines in a file, read in chunks (an audit file of a long run is larger than a string may be). */
function countLines(file: string): number {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch { return 0; }
  const chunk = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      for (let i = chunk.indexOf(10, 0); i !== -1 && i < n; i = chunk.indexOf(10, i + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}
