// docs/configuration.md is the reference of every key; the JSON Schemas in
// config/schema/ are where keys and defaults are defined. A key added to a
// schema without a row in the reference, or a default changed in one place
// only, fails here. No server needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const reference = readFileSync(join(repo, 'docs/configuration.md'), 'utf8');

interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  default?: unknown;
}

/** Every key of a schema as a dotted path (`<*>` for user-chosen names), with its node. */
function schemaKeys(file: string): Map<string, SchemaNode> {
  const schema = JSON.parse(readFileSync(join(repo, 'config/schema', file), 'utf8')) as SchemaNode & { definitions?: Record<string, SchemaNode> };
  const deref = (n: SchemaNode): SchemaNode => (n.$ref ? schema.definitions?.[n.$ref.split('/').pop() as string] ?? n : n);
  const keys = new Map<string, SchemaNode>();
  const walk = (node: SchemaNode, prefix: string): void => {
    const n = deref(node);
    for (const [name, child] of Object.entries(n.properties ?? {})) {
      keys.set(prefix + name, deref(child));
      walk(child, `${prefix}${name}.`);
    }
    if (n.additionalProperties && typeof n.additionalProperties === 'object') walk(n.additionalProperties, `${prefix}<*>.`);
    if (n.items) walk(n.items, `${prefix}[i].`);
  };
  walk(schema, '');
  return keys;
}

/** Table rows of the reference: the keys named in the first cell, and the default cell. */
function documentedRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of reference.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const names = [...cells[0].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    const first = names[0];
    for (const name of names) {
      // `a.b.user` / `.org`: a name starting with a dot replaces the last part of the first.
      const full = name.startsWith('.') ? first.replace(/\.[^.]+$/, name) : name;
      rows.set(full.replace(/<[^>]+>/g, '<*>').replace(/\[i\]/g, '.[i]'), cells[2] ?? '');
    }
  }
  return rows;
}

/** Keys the reference describes in prose or in the masks table rather than in a row of their own. */
function describedElsewhere(key: string): boolean {
  return /\.access\.(allow|deny)\./.test(key) || /\.except(\.|$)/.test(key) || /\.redaction\.<\*>\./.test(key)
    || /^(listen|tls|upstream|upstream\.tls|upstream\.pool|upstream\.statements|secrets|auth|auth\.lockout|auth\.addressLockout|auth\.passwordPolicy|auth\.oidc\.claims|limits|cache|smtp|reset|portal|portal\.tls|sso|sso\.oidc|sso\.oidc\.claims|sso\.saml|sso\.saml\.attributes|audit|layers|defaults|channels|functions|organizations\.<\*>|users\.<\*>|tables\.<\*>|tables\.<\*>\.access|tables\.<\*>\.redaction)$/.test(key);
}

for (const file of ['pgveil.schema.json', 'users.schema.json', 'policy.schema.json']) {
  test(`docs/configuration.md has a row for every key of ${file}, with the schema's default`, () => {
    const rows = documentedRows();
    const missing: string[] = [];
    const wrongDefault: string[] = [];
    for (const [key, node] of schemaKeys(file)) {
      if (describedElsewhere(key)) continue;
      const cell = rows.get(key.replace(/\.\[i\]/g, '[i]').replace(/\[i\]/g, '.[i]'));
      if (cell === undefined) { missing.push(key); continue; }
      const value = node.default;
      if (value === undefined || typeof value === 'object') continue;
      // unlistedRelations has a default for editors only: the loader wants it stated.
      if (key === 'defaults.unlistedRelations') { assert.match(cell, /must be stated/); continue; }
      if (!cell.replace(/,/g, '').includes(String(value))) wrongDefault.push(`${key}: schema ${String(value)}, reference ${cell}`);
    }
    assert.equal(missing, [], `keys without a row: ${missing.join(', ')}`);
    assert.equal(wrongDefault, [], wrongDefault.join('\n'));
  });
}

test('every mask option of the policy schema is in the masks table', () => {
  const options = [...schemaKeys('policy.schema.json').keys()]
    .filter((k) => /^tables\.<\*>\.redaction\.<\*>\.[a-zA-Z]+$/.test(k))
    .map((k) => k.split('.').pop() as string)
    .filter((o) => o !== 'mask' && o !== 'except');
  const masks = reference.slice(reference.indexOf('### Masks'), reference.indexOf('## Environment variables'));
  assert.ok(options.length >= 6, options.join(', '));
  for (const option of options) assert.ok(masks.includes(`\`${option}\``), `option ${option} is documented under Masks`);
});

test.run();
