// Where each bench leaves its figures: bench/results/<name>.md (the table a
// person reads, with the date and the machine), <name>.json (the same
// figures for tools and for comparing runs) and <name>.svg when the bench
// draws a chart. The README shows the latest of these.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/results in the repository (this file runs as build/bench/results.js). */
export const resultsDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
  };
}

export interface Table {
  caption: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

/** A GitHub-flavoured Markdown table; numbers right-aligned. */
export function markdownTable(t: Table): string {
  const numeric = t.columns.map((_, i) => t.rows.length > 0 && t.rows.every((r) => typeof r[i] === 'number' || /^[\d.,×%+−-]+$/.test(String(r[i]))));
  const cell = (v: string | number) => String(v).replace(/\|/g, '\\|');
  return [
    `| ${t.columns.map(cell).join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** The same table laid out for a terminal. */
export function textTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => String(r[i]).length)));
  const line = (cells: Array<string | number>) => cells.map((v, i) => (typeof v === 'number' ? String(v).padStart(widths[i]) : String(v).padEnd(widths[i]))).join(' | ');
  return [t.caption, line(t.columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...t.rows.map(line)].join('\n');
}

export interface BenchResult {
  /** File name stem: bench/results/<name>.*. */
  name: string;
  title: string;
  /** What was run and how to read it: one paragraph each. */
  notes: string[];
  tables: Table[];
  /** The raw figures (every round, every percentile), for the JSON file. */
  data: unknown;
  svg?: string;
}

/** Prints the tables and writes the result files; returns their paths. */
export function saveResults(r: BenchResult): string[] {
  const m = machine();
  mkdirSync(resultsDir, { recursive: true });
  const written: string[] = [];
  const md = [
    `## ${r.title}`,
    '',
    `${m.date}; ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, Node.js ${m.node}.`,
    '',
    ...r.notes.flatMap((n) => [n, '']),
    ...r.tables.flatMap((t) => [`**${t.caption}**`, '', markdownTable(t), '']),
    ...(r.svg ? [`![${r.title}](${r.name}.svg)`, ''] : []),
  ].join('\n');
  for (const [ext, text] of [['md', md], ['json', JSON.stringify({ name: r.name, title: r.title, machine: m, notes: r.notes, tables: r.tables, data: r.data }, null, 2) + '\n'], ...(r.svg ? [['svg', r.svg]] : [])] as const) {
    const file = join(resultsDir, `${r.name}.${ext}`);
    writeFileSync(file, text);
    written.push(file);
  }
  for (const t of r.tables) console.log(`\n${textTable(t)}`);
  console.log(`\nresults: ${written.join(', ')}`);
  return written;
}
