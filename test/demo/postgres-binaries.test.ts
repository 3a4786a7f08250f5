// The server binaries when the checkout is private: as root the server runs
// as the postgres OS user, which cannot enter a 0700 directory, so the
// package's native/ tree is copied once to TMPDIR/pgveil-postgres-<version>/
// (readable by everyone, made complete before it is renamed into place) and
// reused; a copy someone else could have changed is refused; a TMPDIR the
// user cannot reach gives a one-line error that says what to do.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackage, runnableBinaries, type Binaries } from '../../src/demo/embedded-postgres.js';

const root = process.getuid?.() === 0;
const made: string[] = [];

/** pg-server-14's package copied into a fresh 0700 directory, its library symlinks removed (an npm that skipped the postinstall). */
function privatePackage(): Binaries {
  const real = findPackage(14);
  const priv = mkdtempSync(join(tmpdir(), 'pgveil-private-'));
  made.push(priv);
  chmodSync(priv, 0o700);
  const native = join(priv, 'pkg', 'native');
  cpSync(real.native, native, { recursive: true, verbatimSymlinks: true });
  for (const name of readdirSync(join(native, 'lib'))) {
    if (lstatSync(join(native, 'lib', name)).isSymbolicLink()) rmSync(join(native, 'lib', name));
  }
  const version = `test-${process.pid}-${Math.random().toString(36).slice(2)}`;
  made.push(join(tmpdir(), `pgveil-postgres-${version}`));
  return { native, packageName: real.packageName, packageVersion: version };
}

test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

test('a private package: the binaries run from a complete, world-readable copy in TMPDIR, made once', () => {
  const bin = privatePackage();
  const first = runnableBinaries(bin);
  assert.ok(first.version.startsWith('14.'), first.version);
  if (!root) {
    assert.is(first.native, bin.native, 'the owner can run its own binaries in place');
    assert.ok(lstatSync(join(bin.native, 'lib', 'libpq.so.5')).isSymbolicLink(), 'library symlinks recreated in place');
    return;
  }
  const shared = join(tmpdir(), `pgveil-postgres-${bin.packageVersion}`);
  assert.is(first.native, join(shared, 'native'));
  assert.is(statSync(shared).mode & 0o777, 0o755);
  assert.is(statSync(join(shared, 'native', 'bin')).mode & 0o777, 0o755);
  assert.is(statSync(join(shared, 'native', 'bin', 'postgres')).mode & 0o777, 0o755);
  assert.ok(existsSync(join(shared, '.pgveil-complete')));
  assert.ok(lstatSync(join(shared, 'native', 'lib', 'libpq.so.5')).isSymbolicLink(), 'library symlinks recreated in the copy');
  assert.not.ok(readdirSync(tmpdir()).some((n) => n.startsWith(`pgveil-postgres-${bin.packageVersion}.tmp-`)), 'no temp copy left');

  const marker = statSync(join(shared, '.pgveil-complete')).mtimeMs;
  assert.is(runnableBinaries(bin).native, first.native);
  assert.is(statSync(join(shared, '.pgveil-complete')).mtimeMs, marker, 'reused, not copied again');

  // An interrupted copy (no completion marker) is replaced.
  rmSync(join(shared, '.pgveil-complete'));
  assert.is(runnableBinaries(bin).native, first.native);
  assert.ok(existsSync(join(shared, '.pgveil-complete')));

  // A copy others could have written to is never run.
  chmodSync(shared, 0o777);
  assert.throws(() => runnableBinaries(bin), /is not owned by this user or is writable by others; remove it and retry/);
  chmodSync(shared, 0o755);
});

test('a TMPDIR the postgres OS user cannot enter: one clear line', () => {
  if (!root) return;
  const bin = privatePackage();
  const privTmp = mkdtempSync(join(tmpdir(), 'pgveil-private-tmp-'));
  made.push(privTmp);
  chmodSync(privTmp, 0o700);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = privTmp;
  try {
    let message = '';
    try { runnableBinaries(bin); } catch (err) { message = (err as Error).message; }
    assert.match(message, /does not run as the postgres OS user \(EACCES; from the copy in .*: EACCES\): check that the postgres OS user can enter .* \(not a 0700 directory/);
    assert.not.match(message, /\n/);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = saved;
  }
});

test('TMPDIR missing: the copy fails with one clear line', () => {
  if (!root) return;
  const bin = privatePackage();
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = join(tmpdir(), `pgveil-no-such-dir-${process.pid}`);
  try {
    assert.throws(() => runnableBinaries(bin), /^copying the PostgreSQL binaries to .* failed \(ENOENT.*\): make .* writable, or move the checkout to a directory the postgres OS user can read$/);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = saved;
  }
});

test.run();
