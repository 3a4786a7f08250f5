// A disk that really fills up: a 64 KiB tmpfs mounted on a temp directory
// (the tests run as root), a filler file written until ENOSPC, and the
// unmounting at the end.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mounts: string[] = [];

/** A fresh 64 KiB tmpfs; removeSmallDisks() unmounts it. */
export function smallDisk(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-audit-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  mounts.push(dir);
  return dir;
}

/** Writes a file in `dir` until the disk is full; returns its path (deleting it frees the space). */
export function fillDisk(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(512, 0x78);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Unmounts and removes every disk smallDisk() made. */
export function removeSmallDisks(): void {
  for (const dir of mounts.splice(0)) {
    try { execFileSync('umount', [dir], { stdio: 'ignore' }); } catch { /* not mounted */ }
    rmSync(dir, { recursive: true, force: true });
  }
}
