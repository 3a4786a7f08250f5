// The bookkeeping of upstream statements and portals as a pure model:
// changed only by upstream's confirmations, names keyed as upstream keys
// them (threats A8, C3 in docs/threat-model.md). The end-to-end checks against a real server are in
// upstream-bookkeeping.test.ts and bookkeeping-model.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Confirmation, upstreamKey, UpstreamObjects, type Stamp } from '../../src/engine/upstream-objects.js';

const stamp = (generation: number): Stamp => ({ generation, searchPath: 'public', usesSearchPath: false, changesSearchPath: false, holdable: false });

test('A8 names are keyed by their first 63 bytes, as upstream stores them', () => {
  const a = 'a'.repeat(63);
  assert.is(upstreamKey(a + 'x'), upstreamKey(a + 'yz'));
  assert.is(upstreamKey(a + 'x'), upstreamKey(a));
  assert.is(upstreamKey('short'), 'short');
  // A cut through a two-byte character keys the raw bytes: not the 62-byte name the SQL scanner would make.
  const split = 'a'.repeat(62) + 'é';
  assert.is.not(upstreamKey(split), upstreamKey('a'.repeat(62)));
  assert.is(upstreamKey(split), upstreamKey(split + 'more'));
});

test('A8 a Parse changes the record only on ParseComplete', () => {
  const o = new UpstreamObjects();
  o.sentMessage(Confirmation.Parse, 0, { kind: 'statement', key: 's', stamp: stamp(1) });
  assert.equal(o.names('statement'), []);
  assert.equal(o.possible('statement', 's', 0).map((s) => s.generation), [1], 'within its cycle the Parse has happened if a later message runs');
  o.confirmMessage(Confirmation.Parse);
  assert.equal(o.names('statement'), ['s']);
});

test('A8 a Close skipped after an earlier error keeps the statement', () => {
  const o = new UpstreamObjects();
  o.sentMessage(Confirmation.Parse, 0, { kind: 'statement', key: 's', stamp: stamp(1) });
  o.confirmMessage(Confirmation.Parse);
  o.cycleEnded(0, true);
  o.sentMessage(Confirmation.Close, 1, { kind: 'statement', key: 's' });
  assert.equal(o.possible('statement', 's', 2).map((s) => s.generation), [1], 'another cycle cannot rely on an unconfirmed Close');
  o.failed(1);
  o.cycleEnded(1, true);
  assert.equal(o.names('statement'), ['s']);
});

test('A8 statement-level changes wait for their own CommandComplete', () => {
  const o = new UpstreamObjects();
  o.sentStatement(0, 1, [{ kind: 'statement', key: 'p', stamp: stamp(2) }]);
  o.completion(0, true); // statement 0 of the message
  assert.equal(o.names('statement'), []);
  o.completion(0, true); // statement 1: the PREPARE
  assert.equal(o.names('statement'), ['p']);
  o.sentStatement(1, 1, [{ kind: 'statement', key: 'p', stamp: undefined }]);
  o.failed(1); // statement 0 failed: the DEALLOCATE never ran
  o.cycleEnded(1, true);
  assert.equal(o.names('statement'), ['p']);
});

test('C3 an unconfirmed re-creation leaves both the old and the new statement possible', () => {
  const o = new UpstreamObjects();
  o.sentMessage(Confirmation.Parse, 0, { kind: 'statement', key: '', stamp: stamp(1) });
  o.confirmMessage(Confirmation.Parse);
  o.cycleEnded(0, true);
  o.sentMessage(Confirmation.Parse, 1, { kind: 'statement', key: '', stamp: stamp(2) });
  assert.equal(o.possible('statement', '', 2).map((s) => s.generation).sort(), [1, 2]);
});

test('A8 portals end with their transaction unless holdable', () => {
  const o = new UpstreamObjects();
  o.sentMessage(Confirmation.Bind, 0, { kind: 'portal', key: 'p', stamp: stamp(1) });
  o.sentStatement(0, 1, [{ kind: 'portal', key: 'c', stamp: { ...stamp(1), holdable: true } }]);
  o.confirmMessage(Confirmation.Bind);
  o.completion(0, true);
  o.completion(0, true);
  o.cycleEnded(0, true);
  assert.equal(o.names('portal'), ['c']);
});

test.run();
