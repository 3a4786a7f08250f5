// `pgveil --version` and `-V`, through the real launcher: the version is the
// one in package.json, so a release bumps it in one place.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

for (const flag of ['--version', '-V']) {
  test(`pgveil ${flag} prints "pgveil <version from package.json>" and exits 0`, () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/pgveil.js'), flag], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, `pgveil ${version}\n`);
    assert.is(r.stderr, '');
  });
}

test('pgveil --help names --version', () => {
  const r = spawnSync(process.execPath, [join(root, 'bin/pgveil.js'), '--help'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes('`pgveil --version`'), r.stdout);
});

test.run();
