// How long one session's big statement holds up the others (threat E2 in docs/threat-model.md).
// Rewriting is synchronous, so while pgveil analyses a statement no other
// session of that process is served. One client sends statements with 10,
// 100 and 1,000 references to a protected table (and the finding's 15,000,
// which the statement budget refuses before parsing), each several times
// with a fresh comment so every run is a cache miss; another client sends
// `select 1` in a loop meanwhile and records its latency. Prints the curve
// as a table and writes an SVG chart to the temp dir.
// Run: npm run build:test && node build/bench/stall.js [runs]
// (runs per size, default 5; a real PostgreSQL and pgveil start in-process.)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig } from '../test/helpers/harness.js';

const runs = Number(process.argv[2] ?? 5);
if (!(runs >= 1)) throw new Error('usage: node build/bench/stall.js [runs ≥ 1]');

/** A select of `n` scalar sub-selects over the protected crm.employees (the finding's shape). */
const statement = (n: number, run: number) => `/* run ${run} */ select `
  + Array.from({ length: n }, (_, i) => `(select count(*) from crm.employees where id = ${i})`).join(', ');

interface Row { refs: number; bytes: number; outcome: string; statementMs: number; p50: number; p99: number; max: number; samples: number }

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0;
};

const h = await startHarness();
const big = new pg.Client(clientConfig(h, 'alice@acme.com'));
const probe = new pg.Client(clientConfig(h, 'bob@globex.com'));
await big.connect();
await probe.connect();
const rows: Row[] = [];
try {
  for (const refs of [10, 100, 1000, 15000]) {
    const latencies: number[] = [];
    let outcome = 'ok';
    let busy = true;
    // The probe: back-to-back `select 1`, each one's round trip recorded.
    const probing = (async () => {
      while (busy) {
        const t = performance.now();
        await probe.query('select 1');
        latencies.push(performance.now() - t);
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    for (let run = 0; run < runs; run++) {
      try {
        await big.query(statement(refs, run));
      } catch (err) {
        outcome = `refused ${(err as { code?: string }).code ?? ''}`;
      }
    }
    const statementMs = (performance.now() - started) / runs;
    busy = false;
    await probing;
    rows.push({
      refs, bytes: Buffer.byteLength(statement(refs, 0)), outcome, statementMs,
      p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: Math.max(...latencies), samples: latencies.length,
    });
  }
} finally {
  await big.end();
  await probe.end();
  await h.close();
}

const fmt = (v: number) => v.toFixed(1).padStart(9);
console.log('references     bytes  outcome        statement ms   select 1 p50   p99        max   (samples)');
for (const r of rows) {
  console.log(`${String(r.refs).padStart(10)} ${String(r.bytes).padStart(9)}  ${r.outcome.padEnd(13)} ${fmt(r.statementMs)}      ${fmt(r.p50)} ${fmt(r.p99)} ${fmt(r.max)}   (${r.samples})`);
}
const worst = Math.max(...rows.map((r) => r.max));
console.log(worst < 1000 ? `worst select 1 wait ${worst.toFixed(0)} ms: under a second` : `worst select 1 wait ${worst.toFixed(0)} ms: OVER a second`);
const svgFile = join(mkdtempSync(join(tmpdir(), 'pgveil-bench-')), 'stall.svg');
writeFileSync(svgFile, chart(rows));
console.log(`chart: ${svgFile}`);

/** Bars on a log scale per statement size: the big statement's time, and the probe's p99 and worst wait. */
function chart(data: Row[]): string {
  const series = [
    { key: 'statementMs', label: 'statement', colour: '#e76f51' },
    { key: 'p99', label: 'select 1 p99', colour: '#2a9d8f' },
    { key: 'max', label: 'select 1 max', colour: '#264653' },
  ] as const;
  const left = 150, right = 90, top = 44, barH = 16, gap = 4, groupGap = 26, width = 760;
  const plotW = width - left - right;
  const all = data.flatMap((r) => series.map((s) => r[s.key]));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.1, Math.min(...all)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 1000))));
  const x = (v: number) => Math.round((left + (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW) * 10) / 10;
  const height = top + data.length * (series.length * (barH + gap) + groupGap) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">Another session's select 1 behind one big statement, ms (log scale)</text>`,
    `<line x1="${x(1000)}" y1="${top - 8}" x2="${x(1000)}" y2="${height - 24}" stroke="#c00" stroke-dasharray="4 3"/>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    out.push(`<line x1="${x(d)}" y1="${top - 8}" x2="${x(d)}" y2="${height - 24}" stroke="#ddd"/>`,
      `<text x="${x(d)}" y="${height - 10}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toFixed(1)}</text>`);
  }
  let y = top;
  for (const r of data) {
    out.push(`<text x="${left}" y="${y + 2}" font-weight="bold">${r.refs} references (${r.bytes} B): ${r.outcome}</text>`);
    y += 8;
    for (const s of series) {
      out.push(`<text x="${left - 6}" y="${y + barH - 4}" text-anchor="end">${s.label}</text>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(r[s.key]) - left) * 10) / 10)}" height="${barH}" fill="${s.colour}"/>`,
        `<text x="${x(r[s.key]) + 4}" y="${y + barH - 4}" fill="#333">${r[s.key].toFixed(1)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  out.push('</svg>');
  return out.join('\n');
}
