// A lock for a state file kept beside users.yaml that more than one process
// changes (the CLI and the running pgveil): `<state>.lock`, created
// exclusively; a lock older than STALE_LOCK_MS was left by a process that
// died while holding it and is taken over.
import { closeSync, openSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const LOCK_WAIT_MS = 5000;
const STALE_LOCK_MS = 30_000;

/** Waits for the lock of `file` (up to 5 s) and returns its release. */
export async function lockStateFile(file: string): Promise<() => void> {
  const lockFile = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lockFile, 'wx', 0o600));
      return () => rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    try {
      if (Date.now() - statSync(lockFile).mtimeMs > STALE_LOCK_MS) { rmSync(lockFile, { force: true }); continue; }
    } catch { continue; /* released meanwhile */ }
    if (Date.now() > deadline) throw new Error(`${lockFile} is held by another process; try again (remove it if no pgveil is running)`);
    await sleep(20);
  }
}
