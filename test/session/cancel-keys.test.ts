// Cancel keys (README, Connection behaviour): pgveil's own keys, and under `workers: N` the
// owning worker in the top bits of the process id, so any worker can route a
// CancelRequest without asking the others.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelKeys, MAX_WORKERS, workerOfProcessId } from '../../src/session/cancel-keys.js';

test('a key finds its session; a wrong secret or a released key finds nothing', () => {
  const keys = new CancelKeys();
  let cancelled = 0;
  const { processId, secretKey } = keys.issue({ cancel: () => { cancelled++; } });
  assert.ok(processId > 0 && processId <= 0x7fffffff);
  keys.lookup(processId, Buffer.from([secretKey[0] ^ 1, ...secretKey.subarray(1)]))?.cancel();
  assert.is(cancelled, 0);
  keys.lookup(processId, secretKey)?.cancel();
  assert.is(cancelled, 1);
  keys.release(processId);
  assert.is(keys.lookup(processId, secretKey), undefined);
});

test('a worker\'s process ids carry its id in the top bits and stay positive', () => {
  for (const id of [1, 2, 64, MAX_WORKERS]) {
    const keys = new CancelKeys(id);
    for (let i = 0; i < 200; i++) {
      const { processId } = keys.issue({ cancel() {} });
      assert.is(workerOfProcessId(processId), id);
      assert.ok(processId > 0 && processId <= 0x7fffffff, `process id ${processId} is a positive int32`);
    }
  }
  assert.throws(() => new CancelKeys(MAX_WORKERS + 1), /out of range/);
});

test.run();
