// Replacing a file an operator edits (users.yaml, pgveil.yaml, policy.yaml):
// write a temporary file beside it and rename it over the original, so a crash
// never leaves a half-written file, keeping the owner, group and mode so the
// pgveil service can still read it when root made the change.
import { chmodSync, chownSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A file written aside, not yet in place: `commit` renames it over the target, `discard` removes it. */
export interface StagedFile { commit(): void; discard(): void }

export function stageReplacement(file: string, text: string): StagedFile {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    const before = statSync(file);
    if (process.getuid?.() === 0) chownSync(tmp, before.uid, before.gid);
    chmodSync(tmp, before.mode & 0o777);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return {
    commit: () => renameSync(tmp, file),
    discard: () => rmSync(tmp, { force: true }),
  };
}

export function replaceFile(file: string, text: string): void {
  const staged = stageReplacement(file, text);
  try {
    staged.commit();
  } catch (err) {
    staged.discard();
    throw err;
  }
}
