// The active audit file on disk: where the chain continues at open, daily
// rotation to `<name>-YYYY-MM-DD<ext>`, retention of rotated files, appends
// that leave no partial batch behind when the disk is full, and forcing
// written lines to disk (each append, or when the writer asks).
import { constants, writeSync } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FILE_START, GENESIS, lineHash, rotatedDay, rotatedName, utcDay, utcDayEnd } from './chain.js';
import { readFileEnds } from './file-ends.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Synchronised-data writes where the platform has them (Linux, macOS); elsewhere a synchronous append calls datasync itself. */
const DSYNC: number | undefined = constants.O_DSYNC;
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
/** A synchronous append slower than this means the disk is slow or stalling: appends go through the thread pool for a while. */
const SLOW_APPEND_MS = 50;
const THREAD_POOL_AFTER_SLOW_MS = 60_000;

/** Where the chain stands: the last line written (its seq and hash). */
export interface ChainHead { seq: number; hash: string }

/** Raised when an existing audit file cannot be continued without guessing; the operator must look. */
export class AuditFileError extends Error {
  override name = 'AuditFileError';
}

export class ActiveFile {
  private handle: FileHandle | null = null;
  /** A failed append left bytes that could not be cut back yet: cut them before the next one. */
  private cutBackPending = false;
  /** Bytes known to be complete lines; a failed append is cut back to this. */
  private size = 0;
  /** The rotated name this file gets (its start record says so); set by retarget(). */
  target!: string;
  /** The first millisecond after the file's UTC day: records at or past it belong in the next file (a number compare per record, not a date string). */
  dayEnd!: number;
  previousFile: string | null;
  /** False until the start record is on disk. */
  started: boolean;
  /** Bytes of a line cut short by a crash, still to be terminated and recorded. */
  torn: { bytes: number; sha256: string } | null = null;
  /** Until then (ms), appends go through the thread pool: a synchronous one was slow. */
  private threadPoolUntil = 0;
  /** Set when a synchronous append was slow; the writer reports it and clears it. */
  slowAppendMs = 0;

  private constructor(readonly path: string, private readonly retentionDays: number, private readonly syncEachAppend: boolean, day: string, previousFile: string | null, started: boolean) {
    this.retarget(day);
    this.previousFile = previousFile;
    this.started = started;
  }

