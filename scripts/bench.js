#!/usr/bin/env node
// npm run bench: builds, installs what the benches compare against (pgbench
// and PgBouncer from Debian's packages: scripts/install-bench-tools.sh), then
// runs each bench one after another (they measure throughput, so never two
// at once) and lists the result files under bench/results/.
//
//   npm run bench                 every bench
//   npm run bench -- pgbench idle only those (names: see BENCHES)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Each bench with its default arguments; the order runs the longest last. */
const BENCHES = {
  rewrite: [],
  connect: [],
  idle: [],
  stream: [],
  bi: [],
  workers: [],
  pgbench: [],
};

const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !(n in BENCHES));
if (unknown.length) {
  console.error(`unknown bench: ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;
if (run('npx', ['tsc', '-p', 'tsconfig.json']) !== 0 || run('npx', ['tsc', '-p', 'tsconfig.test.json']) !== 0) process.exit(1);
if (run('bash', ['scripts/install-bench-tools.sh']) !== 0) console.error('bench tools not installed: PgBouncer columns will be empty');
const failed = [];
for (const name of asked.length ? asked : Object.keys(BENCHES)) {
  const file = join(root, 'build', 'bench', `${name}.js`);
  if (!existsSync(file)) { failed.push(`${name} (not built)`); continue; }
  console.log(`\n=== bench ${name} (${new Date().toISOString()})`);
  if (run(process.execPath, [file, ...BENCHES[name]]) !== 0) failed.push(name);
}
console.log(`\nresults in bench/results/${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
process.exit(failed.length ? 1 : 0);
