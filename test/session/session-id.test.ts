// Session ids (`<workerId>-<counter>` in base 36): the primary of `workers: N`
// routes an admin end-session to the worker the id names, so reading the
// worker back must agree with how the ids are issued.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sessionIds, workerOfSession } from '../../src/session/session-id.js';
import { MAX_WORKERS } from '../../src/session/cancel-keys.js';

test('every id names the worker that issued it, across restarts of that worker', () => {
  for (const worker of [0, 1, 35, 36, MAX_WORKERS]) {
    for (const incarnation of [1, 2, 1000]) {
      const next = sessionIds(worker, incarnation);
      for (let i = 0; i < 50; i++) {
        const id = next();
        assert.is(workerOfSession(id), worker, `${id} from worker ${worker}, start ${incarnation}`);
      }
    }
  }
});

test('a restarted worker issues no id an earlier start of it issued', () => {
  const first = sessionIds(3, 1);
  const earlier = new Set(Array.from({ length: 1000 }, () => first()));
  const second = sessionIds(3, 2);
  for (let i = 0; i < 1000; i++) assert.not.ok(earlier.has(second()));
});

test('a malformed id names no worker', () => {
  for (const id of ['', '1', '-1', '1-', 'abc-1', '1-ABC', '1-1-1', '1-0123456789abc', ' 1-1', '1-1\n']) {
    assert.is(workerOfSession(id), undefined, JSON.stringify(id));
  }
});

test.run();
