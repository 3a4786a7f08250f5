// The input of `pgveil policy replay`: the statement records of audit files
// (one JSON object per line), read line by line, grouped by user and text.
// Records of other events are skipped; statement records without `text`
// (the log was written with `statements: fingerprint` or `none`) are counted,
// not replayed; a line that is not a JSON object is counted as unreadable.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readLines } from '../audit/read-lines.js';
import type { StatementDecision } from '../audit/record.js';
import { UsageError } from './args.js';

/** One distinct text one user sent, with how often and how the proxy decided it then. */
export interface RecordedStatement {
  user: string;
  text: string;
  /** Statement records with this user and text. */
  count: number;
  /** Decisions the records carry (one, unless the policy changed while the log was written). */
  recorded: Set<StatementDecision>;
}

export interface RecordedInput {
  files: string[];
  /** Statement records with a text, by user, then by text. */
  byUser: Map<string, Map<string, RecordedStatement>>;
  /** Statement records with a text (all of them, before grouping). */
  replayable: number;
  /** Statement records without a text: nothing to decide. */
  withoutText: number;
  /** Lines that are not a JSON object (a torn last line, another file in the directory). */
  unreadable: number;
}

const decisions: ReadonlySet<string> = new Set<StatementDecision>(['forwarded', 'rewritten', 'refused', 'syntax_error']);

/** Files in the order given; a directory contributes its `*.jsonl` files, sorted by name. Unreadable paths are usage errors. */
export function auditFiles(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const path of paths) {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) throw new UsageError(`no such file or directory: ${path}`);
    if (stat.isDirectory()) {
      const names = readdirSync(path).filter((n) => n.endsWith('.jsonl')).sort();
      if (!names.length) throw new UsageError(`no audit files (*.jsonl) in ${path}`);
      files.push(...names.map((n) => join(path, n)));
    } else {
      files.push(path);
    }
  }
  return files;
}

export async function readRecordedStatements(paths: readonly string[]): Promise<RecordedInput> {
  const input: RecordedInput = { files: auditFiles(paths), byUser: new Map(), replayable: 0, withoutText: 0, unreadable: 0 };
  for (const file of input.files) {
    try {
      for await (const line of readLines(file)) add(input, line.bytes.toString('utf8'));
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return input;
}

function add(input: RecordedInput, line: string): void {
  if (!line.trim()) return;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    input.unreadable++;
    return;
  }
  if (!record || typeof record !== 'object' || Array.isArray(record)) { input.unreadable++; return; }
  const r = record as Record<string, unknown>;
  if (r.event !== 'statement') return;
  if (typeof r.text !== 'string' || typeof r.user !== 'string') { input.withoutText++; return; }
  input.replayable++;
  const texts = input.byUser.get(r.user) ?? new Map<string, RecordedStatement>();
  input.byUser.set(r.user, texts);
  const seen = texts.get(r.text) ?? { user: r.user, text: r.text, count: 0, recorded: new Set<StatementDecision>() };
  texts.set(r.text, seen);
  seen.count++;
  if (typeof r.decision === 'string' && decisions.has(r.decision)) seen.recorded.add(r.decision as StatementDecision);
}
