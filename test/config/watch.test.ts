// watchFiles: editors replace files by writing a temp file and renaming it
// over the original; that must trigger exactly one debounced callback.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchFiles } from '../../src/config/watch.js';

function setup(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-watch-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, 'tables: {}\n');
  return { dir, file };
}

test('a rename-replace (editor save) triggers one debounced callback', async () => {
  const { dir, file } = setup();
  await sleep(50); // let the initial write's events pass before watching
  let calls = 0;
  const watcher = watchFiles([file], () => { calls++; }, { debounceMs: 100 });
  try {
    const tmp = join(dir, '.policy.yaml.swp');
    writeFileSync(tmp, 'tables: { public.t: {} }\n');
    renameSync(tmp, file);
    writeFileSync(file, 'tables: { public.u: {} }\n'); // a second write inside the quiet period
    await sleep(400);
    assert.is(calls, 1);
  } finally {
    watcher.close();
  }
});

test('changes to other files in the directory are ignored; close() stops callbacks', async () => {
  const { dir, file } = setup();
  await sleep(50);
  let calls = 0;
  const watcher = watchFiles([file], () => { calls++; }, { debounceMs: 50 });
  writeFileSync(join(dir, 'unrelated.log'), 'x');
  await sleep(250);
  assert.is(calls, 0);
  writeFileSync(file, 'tables: {}\n');
  watcher.close();
  await sleep(250);
  assert.is(calls, 0, 'no callback after close');
});

test.run();
