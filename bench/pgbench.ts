// pgbench -S (select-only) straight to PostgreSQL, through PgBouncer (session
// pooling: the same one-server-connection-per-client shape as pgveil;
// installed by `bash scripts/install-bench-tools.sh`) and through pgveil with
// a policy on pgbench_accounts (ownership filter and a mask, so every
// statement pgveil sees is really rewritten), in the simple, extended and
// prepared protocols, at 1, 8 and 32 clients. The three targets run
// interleaved (the order rotates each round) so drift on a busy machine
// falls on all alike; each cell is the median of its rounds. Reported: tps,
// p50/p99 latency (pgbench's sampled per-transaction log), pgveil's ratio to
// direct and to PgBouncer (median and worst round), and each proxy's CPU per
// statement from its own counters, the figure that decides how many cores a
// proxy needs. Then the audit log's cost (pgbench-audit.ts) and, with
// --baselines, where the time goes (pgbench-baselines.ts).
// Run: npm run build:test && node build/bench/pgbench.js [seconds] [rounds]
//        [--clients=1,8,32] [--modes=simple,extended,prepared] [--audit-rounds=N (0: skip)] [--audit-only] [--baselines]
import { startPgbenchDatabase, throughPgveil } from './pgbench-setup.js';
import { auditCost } from './pgbench-audit.js';
import { whereTheTimeGoes } from './pgbench-baselines.js';
import { interleaved, median, runPgbench, type RunResult } from './pgbench-run.js';
import { startPgBouncer, type PgBouncer } from './pgbouncer.js';
import { barChart } from './chart.js';
import { saveResults, type Table } from './results.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seconds = Number(positional[0] ?? 8);
const rounds = Math.max(1, Number(positional[1] ?? 3));
const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const clientCounts = (option('clients') ?? '1,8,32').split(',').map(Number);
const modes = (option('modes') ?? 'simple,extended,prepared').split(',') as Array<'simple' | 'extended' | 'prepared'>;
const auditRounds = Number(option('audit-rounds') ?? 3);
const baselines = process.argv.includes('--baselines');
const BASELINE_CLIENTS = 8;
// --audit-only: just the audit log's cost (no direct / PgBouncer / pgveil matrix)
const auditOnly = process.argv.includes('--audit-only');

type Target = 'direct' | 'pgbouncer' | 'pgveil';
interface Cell { mode: string; clients: number; runs: Record<Target, RunResult[]> }

const { h, direct } = await startPgbenchDatabase();
let bouncer: PgBouncer | undefined;
try {
  // Sized for the most clients any run sends it (the baselines run BASELINE_CLIENTS whatever --clients says).
  bouncer = await startPgBouncer({ port: h.pg.port, user: 'postgres', password: h.pg.password }, Math.max(...clientCounts, baselines ? BASELINE_CLIENTS : 0) + 2);
  const proxied = throughPgveil(h.proxy.port);
  const targets: Array<{ name: Target; env: NodeJS.ProcessEnv; pid?: number }> = [
    { name: 'direct', env: direct },
    ...(bouncer ? [{ name: 'pgbouncer' as const, env: bouncer.env, pid: bouncer.pid }] : []),
    { name: 'pgveil', env: proxied, pid: process.pid }, // pgveil runs in this process; pgbench is a child, not counted
  ];
  const cells: Cell[] = [];
  for (const mode of auditOnly ? [] : modes) {
    for (const clients of clientCounts) {
      const cell: Cell = { mode, clients, runs: { direct: [], pgbouncer: [], pgveil: [] } };
      for (const t of targets) await runPgbench({ mode, clients, seconds: 2, env: t.env }); // warm caches and connections
      const runs = await interleaved(targets, rounds, (t) => runPgbench({ mode, clients, seconds, env: t.env, proxyPid: t.pid }));
      targets.forEach((t, i) => { cell.runs[t.name] = runs[i]; });
      cells.push(cell);
      console.log(`${mode} ${clients} clients: ${targets.map((t) => `${t.name} ${median(cell.runs[t.name].map((r) => r.tps)).toFixed(0)} tps`).join(', ')}`);
    }
  }
  const tables: Table[] = auditOnly ? [] : [mainTable(cells, Boolean(bouncer)), targetTable(cells, Boolean(bouncer))];
  const data: Record<string, unknown> = { seconds, rounds, cells };
  if (auditRounds > 0 || auditOnly) {
    const audit = await auditCost({ configFile: h.configFile, env: proxied, clients: 8, seconds, rounds: Math.max(1, auditRounds) });
    tables.push(audit.table);
    data.audit = audit.data;
  }
  if (baselines) tables.push(await whereTheTimeGoes({ configFile: h.configFile, direct, proxied, bouncer: bouncer && { env: bouncer.env, pid: bouncer.pid }, clients: BASELINE_CLIENTS, seconds, rounds }));
  saveResults({
    name: auditOnly ? 'pgbench-audit' : 'pgbench',
    title: 'pgbench -S: direct, PgBouncer and pgveil',
    notes: [
      `pgbench -S (one primary-key SELECT per transaction) on a scale-1 database, ${seconds} s a run, ${rounds} rounds with the order of the targets rotated; each cell is the median of its rounds. Plaintext client links. pgveil's policy filters pgbench_accounts (bid = 1) and masks a column, so each statement is rewritten; PgBouncer runs in session pooling.${bouncer ? '' : ' PgBouncer was not installed (bash scripts/install-bench-tools.sh installs it): its columns are empty.'}`,
      'CPU µs/stmt is each proxy\'s own user + system CPU time over the run divided by the statements it carried: what it costs in cores, independent of pgbench sharing the machine. pgbench, PostgreSQL and the proxy share the machine\'s cores, so tps here is lower than on separate machines.',
    ],
    tables,
    data,
    svg: auditOnly ? undefined : barChart(cells.filter((c) => c.clients === 8 || clientCounts.length === 1).map((c) => ({
      label: `${c.mode}, ${c.clients} clients`,
      bars: (['direct', 'pgbouncer', 'pgveil'] as const).filter((t) => c.runs[t].length).map((t) => ({ label: t, value: median(c.runs[t].map((r) => r.tps)) })),
    })), 'pgbench -S transactions per second (median of rounds)'),
  });
} finally {
  bouncer?.stop();
  await h.close();
}

