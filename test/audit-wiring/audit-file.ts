// Reads an audit file as the tests check it: every line parsed, the hash
// chain checked line by line, and a wait for records that are written
// asynchronously (the writer batches off the hot path).
import { existsSync, readFileSync } from 'node:fs';
import { lineHash } from '../../src/audit/chain.js';

export type AuditLine = { event: string; seq: number; ts: string; prev: string } & Record<string, unknown>;

/** The records of one audit file, in order; throws when the chain is broken. */
export function readAudit(file: string): AuditLine[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').filter(Boolean);
  const out: AuditLine[] = [];
  let prev: string | undefined;
  for (const [i, line] of lines.entries()) {
    const record = JSON.parse(line) as AuditLine;
    if (prev !== undefined && record.prev !== prev) throw new Error(`${file}:${i + 1}: prev does not match the line before`);
    prev = lineHash(line);
    out.push(record);
  }
  return out;
}

/** Waits (up to `seconds`) until the file holds records for which `done` is true; returns them all. */
export async function waitForAudit(file: string, done: (records: AuditLine[]) => boolean, seconds = 20): Promise<AuditLine[]> {
  for (let waited = 0; ; waited += 50) {
    const records = readAudit(file);
    if (done(records)) return records;
    if (waited >= seconds * 1000) throw new Error(`audit file ${file} did not get the expected records; it has:\n${records.map((r) => JSON.stringify(r)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const ofEvent = (records: AuditLine[], event: string, match: Record<string, unknown> = {}) =>
  records.filter((r) => r.event === event && Object.entries(match).every(([k, v]) => r[k] === v));
