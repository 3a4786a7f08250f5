#!/usr/bin/env node
// Builds, installs the external client tools the tests use, runs every
// compiled test file in its own process (two at a time) on PostgreSQL 18,
// then the version-sensitive files listed in test/versions.json again on each
// older major (PGVEIL_TEST_PG_MAJOR=14 …), prints one summary line per major
// and ends with the plain "N passed, N failed" line CI reads.
//
//   node scripts/run-tests.js [filter]            every major; only files whose path contains filter
//   PGVEIL_TEST_MAJORS=18 node scripts/run-tests.js   only some majors (comma-separated; also --majors=14,18)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const root = fileURLToPath(new URL('..', import.meta.url));
// The runtime (dist/, what bin/pgveil.js and the tests' proxies run) and the
// tests and benches (build/, which never ship) compile separately. Compiled
// tests whose source is gone must not run: build them afresh.
rmSync(join(root, 'build/test'), { recursive: true, force: true });
for (const project of ['tsconfig.json', 'tsconfig.test.json']) {
  const build = spawnSync('npx', ['tsc', '-p', project], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) { console.log('0 passed, 1 failed'); process.exit(1); }
}
spawnSync('bash', [join(root, 'scripts/install-test-tools.sh')], { cwd: root, stdio: 'inherit' });

const args = process.argv.slice(2);
const majorsArg = args.find((a) => a.startsWith('--majors='))?.slice('--majors='.length);
const filter = args.find((a) => !a.startsWith('--'));
const DEFAULT_MAJOR = 18;
const versions = JSON.parse(readFileSync(join(root, 'test/versions.json'), 'utf8'));
const allMajors = [DEFAULT_MAJOR, ...versions.olderMajors];
const wanted = (majorsArg ?? process.env.PGVEIL_TEST_MAJORS ?? '').split(',').map((m) => m.trim()).filter(Boolean).map(Number);
const unknown = wanted.filter((m) => !allMajors.includes(m));
if (unknown.length) {
  console.log(`run-tests: unknown major ${unknown.join(', ')} in PGVEIL_TEST_MAJORS/--majors; use some of ${allMajors.join(', ')}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const majors = wanted.length ? allMajors.filter((m) => wanted.includes(m)) : allMajors;

function collect(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js') && (!filter || path.includes(filter))) out.push(path);
  }
  return out;
}
const files = collect(join(root, 'build/test'));
const versionFiles = [];
for (const rel of versions.files) {
  if (!existsSync(join(root, 'test', rel))) { console.log(`note: test/versions.json lists ${rel}, which does not exist: skipped`); continue; }
  const compiled = join(root, 'build/test', rel.replace(/\.ts$/, '.js'));
  if (!filter || compiled.includes(filter)) versionFiles.push(compiled);
}
/** One job per file and major: the whole suite on 18, the version-sensitive files on the older majors. */
const jobs = [];
for (const major of majors) {
  for (const file of major === DEFAULT_MAJOR ? files : versionFiles) jobs.push({ file, major });
}
const parallel = Math.max(1, Math.min(2, os.cpus().length));
let passed = 0, failed = 0, skipped = 0;
const failures = [];
const perMajor = new Map(majors.map((m) => [m, { passed: 0, failed: 0, skipped: 0, seconds: 0 }]));

function runFile({ file, major }) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Its own process group: a timed-out file is killed with everything it started.
    const env = { ...process.env, FORCE_COLOR: '0', PGVEIL_TEST_PG_MAJOR: String(major) };
    const child = spawn(process.execPath, [file], { cwd: root, env, detached: true });
    let out = '';
    let finished = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    // The older majors run only the version-sensitive files (under a minute
    // each): a shorter limit keeps a hang there from eating CI's 20 minutes.
    const limit = major === DEFAULT_MAJOR ? 300 : 180;
    const timer = setTimeout(() => {
      out += `\n[runner] timed out after ${limit} s\n`;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    }, limit * 1000);
    const finish = (code) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      // Whatever the file left running goes with it.
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
      const num = (label) => { const m = out.match(new RegExp(`${label}:\\s+(\\d+)`)); return m ? Number(m[1]) : 0; };
      let p = num('Passed'), total = num('Total'), s = num('Skipped');
      let f = Math.max(0, total - p - s);
      // A crash, a hang, or a file that never reached its summary counts as a failure
      // (exit hooks a file installs can turn a crashed file's exit code into 0).
      if ((code !== 0 || !/Total:\s+\d+/.test(out)) && f === 0) f = 1;
      passed += p; failed += f; skipped += s;
      const tally = perMajor.get(major);
      tally.passed += p; tally.failed += f; tally.skipped += s; tally.seconds += (Date.now() - started) / 1000;
      const name = (major === DEFAULT_MAJOR ? '' : `[pg${major}] `) + relative(join(root, 'build'), file);
      console.log(`${f ? 'FAIL' : 'ok  '} ${name}  (${p} passed${f ? `, ${f} failed` : ''}${s ? `, ${s} skipped` : ''}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (f || process.env.VERBOSE) { failures.push(name); console.log(out.replace(/^/gm, '    ')); }
      resolve();
    };
    child.on('close', finish);
    // A process it spawned may keep the output pipes open after it exits: do not wait for them.
    child.on('exit', (code) => setTimeout(() => finish(code), 2000));
  });
}

const runStarted = Date.now();
const queue = [...jobs];
await Promise.all(Array.from({ length: parallel }, async () => {
  while (queue.length) await runFile(queue.shift());
}));
if (failures.length) console.log(`failing files: ${failures.join(', ')}`);
for (const [major, t] of perMajor) {
  const what = major === DEFAULT_MAJOR ? 'all test files' : 'the files of test/versions.json';
  console.log(`pg${major}: ${t.passed} passed, ${t.failed} failed${t.skipped ? `, ${t.skipped} skipped` : ''}  (${what}, ${Math.round(t.seconds)} s of test time)`);
}
console.log(`ran ${jobs.length} test files in ${Math.round((Date.now() - runStarted) / 1000)} s`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
