// When workers help: pgbench -S through `pgveil serve` with `workers: 1` and
// with `workers: auto` (one per core), interleaved per round, in the simple
// and prepared protocols at 8 and 32 clients. Reported: tps (median of the
// rounds), the ratio auto / 1, and pgveil's CPU per statement over all its
// processes. Workers add cores to pgveil; they cannot add cores the machine
// does not have, so on a machine whose cores PostgreSQL and the clients
// already fill, expect little or nothing.
// Run: npm run build:test && node build/bench/workers.js [seconds] [rounds]
import { availableParallelism } from 'node:os';
import { startPgbenchDatabase, throughPgveil } from './pgbench-setup.js';
import { median, runPgbench, type RunResult } from './pgbench-run.js';
import { processTreeCpuMicros } from './process-cpu.js';
import { startPgveilProcess, type PgveilProcess } from './pgveil-process.js';
import { saveResults, type Table } from './results.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Math.max(1, Number(process.argv[3] ?? 3));

const { h } = await startPgbenchDatabase();
const procs: PgveilProcess[] = [];
try {
  const variants = [
    { name: 'workers: 1', proc: await startPgveilProcess(h, { configLines: ['workers: 1'], logLevel: 'warn' }) },
    { name: 'workers: auto', proc: await startPgveilProcess(h, { configLines: ['workers: auto'], logLevel: 'warn' }) },
  ];
  procs.push(...variants.map((v) => v.proc));
  const table: Table = {
    caption: `pgbench -S through pgveil serve, ${seconds} s a run, ${rounds} rounds; auto = ${availableParallelism()} workers here`,
    columns: ['protocol', 'clients', 'workers: 1 tps', 'workers: auto tps', 'auto / 1 (per round)', 'pgveil CPU µs/stmt, 1', 'auto'],
    rows: [],
  };
  const data: unknown[] = [];
  for (const mode of ['simple', 'prepared'] as const) {
    for (const clients of [8, 32]) {
      const runs: RunResult[][] = [[], []];
      const run = async (i: number, secs: number) => {
        const p = variants[i].proc;
        const env = throughPgveil(p.port);
        const before = processTreeCpuMicros(p.pid);
        const r = await runPgbench({ mode, clients, seconds: secs, env });
        return { ...r, cpuPerStatement: (processTreeCpuMicros(p.pid) - before) / r.transactions };
      };
      await run(0, 2); await run(1, 2); // warm both
      for (let round = 0; round < rounds; round++) {
        for (const i of round % 2 ? [1, 0] : [0, 1]) runs[i].push(await run(i, seconds));
      }
      const ratios = runs[1].map((r, k) => r.tps / runs[0][k].tps);
      table.rows.push([mode, clients, median(runs[0].map((r) => r.tps)).toFixed(0), median(runs[1].map((r) => r.tps)).toFixed(0),
        `${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(' ')})`,
        median(runs[0].map((r) => r.cpuPerStatement)).toFixed(1), median(runs[1].map((r) => r.cpuPerStatement)).toFixed(1)]);
      data.push({ mode, clients, one: runs[0], auto: runs[1] });
    }
  }
  saveResults({
    name: 'workers',
    title: 'When workers help: workers 1 against auto',
    notes: ['pgveil runs as `pgveil serve` in its own processes (the primary and its workers); CPU is the whole process tree\'s. pgbench and PostgreSQL share the same machine, so workers only help as far as cores are idle.'],
    tables: [table],
    data,
  });
} finally {
  for (const p of procs) await p.stop();
  await h.close();
}
