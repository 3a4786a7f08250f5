// Walks one chain of audit files (rotated files by day, then the active file)
// and names the first line where the chain breaks, with the most likely cause:
// edited, removed, reordered, inserted, torn, a whole file missing, or a start
// record that does not match the file before. The format is in chain.ts.
import { FILE_START, GENESIS, TORN_TAIL, lineHash, rotatedDay } from './chain.js';
import { readLines, type RawLine } from './read-lines.js';

export interface ChainFile { path: string; name: string; /** a dated (rotated) name, else the active file */ rotated: boolean }

export interface ChainReport {
  files: string[];
  /** Event records (start and torn-line records not counted). */
  records: number;
  first: string | null;
  last: string | null;
  notes: string[];
  problem?: { file: string; line: number; message: string };
}

interface Rec { ts: string; seq: number; event: string; prev: string; [key: string]: unknown }
interface Line { no: number; bytes: number; hash: string; complete: boolean; record: Rec | null; invalid?: string }
/** The last line accepted into the chain. */
interface Head { hash: string; seq: number; file: ChainFile; no: number }

export async function verifyChain(files: ChainFile[]): Promise<ChainReport> {
  const report: ChainReport = { files: files.map((f) => f.path), records: 0, first: null, last: null, notes: [] };
  let head: Head | null = null;
  let previous: ChainFile | null = null;
  for (const file of files) {
    const lines = peekable(readLines(file.path));
    const fail = (line: number, message: string) => { report.problem = { file: file.path, line, message }; return report; };
    let seen = 0;
    for (let raw = await lines.next(); raw; raw = await lines.next()) {
      const line = toLine(raw);
      seen++;
      if (!line.complete) return fail(line.no, `line ${line.no} is incomplete (no newline at its end): a write cut short by a crash, or the file was truncated mid-line`);
      if (!line.record) {
        const next = await lines.peek();
        const torn = next ? toLine(next).record : null;
        if (torn?.event === TORN_TAIL && torn.sha256 === line.hash && torn.bytes === line.bytes && seen > 1) {
          report.notes.push(`${file.name}:${line.no}: a line cut short by a crash (${line.bytes} bytes), kept and recorded by line ${line.no + 1} when the writer restarted`);
          continue; // the torn-line record chains to the line before this one
        }
        return fail(line.no, `line ${line.no} is not an audit record (${line.invalid}): edited or corrupted`);
      }
      const problem = seen === 1
        ? checkStart(line, file, previous, head, files, report.notes)
        : await checkLink(line, head!, file, files, async () => { const n = await lines.peek(); return n ? toLine(n) : null; });
      if (problem) return fail(problem.line ?? line.no, problem.message);
      const r = line.record;
      head = { hash: line.hash, seq: r.seq, file, no: line.no };
      if (r.event !== FILE_START && r.event !== TORN_TAIL) {
        report.records++;
        report.first ??= r.ts;
        report.last = r.ts;
      }
    }
    if (seen === 0) {
      if (file.rotated) return fail(1, 'the file is empty: its records, start record included, were removed');
      report.notes.push(`${file.name} is empty: the writer has not written to it yet (at open a failed write leaves it so)`);
      continue;
    }
    previous = file;
  }
  return report;
}

type Problem = { line?: number; message: string } | null;

/** The first line of a file. The first file present may start after one that is not: expected after retention, so noted. */
function checkStart(line: Line, file: ChainFile, previous: ChainFile | null, head: Head | null, files: ChainFile[], notes: string[]): Problem {
  const r = line.record!;
  if (r.event !== FILE_START) {
    const gap = head && r.seq > head.seq + 1 ? ` (${seqRange(head.seq + 1, r.seq - 1)} missing)` : '';
    return { message: `line 1 is a "${r.event}" record, not the audit_file_start record every file begins with: the start of the file was removed${gap}` };
  }
  const named = String(r.file);
  if (file.rotated && named !== file.name) {
    return { message: `the start record names this file "${named}": the file was renamed (files swapped or replaced)` };
  }
  if (!file.rotated) {
    if (!rotatedDay(file.name, named)) return { message: `the start record names "${named}", not a dated name of ${file.name}: the file was renamed or replaced` };
    if (files.some((f) => f.name === named)) return { message: `the start record names "${named}", which is another file here: this file was copied or renamed` };
  }
  const said = r.previousFile === null ? null : String(r.previousFile);
  if (!previous || !head) {
    if (said === null) {
      if (r.prev !== GENESIS) return { message: 'the start record says this is the first file, but its prev is not the initial hash (64 zeros): edited' };
      if (r.seq !== 1) return { message: `the start record of the first file has seq ${r.seq}, not 1: edited` };
    } else {
      notes.push(`the chain starts at ${file.name}, after ${said}, which is not here (deleted by retention, or not given): that link is not checked`);
    }
    return null;
  }
  if (said !== previous.name) {
    if (said === null) return { message: `the start record says this is the first file, but ${previous.name} comes before it: edited, or files from another log mixed in` };
    if (files.some((f) => f.name === said)) return { message: `files are out of order: this file says it follows ${said}, but comes after ${previous.name}` };
    return { message: `a whole file is missing between ${previous.name} and ${file.name}: ${said}, which this file's start record names as the file before` };
  }
  if (r.prev !== head.hash) {
    const expected = head.seq + 1;
    if (r.seq > expected) return { message: `records were removed from the end of ${previous.name}: ${seqRange(expected, r.seq - 1)} missing after its line ${head.no}` };
    return { message: `the start record does not match the last line of ${previous.name} (line ${head.no}): that line was edited, or the start record was` };
  }
  if (r.seq !== head.seq + 1) return { message: `the start record was edited: its seq is ${r.seq}, expected ${head.seq + 1} (its prev is right)` };
  return null;
}

