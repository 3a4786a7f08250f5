// One pgbench -S run against one target, with what the pgbench bench reports
// of it: tps, latency percentiles from pgbench's per-transaction log, and the
// CPU the target proxy spent per statement (each -S transaction is one
// statement). A run's log files are read and removed at once.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processCpuMicros } from './process-cpu.js';

export function pgbench(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgbench exited ${code}:\n${out}`))));
  });
}

export interface RunResult {
  tps: number;
  transactions: number;
  /** Latency percentiles in ms, from the sampled per-transaction log. */
  p50: number;
  p99: number;
  /** The proxy's CPU per statement in µs (NaN when there is no proxy process to read). */
  cpuPerStatement: number;
}

export interface RunSpec {
  mode: 'simple' | 'extended' | 'prepared';
  clients: number;
  seconds: number;
  env: NodeJS.ProcessEnv;
  /** The proxy whose CPU is read (undefined: direct to PostgreSQL). */
  proxyPid?: number;
}

/** Every tenth transaction is logged: enough for a p99 at these rates, little I/O on the machine under test. */
const SAMPLING_RATE = 0.1;

export async function runPgbench(spec: RunSpec): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-bench-pgbench-log-'));
  const args = ['-S', '-n', '-M', spec.mode, '-c', String(spec.clients), '-j', String(Math.min(spec.clients, 2)), '-T', String(spec.seconds),
    '--log', `--log-prefix=${join(dir, 'tx')}`, `--sampling-rate=${SAMPLING_RATE}`];
  try {
    const before = spec.proxyPid === undefined ? Number.NaN : processCpuMicros(spec.proxyPid);
    const out = await pgbench(args, spec.env);
    const used = spec.proxyPid === undefined ? Number.NaN : processCpuMicros(spec.proxyPid) - before;
    const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);
    const latencies = readLatencies(dir);
    return {
      tps: Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN),
      transactions,
      p50: percentile(latencies, 0.5) / 1000,
      p99: percentile(latencies, 0.99) / 1000,
      cpuPerStatement: used / transactions,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Transaction latencies in µs from pgbench's log files (`client tx latency_us script epoch us …`), sorted. */
function readLatencies(dir: string): Float64Array {
  const values: number[] = [];
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const latency = Number(line.split(' ')[2]);
      if (line && Number.isFinite(latency)) values.push(latency);
    }
  }
  return Float64Array.from(values).sort();
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : Number.NaN;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs each target once per round, the order rotated each round so drift on a busy machine falls on all alike; each target's runs in round order. */
export async function interleaved<T>(targets: readonly T[], rounds: number, run: (target: T) => Promise<RunResult>): Promise<RunResult[][]> {
  const runs: RunResult[][] = targets.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const i = (k + round) % targets.length;
      runs[i].push(await run(targets[i]));
    }
  }
  return runs;
}
