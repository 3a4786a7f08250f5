// The declared parameter types of a Parse as the rewriter reads them (threat B10: the
// operator PostgreSQL picks for `column = $1` depends on them).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { declaredParameterTypes, parameterType, UNKNOWN_TYPE } from '../../src/protocol/parameter-types.js';

/** A Parse's parameter section: an int16 count, then one int32 OID each. */
function section(oids: number[]): Buffer {
  const b = Buffer.alloc(2 + 4 * oids.length);
  b.writeInt16BE(oids.length, 0);
  oids.forEach((oid, k) => b.writeUInt32BE(oid, 2 + 4 * k));
  return b;
}
const read = (oids: number[]) => declaredParameterTypes(section(oids), 0);

test('B10 no declared type (none, or all 0) reads as the empty key', () => {
  assert.is(read([]), '');
  assert.is(read([0, 0, 0]), '');
});

test('B10 declared types by position: builtins by typname, varchar as text, unknown OIDs marked', () => {
  assert.is(read([23, 1043, 0, 1700, 99999]), `int4,text,,numeric,${UNKNOWN_TYPE}`);
  const types = read([0, 20]).split(',');
  assert.is(parameterType(types, 1), '', '$1 undeclared: it takes its context\'s type');
  assert.is(parameterType(types, 2), 'int8');
  assert.is(parameterType(types, 3), '', 'a parameter past the declared ones is undeclared');
  assert.is(parameterType(types, 0), UNKNOWN_TYPE, 'no $0');
});

test.run();