function mainTable(cells: Cell[], withBouncer: boolean): Table {
  const med = (runs: RunResult[], f: (r: RunResult) => number) => (runs.length ? median(runs.map(f)) : Number.NaN);
  const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  return {
    caption: 'tps, latency (ms, p50 / p99) and proxy CPU per statement (µs)',
    columns: ['protocol', 'clients', 'direct tps', ...(withBouncer ? ['pgbouncer tps'] : []), 'pgveil tps', 'pgveil / direct',
      ...(withBouncer ? ['pgveil / pgbouncer (worst)'] : []), 'direct ms', ...(withBouncer ? ['pgbouncer ms'] : []), 'pgveil ms',
      ...(withBouncer ? ['pgbouncer CPU µs/stmt'] : []), 'pgveil CPU µs/stmt'],
    rows: cells.map((c) => {
      const { direct, pgbouncer, pgveil } = c.runs;
      const vsBouncer = pgveil.map((r, i) => r.tps / pgbouncer[i]?.tps);
      const lat = (runs: RunResult[]) => `${fmt(med(runs, (r) => r.p50), 3)} / ${fmt(med(runs, (r) => r.p99), 3)}`;
      return [c.mode, c.clients, fmt(med(direct, (r) => r.tps)), ...(withBouncer ? [fmt(med(pgbouncer, (r) => r.tps))] : []), fmt(med(pgveil, (r) => r.tps)),
        fmt(median(pgveil.map((r, i) => r.tps / direct[i].tps)), 2),
        ...(withBouncer ? [`${fmt(median(vsBouncer), 2)} (${fmt(Math.min(...vsBouncer), 2)})`] : []),
        lat(direct), ...(withBouncer ? [lat(pgbouncer)] : []), lat(pgveil),
        ...(withBouncer ? [fmt(med(pgbouncer, (r) => r.cpuPerStatement), 1)] : []), fmt(med(pgveil, (r) => r.cpuPerStatement), 1)];
    }),
  };
}

/** The performance targets at 8 clients: tps ≥ 1.0× PgBouncer (worst round ≥ 0.9×), CPU per statement ≤ 2× PgBouncer's. */
function targetTable(cells: Cell[], withBouncer: boolean): Table {
  const rows: Table['rows'] = [];
  for (const c of cells.filter((x) => x.clients === 8)) {
    if (!withBouncer) break;
    const ratios = c.runs.pgveil.map((r, i) => r.tps / c.runs.pgbouncer[i].tps);
    const cpu = median(c.runs.pgveil.map((r) => r.cpuPerStatement)) / median(c.runs.pgbouncer.map((r) => r.cpuPerStatement));
    const met = median(ratios) >= 1 && Math.min(...ratios) >= 0.9;
    rows.push([c.mode, `${median(ratios).toFixed(2)} (worst ${Math.min(...ratios).toFixed(2)})`, met ? 'met' : 'not met', cpu.toFixed(2), cpu <= 2 ? 'met' : 'not met']);
  }
  return { caption: 'Targets at 8 clients: pgveil tps ≥ 1.0× PgBouncer (worst round ≥ 0.9×); CPU per statement ≤ 2× PgBouncer\'s', columns: ['protocol', 'pgveil / pgbouncer tps', 'tps target', 'CPU ratio', 'CPU target'], rows };
}
