// The audit file format, shared by the writer and the verifier so they cannot
// drift (docs/operations/audit-log.md). Every line is one JSON object:
//   {"ts":…,"seq":…,"event":…, …fields…, "prev":"<sha256 hex of the previous line>"}
// `prev` is the hash of the previous line's bytes without its newline; the
// first line of each file is an `audit_file_start` record whose `prev` is the
// hash of the last line of the file before it (64 zeros for the very first).
import * as crypto from 'node:crypto';
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

// One-shot hashing (Node 20.12+) skips a Hash object per line; older 20.x builds a Hash.
const sha256Hex: (data: string | Uint8Array) => string = typeof crypto.hash === 'function'
  ? (data) => crypto.hash('sha256', data, 'hex')
  : (data) => crypto.createHash('sha256').update(data).digest('hex');

export function lineHash(line: string | Uint8Array): string {
  return sha256Hex(line);
}

/**
 * One line without its newline; the field order is fixed: ts, seq, event fields, prev.
 * `fieldsJson` is the event's fields as JSON without the braces (`"event":…,…`),
 * so the line reads as JSON.stringify of the whole object would lay it out
 * without a merged object per line. The event fields never use the names ts,
 * seq or prev.
 */
export function formatLine(ts: number, seq: number, fieldsJson: string, prev: string): string {
  return `{"ts":"${isoTime(ts)}","seq":${seq},${fieldsJson},"prev":"${prev}"}`;
}

/** Fields given as an object (the writer's own records) as formatLine takes them. */
export function fieldsJson(fields: ChainFields): string {
  return JSON.stringify(fields).slice(1, -1);
}

let isoSecond = NaN;
let isoPrefix = '';

/** `new Date(ts).toISOString()`, with the text up to the second reused while records arrive within the same second. */
export function isoTime(ts: number): string {
  if (!Number.isSafeInteger(ts) || ts < 0) return new Date(ts).toISOString();
  const ms = ts % 1000;
  const second = ts - ms;
  if (second !== isoSecond) {
    const iso = new Date(second).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z for years 0000-9999
    if (iso.length !== 24) return new Date(ts).toISOString();
    isoSecond = second;
    isoPrefix = iso.slice(0, 20);
  }
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** The UTC day of a time, as in rotated file names. */
export function utcDay(ts: number): string {
  return new Date(ts).toISOString().slice(0, 10);
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The first millisecond after a UTC day (`YYYY-MM-DD`): a time belongs to a later day exactly when it is at or past this. */
export function utcDayEnd(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`) + DAY_MS;
}

/** `audit.jsonl` on 2026-12-01 → `audit-2026-12-01.jsonl` (the active file's base name, then the day). */
export function rotatedName(activeFile: string, day: string): string {
  const name = basename(activeFile);
  const ext = extname(name);
  return `${name.slice(0, name.length - ext.length)}-${day}${ext}`;
}

/** The day of a rotated file of this active file (the name rotatedName gives for that day), or null when `name` is not one. */
export function rotatedDay(activeFile: string, name: string): string | null {
  const split = splitRotatedName(name);
  return split && rotatedName(activeFile, split.day) === name ? split.day : null;
}

/** Splits a rotated name `<stem>-YYYY-MM-DD<ext>` into the active file's name and the day. */
export function splitRotatedName(name: string): { active: string; day: string } | null {
  const m = /^(.*)-(\d{4}-\d{2}-\d{2})((?:\.[^.]*)?)$/.exec(name);
  return m && m[1] ? { active: `${m[1]}${m[3]}`, day: m[2] } : null;
}
