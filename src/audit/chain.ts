// The audit file format, shared by the writer and the verifier so they cannot
// drift (docs/operations/audit-log.md). Every line is one JSON object:
//   {"ts":…,"seq":…,"event":…, …fields…, "prev":"<sha256 hex of the previous line>"}
// `prev` is the hash of the previous line's bytes without its newline; the
// first line of each file is an `audit_file_start` record whose `prev` is the
// hash of the last line of the file before it (64 zeros for the very first).
import { createHash } from 'node:crypto';
import { basename, extname } from 'node:path';

/** `prev` of the first record ever written. */
export const GENESIS = '0'.repeat(64);

export const FILE_START = 'audit_file_start';
export const TORN_TAIL = 'audit_torn_line';

/** First line of every audit file. `file` is the name the file has once rotated. */
export interface FileStartFields { event: typeof FILE_START; file: string; previousFile: string | null }

/**
 * Written when the writer reopens a file whose last line was cut short (a crash
 * mid-write): the torn bytes stay in the file, terminated by a newline, and this
 * record names them and chains to the last complete line before them.
 */
export interface TornLineFields { event: typeof TORN_TAIL; line: number; bytes: number; sha256: string }

/** A record as it is chained: the writer's `ts`/`seq`, then the event's own fields. */
export type ChainFields = { event: string } & Record<string, unknown>;

export function lineHash(line: string | Uint8Array): string {
  return createHash('sha256').update(line).digest('hex');
}

/** One line without its newline; the field order is fixed: ts, seq, event fields, prev. */
export function formatLine(ts: number, seq: number, fields: ChainFields, prev: string): string {
  return JSON.stringify({ ts: new Date(ts).toISOString(), seq, ...fields, prev });
}

/** The UTC day of a time, as in rotated file names. */
export function utcDay(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** `audit.jsonl` on 2026-12-01 → `audit-2026-12-01.jsonl` (the active file's base name, then the day). */
export function rotatedName(activeFile: string, day: string): string {
  const name = basename(activeFile);
  const ext = extname(name);
  return `${name.slice(0, name.length - ext.length)}-${day}${ext}`;
}

/** The day of a rotated file of this active file, or null when `name` is not one. */
export function rotatedDay(activeFile: string, name: string): string | null {
  const active = basename(activeFile);
  const ext = extname(active);
  const stem = active.slice(0, active.length - ext.length);
  if (!name.startsWith(`${stem}-`) || !name.endsWith(ext)) return null;
  const day = name.slice(stem.length + 1, name.length - ext.length);
  return DAY.test(day) ? day : null;
}

/** Splits a rotated name `<stem>-YYYY-MM-DD<ext>` into the active file's name and the day. */
export function splitRotatedName(name: string): { active: string; day: string } | null {
  const m = /^(.*)-(\d{4}-\d{2}-\d{2})((?:\.[^.]*)?)$/.exec(name);
  return m && m[1] ? { active: `${m[1]}${m[3]}`, day: m[2] } : null;
}