async function checkLink(line: Line, head: Head, file: ChainFile, files: ChainFile[], peek: () => Promise<Line | null>): Promise<Problem> {
  const r = line.record!;
  const expected = head.seq + 1;
  const k = line.no;
  if (r.prev === head.hash) {
    return r.seq === expected ? null : { message: `line ${k} was edited: its seq is ${r.seq}, expected ${expected} (its prev is right)` };
  }
  if (r.seq === expected) {
    const next = await peek();
    if (next?.record && next.record.prev === head.hash) return { message: `line ${k} was inserted: line ${next.no} follows line ${head.no} directly` };
    if (next?.record && next.record.prev === line.hash) return { line: head.no, message: `line ${head.no} was edited: its hash no longer matches the prev that line ${k} records` };
    return { message: `line ${k} does not chain to line ${head.no}: one of them was edited` };
  }
  if (r.seq > expected) {
    const at = await findSeq(files, expected);
    if (at) return { message: `line ${k} is out of order: it holds seq ${r.seq}, but seq ${expected} (the record after line ${head.no}) is at ${at}: lines were moved` };
    return { message: `${r.seq === expected + 1 ? 'a record was' : 'records were'} removed before line ${k}: ${seqRange(expected, r.seq - 1)} missing` };
  }
  const at = await findSeq(files, r.seq);
  return { message: `line ${k} is out of order or inserted: it holds seq ${r.seq}, already used ${at ? `at ${at}` : 'earlier'} (expected ${expected})` };
}

function seqRange(from: number, to: number): string {
  return from === to ? `seq ${from} is` : `seq ${from} to ${to} are`;
}

/** `file:line` of the first line holding this seq, scanning the chain's files in order. */
async function findSeq(files: ChainFile[], seq: number): Promise<string | null> {
  for (const file of files) {
    for await (const raw of readLines(file.path)) {
      const m = /^\{"ts":"[^"]*","seq":(\d+),/.exec(raw.bytes.subarray(0, 80).toString('latin1'));
      if (m && Number(m[1]) === seq) return `${file.name}:${raw.no}`;
    }
  }
  return null;
}

function toLine(raw: RawLine): Line {
  const line: Line = { no: raw.no, bytes: raw.bytes.length, hash: lineHash(raw.bytes), complete: raw.complete, record: null };
  let value: unknown;
  try {
    value = JSON.parse(raw.bytes.toString('utf8'));
  } catch {
    line.invalid = 'not valid JSON';
    return line;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) { line.invalid = 'not a JSON object'; return line; }
  const v = value as Record<string, unknown>;
  if (typeof v.ts !== 'string') line.invalid = 'no ts';
  else if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) line.invalid = 'no valid seq';
  else if (typeof v.event !== 'string') line.invalid = 'no event';
  else if (typeof v.prev !== 'string' || !/^[0-9a-f]{64}$/.test(v.prev)) line.invalid = 'no valid prev';
  else line.record = v as Rec;
  return line;
}

function peekable(gen: AsyncGenerator<RawLine>) {
  let buffered: RawLine | null | undefined;
  return {
    async next(): Promise<RawLine | null> {
      if (buffered !== undefined) { const b = buffered; buffered = undefined; return b; }
      const r = await gen.next();
      return r.done ? null : r.value;
    },
    async peek(): Promise<RawLine | null> {
      if (buffered === undefined) { const r = await gen.next(); buffered = r.done ? null : r.value; }
      return buffered;
    },
  };
}
