// The verdicts of `pgveil policy diff` for single cells: which filter and
// mask changes provably tighten, which loosen and which cannot be ordered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filterVerdict, maskVerdict } from '../../src/policy/access-diff.js';
import type { MaskSpec } from '../../src/policy/types.js';

const m = (kind: MaskSpec['kind'], options: Record<string, unknown> = {}): MaskSpec => ({ kind, options });

test('filters: added tightens, removed loosens, both or rewritten cannot be proven tighter', () => {
  assert.is(filterVerdict(['(a)'], ['(a)']), undefined);
  assert.is(filterVerdict(['(a)'], ['(b)', '(a)']), 'tightens', 'order does not matter, AND is commutative');
  assert.is(filterVerdict([], ['false']), 'tightens');
  assert.is(filterVerdict(['(a)', '(b)'], ['(a)']), 'loosens');
  assert.is(filterVerdict(['(a)'], []), 'loosens');
  assert.is(filterVerdict(['(a)'], ['(a AND c)']), 'changes');
  assert.is(filterVerdict(['(a)'], ['(b)']), 'changes');
});

test('masks: by precedence, then by the kind\'s own order; unordered pairs are "changes"', () => {
  assert.is(maskVerdict(m('email'), m('email')), undefined);
  assert.is(maskVerdict(undefined, m('custom', { expr: 'x' })), 'tightens');
  assert.is(maskVerdict(m('null'), undefined), 'loosens');
  assert.is(maskVerdict(m('hash'), m('full')), 'tightens');
  assert.is(maskVerdict(m('full'), m('scramble')), 'loosens');
  assert.is(maskVerdict(m('custom', { expr: 'left(${column}, 2)' }), m('partial', { keepFirst: 2, keepLast: 0, fill: 'X' })), 'tightens');
  assert.is(maskVerdict(m('truncate', { to: 'month' }), m('truncate', { to: 'year' })), 'tightens');
  assert.is(maskVerdict(m('truncate', { to: 'year' }), m('truncate', { to: 'day' })), 'loosens');
  assert.is(maskVerdict(m('round', { step: 10 }), m('round', { step: 100 })), 'tightens');
  assert.is(maskVerdict(m('round', { step: 10 }), m('round', { step: 15 })), 'changes', '15 is no multiple of 10');
  assert.is(maskVerdict(m('partial', { keepFirst: 0, keepLast: 4, fill: 'X' }), m('email')), 'changes');
  assert.is(maskVerdict(m('custom', { expr: 'a' }), m('custom', { expr: 'b' })), 'changes');
});

test.run();