  /**
   * Finds where the chain continues: the active file's last complete line, or,
   * without an active file, the newest rotated file's. The writer then records a
   * torn last line, rotates a file from an earlier day and applies retention.
   * `syncEachAppend`: every append is on disk when it resolves; otherwise
   * appended lines are on disk once sync() resolves.
   */
  static async open(path: string, retentionDays: number, now: number, syncEachAppend: boolean): Promise<{ file: ActiveFile; head: ChainHead }> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const today = utcDay(now);
    let head: ChainHead = { seq: 0, hash: GENESIS };
    let file: ActiveFile | null = null;
    const existing = await fileSize(path);
    if (existing > 0) {
      const ends = await readFileEnds(path);
      const start = ends.first === null ? null : parseRecord(ends.first);
      if (!start || start.event !== FILE_START || typeof start.file !== 'string') {
        throw new AuditFileError(`audit file ${path}: the first line is not an audit_file_start record, so the chain cannot be continued; move the file aside (and check it with pgveil audit verify)`);
      }
      const day = rotatedDay(path, start.file);
      if (!day) throw new AuditFileError(`audit file ${path}: its start record names "${start.file}", not a rotated name of ${basename(path)}; move the file aside`);
      head = headOf(path, ends.last!);
      file = new ActiveFile(path, retentionDays, syncEachAppend, day, typeof start.previousFile === 'string' ? start.previousFile : null, true);
      file.size = ends.size;
      if (ends.torn) file.torn = { bytes: ends.torn.length, sha256: lineHash(ends.torn) };
    } else {
      const newest = await newestRotated(path);
      if (newest) {
        const ends = await readFileEnds(join(dirname(path), newest));
        if (ends.last === null || ends.torn) {
          throw new AuditFileError(`audit file ${newest}: its last line is incomplete, so the chain cannot be continued from it; check it with pgveil audit verify`);
        }
        head = headOf(newest, ends.last);
      }
      file = new ActiveFile(path, retentionDays, syncEachAppend, today, newest, false);
    }
    return { file, head };
  }

  /**
   * Appends whole lines; on failure the file is cut back to its last complete
   * line. Synchronous appends use an O_DSYNC file, so one write is both the
   * append and the fdatasync (one call into the thread pool, not two).
   * Otherwise the append is a write(2) into the page cache made on the event
   * loop: a batch of 30 KB costs ~15 µs of CPU there, where a thread-pool
   * write costs 3-6 times that in hand-offs and wake-ups. The disk work
   * itself happens at sync(), on the thread pool. Should a synchronous
   * append take over SLOW_APPEND_MS (a stalling disk, dirty-page throttling),
   * appends use the thread pool for a minute so the loop does not wait on it.
   */
  async append(data: Buffer): Promise<void> {
    if (!this.handle) {
      this.handle = await open(this.path, APPEND_FLAGS | (this.syncEachAppend ? DSYNC ?? 0 : 0), 0o600);
      this.size = (await this.handle.stat()).size;
    }
    const handle = this.handle;
    try {
      if (this.cutBackPending) await handle.truncate(this.size);
      this.cutBackPending = false;
      let done = 0;
      if (!this.syncEachAppend && performance.now() >= this.threadPoolUntil) {
        const started = performance.now();
        while (done < data.length) done += writeSync(handle.fd, data, done, data.length - done);
        const took = performance.now() - started;
        if (took > SLOW_APPEND_MS) {
          this.threadPoolUntil = performance.now() + THREAD_POOL_AFTER_SLOW_MS;
          this.slowAppendMs = took;
        }
      }
      while (done < data.length) done += (await handle.write(data, done, data.length - done)).bytesWritten;
      if (this.syncEachAppend && !DSYNC) await handle.datasync();
      this.size += data.length;
    } catch (err) {
      this.cutBackPending = true;
      await handle.truncate(this.size).then(() => { this.cutBackPending = false; }, () => { /* cut back before the next append */ });
      throw err;
    }
  }

  /** Forces every line appended so far to disk (fdatasync). */
  async sync(): Promise<void> {
    if (this.handle && !this.syncEachAppend) await this.handle.datasync();
  }

  /** Renames the active file to its dated name, its lines on disk first; the next append starts a new file chained to it. */
  async rotate(day: string): Promise<void> {
    if (!this.started) { // nothing on disk yet: the new file simply belongs to the new day
      this.retarget(day);
      return;
    }
    if (this.cutBackPending && this.handle) await this.handle.truncate(this.size); // the rotated file keeps whole lines only
    this.cutBackPending = false;
    await this.sync();
    await this.closeHandle();
    const to = join(dirname(this.path), this.target);
    if (await fileSize(to) >= 0) throw new AuditFileError(`cannot rotate ${this.path}: ${this.target} already exists (not overwritten)`);
    await rename(this.path, to);
    this.previousFile = this.target;
    this.started = false;
    this.torn = null;
    this.size = 0;
    this.retarget(day);
  }

  /** Deletes rotated files whose day ended more than retentionDays ago. */
  async applyRetention(now: number): Promise<string[]> {
    const cutoff = utcDay(now - this.retentionDays * DAY_MS);
    const removed: string[] = [];
    for (const name of await readdir(dirname(this.path))) {
      const day = rotatedDay(this.path, name);
      if (day && day < cutoff) {
        await unlink(join(dirname(this.path), name));
        removed.push(name);
      }
    }
    return removed;
  }

  async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }

  private retarget(day: string): void {
    this.dayEnd = utcDayEnd(day);
    this.target = rotatedName(this.path, day);
  }
}

function parseRecord(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return value && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

function headOf(file: string, line: string): ChainHead {
  const record = parseRecord(line);
  if (!record || !Number.isSafeInteger(record.seq)) {
    throw new AuditFileError(`audit file ${file}: the last complete line is not an audit record, so the chain cannot be continued; move the file aside (and check it with pgveil audit verify)`);
  }
  return { seq: record.seq as number, hash: lineHash(line) };
}

/** -1 when the path does not exist. */
async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
}

async function newestRotated(path: string): Promise<string | null> {
  const days = (await readdir(dirname(path))).filter((n) => rotatedDay(path, n) !== null).sort();
  return days.at(-1) ?? null;
}
