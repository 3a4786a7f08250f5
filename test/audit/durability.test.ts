// When audit lines reach the disk, seen in the writer's own system calls
// (strace): with `syncMs: 0` the file is opened O_DSYNC and no separate
// fdatasync is needed; with `syncMs > 0` batches are plain appends and an
// fdatasync follows on the timer, without any flush asking for it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/run.js';

const childScript = fileURLToPath(new URL('./children/sync-writer.js', import.meta.url));
const made: string[] = [];
const children: ChildProcess[] = [];
test.after.each(() => { for (const child of children.splice(0)) child.kill('SIGKILL'); });
test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

interface Traced { child: ChildProcess; file: string; calls: () => string[]; send: (line: string) => void; exited: Promise<number | null> }

function traced(syncMs: number): Traced {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-audit-sync-'));
  made.push(dir);
  const file = join(dir, 'audit.jsonl');
  const trace = join(dir, 'trace.txt');
  const child = spawn('strace', ['-f', '-qq', '-e', 'trace=openat,write,pwrite64,writev,pwritev,fdatasync,fsync', '-o', trace, process.execPath, childScript, file, String(syncMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child, file, exited,
    calls: () => existsSync(trace) ? readFileSync(trace, 'utf8').split('\n') : [],
    send: (line) => child.stdin!.write(`${line}\n`),
  };
}

/** The fd the audit file was opened on, and the open's flags. */
function auditOpen(calls: string[], file: string): { fd: string; flags: string } {
  const open = calls.find((c) => c.includes(`openat(AT_FDCWD, "${file}"`) && c.includes('O_APPEND'));
  assert.ok(open, 'the audit file was opened for appending');
  const m = /, (O_[A-Z_|]+)(?:, 0?\d+)?\) = (\d+)$/.exec(open!);
  assert.ok(m, `open line parsed: ${open}`);
  return { flags: m![1], fd: m![2] };
}

/** The calls on one fd, as `write` / `fdatasync`, in order. */
function callsOn(calls: string[], fd: string): string[] {
  const out: string[] = [];
  for (const c of calls) {
    const m = /^\d+ +(\w+)\((\d+)[,)]/.exec(c);
    if (m && m[2] === fd) out.push(m[1] === 'fsync' || m[1] === 'fdatasync' ? 'sync' : m[1].includes('write') ? 'write' : m[1]);
  }
  return out;
}

async function opened(t: Traced): Promise<void> {
  let out = '';
  t.child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the child to open its audit log', () => out.includes('opened\n'), 30000);
}

test('syncMs 0: the audit file is opened O_DSYNC, so each batch is on disk when its write returns, without a separate fdatasync', async () => {
  const t = traced(0);
  await opened(t);
  const { fd, flags } = auditOpen(t.calls(), t.file);
  assert.ok(flags.split('|').includes('O_DSYNC'), `flags ${flags}`);
  const writesBefore = callsOn(t.calls(), fd).length;
  t.send('record');
  await waitFor('the batch to be written', () => callsOn(t.calls(), fd).length > writesBefore, 30000);
  t.send('close');
  assert.is(await t.exited, 0);
  const ops = callsOn(t.calls(), fd);
  assert.ok(!ops.includes('sync'), `no fdatasync: ${ops.join(' ')}`);
  assert.is(readFileSync(t.file, 'utf8').trim().split('\n').length, 51);
});

test('syncMs 100: batches are plain appends, and the timer forces them to disk with an fdatasync while nothing asks for a flush', async () => {
  const t = traced(100);
  await opened(t);
  const { fd, flags } = auditOpen(t.calls(), t.file);
  assert.ok(!flags.split('|').includes('O_DSYNC'), `flags ${flags}`);
  // Opening flushes the start record: one write, then its fdatasync.
  assert.equal(callsOn(t.calls(), fd), ['write', 'sync']);
  t.send('record');
  await waitFor('the batch to be written and then synced by the timer', () => callsOn(t.calls(), fd).join(' ').startsWith('write sync write sync'), 30000);
  t.send('close');
  assert.is(await t.exited, 0);
  assert.is(readFileSync(t.file, 'utf8').trim().split('\n').length, 51);
});

test.run();
