// Which files a report was made from, so a reader can tell whether it still
// describes the deployed policy: path, SHA-256 of the bytes read, and when.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { displayFile } from '../config/errors.js';

export interface SourceFile { file: string; sha256: string }

export interface ReportSources {
  policy: SourceFile;
  users: SourceFile;
  /** ISO 8601, UTC. */
  generatedAt: string;
}

export function sourceFile(path: string): SourceFile {
  return { file: displayFile(path), sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

export function reportSources(policyFile: string, usersFile: string, now = new Date()): ReportSources {
  return { policy: sourceFile(policyFile), users: sourceFile(usersFile), generatedAt: now.toISOString() };
}
