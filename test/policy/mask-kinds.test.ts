// The mask-kind records and policy.schema.json describe the same kinds: every
// record's kind is in the schema's `mask` enum and vice versa, and each
// kind's options are exactly what the schema admits for it. Without this a
// kind could be accepted by one and refused (or left unchecked) by the other.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { schemaDir } from '../../src/config/schema-check.js';
import { describeMask, maskKindOf, maskKinds } from '../../src/policy/mask-kinds.js';

interface MaskSchema {
  properties: Record<string, unknown> & { mask: { enum: string[] } };
  allOf: Array<{
    if: { properties: { mask: { const?: string; enum?: string[] } } };
    then: { propertyNames: { enum: string[] } };
  }>;
}

const policySchema = JSON.parse(readFileSync(join(schemaDir(), 'policy.schema.json'), 'utf8')) as { definitions: { mask: MaskSchema } };
const schema = policySchema.definitions.mask;
const kinds = Object.keys(maskKinds);
const sorted = (xs: Iterable<string>) => [...xs].sort();

test('every kind in the records is in the schema enum, and every enum value has a record', () => {
  assert.equal(sorted(schema.properties.mask.enum), sorted(kinds));
  assert.is(new Set(schema.properties.mask.enum).size, schema.properties.mask.enum.length, 'no kind twice in the enum');
});

test('each kind\'s options are exactly the ones the schema admits for it', () => {
  for (const kind of kinds) {
    const branches = schema.allOf.filter((b) => b.if.properties.mask.const === kind || b.if.properties.mask.enum?.includes(kind));
    assert.is(branches.length, 1, `${kind}: one allOf branch names its options`);
    assert.equal(sorted(branches[0].then.propertyNames.enum), sorted(['mask', 'except', ...maskKinds[kind as keyof typeof maskKinds].options]), `${kind}: options`);
  }
  for (const branch of schema.allOf) {
    const named = branch.if.properties.mask.const !== undefined ? [branch.if.properties.mask.const] : branch.if.properties.mask.enum ?? [];
    for (const kind of named) assert.ok(maskKindOf(kind), `allOf names ${kind}, which has no record`);
  }
});

test('every option a record names, defaults or scans is declared in the schema', () => {
  for (const [kind, record] of Object.entries(maskKinds)) {
    for (const option of record.options) assert.ok(Object.hasOwn(schema.properties, option), `${kind}: ${option} is declared`);
    for (const option of Object.keys(record.defaults ?? {})) assert.ok(record.options.includes(option), `${kind}: default ${option} is one of its options`);
    if (record.templateOption !== undefined) assert.ok(record.options.includes(record.templateOption), `${kind}: its template option is one of its options`);
  }
});

test('maskKindOf knows only the records, not names inherited from Object', () => {
  assert.is(maskKindOf('partial'), maskKinds.partial);
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'nope']) assert.is(maskKindOf(name), undefined);
});

test('describeMask: options in order, internal ones left out', () => {
  assert.is(describeMask({ kind: 'partial', options: { keepFirst: 0, keepLast: 4, fill: 'X' } }), 'partial (keepFirst=0, keepLast=4, fill="X")');
  assert.is(describeMask({ kind: 'email', options: {} }), 'email');
  assert.is(describeMask({ kind: 'custom', options: { expr: 'left(${column}, 1)', parts: ['left(', ', 1)'] } }), 'custom (expr="left(${column}, 1)")');
});

test.run();
