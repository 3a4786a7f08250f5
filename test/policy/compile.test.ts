// compilePolicy / profileFor: access, ownership, redaction, except, layers,
// defaults, attribute binding (C2), interning, precedence. Policies are read
// from YAML through the real loader so keys are canonical as in production.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { ConfigError, loadPolicy, loadUsers } from '../../src/config/load.js';
import type { User, UsersFile } from '../../src/config/types.js';
import { compilePolicy, PolicyCompileError, profileFor, type CompiledPolicy } from '../../src/policy/compile.js';
import { combineTableProfiles, maskRank, meet, mostRestrictive } from '../../src/policy/precedence.js';
import type { MaskKind, MaskSpec, Profile, TableProfile } from '../../src/policy/types.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/demo/embedded-postgres.js';

const usersYaml = `
organizations:
  acme: { attributes: { region: EU, regions: [EU, UK], tier: 2 } }
  globex: {}
users:
  alice@acme.com: { org: acme, groups: [analysts, sales] }
  carol@acme.com: { org: acme, groups: [sales, analysts] }
  dave@acme.com: { org: acme, groups: [analysts, sales], attributes: { region: US } }
  hank@acme.com: { org: acme, groups: [hr] }
  bob@globex.com: { org: globex, groups: [analysts] }
  gina@globex.com: { org: globex, groups: [auditors] }
  mallory@globex.com: { org: globex, groups: [analysts], attributes: { region: "o'; drop table x; --", cost_center: "$pgv$); drop table x; --" } }
  nobody: { groups: [] }
`;

const policyYaml = `
secrets: { scrambleKey: "a plain test key, long enough" }
tables:
  crm.employees:
    access:
      allow: { orgs: [acme, globex], except: { users: [nobody] } }
    ownership:
      - filter: "org_id = \${user.org}  -- one org"
        except: { groups: [auditors] }
      - filter: "region = ANY(\${user.attributes.regions})"
    redaction:
      ssn:    { mask: partial, keepLast: 4, except: { groups: [hr] } }
      emp_no: { mask: scramble }
      Email:  { mask: email }
      '"Notes"': { mask: custom, expr: "CASE WHEN \${user.attributes.region} = 'EU' THEN pg_catalog.left(\${column}, 3) END" }
      salary: { mask: "null", except: { groups: [hr] } }
  crm.regions:
    ownership:
      - filter: "code = \${user.attributes.region}"
  crm.secrets:
    access:
      deny: { groups: [analysts], except: { users: [dave@acme.com] } }
    redaction:
      secret: { mask: full }
  '"Sales"."Orders"':
    ownership:
      - filter: "owner = \${user.name} OR \${user.groups} && ARRAY['auditors']"
`;

let dir: string;
let users: UsersFile;

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Policies here are about rules; the defaults every policy must state are added when a test does not state them. */
function compile(policy: string, generation = 1): CompiledPolicy {
  const text = /^defaults:/m.test(policy) ? policy : `defaults: { unlistedRelations: allow }\n${policy}`;
  return compilePolicy(loadPolicy(write('policy.yaml', text), users), users, generation);
}

/** The problems the loader (and so `pgveil check` and serve) reports for a policy that does not compile. */
function compileProblems(policy: string): string[] {
  try {
    compile(policy);
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.unreachable('the policy loaded');
  return [];
}

function user(name: string): User {
  const u = users.users.get(name);
  if (!u) throw new Error(`no user ${name}`);
  return u;
}

function table(p: Profile, relation: string): TableProfile {
  const t = p.tables.get(relation);
  if (!t) throw new Error(`no table ${relation}`);
  return t;
}

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgveil-policy-'));
  users = loadUsers(write('users.yaml', usersYaml));
});

test('access: allow by org with except; deny by group with except; unlisted relations are not in the profile', () => {
  const c = compile(policyYaml);
  assert.is(table(profileFor(c, user('alice@acme.com')), 'crm.employees').access, true);
  assert.is(table(profileFor(c, user('bob@globex.com')), 'crm.employees').access, true);
  assert.is(table(profileFor(c, user('nobody')), 'crm.employees').access, false, 'no org: not allowed');
  assert.is(table(profileFor(c, user('alice@acme.com')), 'crm.secrets').access, false, 'analysts are denied');
  assert.is(table(profileFor(c, user('dave@acme.com')), 'crm.secrets').access, true, 'dave is excepted from the deny');
  assert.is(table(profileFor(c, user('hank@acme.com')), 'crm.secrets').access, true, 'not an analyst');
  assert.is(profileFor(c, user('alice@acme.com')).tables.has('crm.lookup'), false);
});

test('access: a denied table carries no filters or masks (they are never needed)', () => {
  const t = table(profileFor(compile(policyYaml), user('nobody')), 'crm.employees');
  assert.equal(t.filters, []);
  assert.is(t.masks.size, 0);
});

test('allow with except on a user; users listed by name', () => {
  const c = compile(`tables:
  crm.t:
    access:
      allow: { users: [bob@globex.com], groups: [hr], except: { users: [hank@acme.com] } }
`);
  assert.is(table(profileFor(c, user('bob@globex.com')), 'crm.t').access, true);
  assert.is(table(profileFor(c, user('hank@acme.com')), 'crm.t').access, false);
  assert.is(table(profileFor(c, user('alice@acme.com')), 'crm.t').access, false);
});

test('ownership: attributes bound as parenthesised typed literals, comments dropped, several filters in order', () => {
  const t = table(profileFor(compile(policyYaml), user('alice@acme.com')), 'crm.employees');
  assert.equal(t.filters, [
    '(org_id = ($pgv$acme$pgv$::pg_catalog.text)   )',
    "(region = ANY((ARRAY[$pgv$EU$pgv$::pg_catalog.text, $pgv$UK$pgv$::pg_catalog.text]::pg_catalog.text[])))",
  ]);
});

test('ownership: except removes a filter for the exempt group only', () => {
  const c = compile(policyYaml);
  const gina = table(profileFor(c, user('gina@globex.com')), 'crm.employees');
  assert.equal(gina.filters, ['false'], 'the org filter is excepted for auditors; globex has no regions attribute');
  const bob = table(profileFor(c, user('bob@globex.com')), 'crm.employees');
  assert.is(bob.filters.length, 2);
});

test('ownership: a missing attribute makes the filter false (fail closed)', () => {
  const c = compile(policyYaml);
  // globex has no `regions` attribute, bob has none either.
  const bob = table(profileFor(c, user('bob@globex.com')), 'crm.employees');
  assert.equal(bob.filters, ['(org_id = ($pgv$globex$pgv$::pg_catalog.text)   )', 'false']);
  // no org at all: ${user.org} cannot be bound.
  const c2 = compile('tables:\n  crm.t:\n    ownership:\n      - filter: "org_id = ${user.org}"\n');
  assert.equal(table(profileFor(c2, user('nobody')), 'crm.t').filters, ['false']);
});

test('ownership: a user attribute overrides the organization attribute', () => {
  const c = compile(policyYaml);
  assert.equal(table(profileFor(c, user('alice@acme.com')), 'crm.regions').filters, ['(code = ($pgv$EU$pgv$::pg_catalog.text))']);
  assert.equal(table(profileFor(c, user('dave@acme.com')), 'crm.regions').filters, ['(code = ($pgv$US$pgv$::pg_catalog.text))']);
});

test('ownership: ${user.name} and ${user.groups} (sorted text[])', () => {
  const t = table(profileFor(compile(policyYaml), user('alice@acme.com')), '"Sales"."Orders"');
  assert.equal(t.filters, [
    "(owner = ($pgv$alice@acme.com$pgv$::pg_catalog.text) OR (ARRAY[$pgv$analysts$pgv$::pg_catalog.text, $pgv$sales$pgv$::pg_catalog.text]::pg_catalog.text[]) && ARRAY['auditors'])",
  ]);
  const none = compile('tables:\n  crm.t:\n    ownership:\n      - filter: "grp = ANY(${user.groups})"\n');
  assert.equal(table(profileFor(none, user('nobody')), 'crm.t').filters, ["(grp = ANY(('{}'::pg_catalog.text[])))"]);
});

test('C2: a hostile attribute comes out as one harmless literal, in filters and custom masks', async () => {
  const c = compile(policyYaml);
  const p = profileFor(c, user('mallory@globex.com'));
  const region = table(p, 'crm.regions').filters[0];
  assert.is(region, "(code = ($pgv$o'; drop table x; --$pgv$::pg_catalog.text))");
  const c2 = compile('tables:\n  crm.t:\n    ownership:\n      - filter: "cc = ${user.attributes.cost_center}"\n');
  const cc = table(profileFor(c2, user('mallory@globex.com')), 'crm.t').filters[0];
  assert.is(cc, '(cc = ($pgv1$$pgv$); drop table x; --$pgv1$::pg_catalog.text))');
  const notes = table(p, 'crm.employees').masks.get('Notes');
  assert.ok(notes?.kind === 'custom');
  // Run them on a real server: the predicates compare against the whole hostile text and table x survives.
  let server: RunningPostgres | undefined;
  let db: pg.Client | undefined;
  try {
    server = await startEmbeddedPostgres();
    db = await server.connect();
    await db.query("CREATE TABLE x (code text, cc text); INSERT INTO x VALUES ('o''; drop table x; --', '$pgv$); drop table x; --'), ('EU', 'EU')");
    for (const scs of ['on', 'off']) {
      await db.query(`SET standard_conforming_strings = ${scs}`);
      const r1 = await db.query(`SELECT count(*)::int AS n FROM x WHERE ${region}`);
      const r2 = await db.query(`SELECT count(*)::int AS n FROM x WHERE ${cc}`);
      assert.is(r1.rows[0].n, 1, `scs=${scs}`);
      assert.is(r2.rows[0].n, 1, `scs=${scs}`);
      const parts = notes!.options.parts as string[];
      const r3 = await db.query(`SELECT ${parts.join('x.code')} AS v FROM x ORDER BY code`);
      assert.equal(r3.rows.map((r) => r.v), [null, null], 'the hostile region is not EU');
    }
    const still = await db.query("SELECT count(*)::int AS n FROM pg_catalog.pg_tables WHERE tablename = 'x'");
    assert.is(still.rows[0].n, 1);
  } finally {
    await db?.end();
    await server?.stop();
  }
});

test('redaction: masks keyed by catalog spelling, except honoured, options kept', () => {
  const c = compile(policyYaml);
  const alice = table(profileFor(c, user('alice@acme.com')), 'crm.employees');
  assert.equal([...alice.masks.keys()].sort(), ['Notes', 'email', 'emp_no', 'salary', 'ssn']);
  assert.equal(alice.masks.get('ssn'), { kind: 'partial', options: { keepFirst: 0, keepLast: 4, fill: 'X' } });
  assert.equal(alice.masks.get('email'), { kind: 'email', options: {} });
  assert.equal(alice.masks.get('salary'), { kind: 'null', options: {} });
  const hank = table(profileFor(c, user('hank@acme.com')), 'crm.employees');
  assert.is(hank.masks.has('ssn'), false, 'hr is excepted from the ssn mask');
  assert.is(hank.masks.has('salary'), false);
  assert.is(hank.masks.has('emp_no'), true);
});

test('redaction: custom masks get ${user.*} bound and ${column} kept as cut points; a missing attribute makes them null', () => {
  const c = compile(policyYaml);
  const alice = table(profileFor(c, user('alice@acme.com')), 'crm.employees').masks.get('Notes')!;
  assert.is(alice.kind, 'custom');
  assert.equal(alice.options.parts, ["CASE WHEN ($pgv$EU$pgv$::pg_catalog.text) = 'EU' THEN pg_catalog.left(", ', 3) END']);
  assert.is(alice.options.expr, "CASE WHEN ($pgv$EU$pgv$::pg_catalog.text) = 'EU' THEN pg_catalog.left(${column}, 3) END");
  const bob = table(profileFor(c, user('bob@globex.com')), 'crm.employees').masks.get('Notes')!;
  assert.equal(bob, { kind: 'null', options: {} });
});

test('redaction: a bound value containing "${column}" is never substituted', () => {
  const u = loadUsers(write('users2.yaml', 'organizations: {}\nusers:\n  eve: { attributes: { tag: "${column}$pgv$" } }\n'));
  const p = compilePolicy(loadPolicy(write('p2.yaml', 'defaults: { unlistedRelations: allow }\ntables:\n  crm.t:\n    redaction:\n      c: { mask: custom, expr: "${column} || ${user.attributes.tag}" }\n'), u), u, 1);
  const spec = table(profileFor(p, u.users.get('eve')!), 'crm.t').masks.get('c')!;
  assert.equal(spec.options.parts, ['', ' || ($pgv1$${column}$pgv$$pgv1$::pg_catalog.text)']);
});

test('layers: a disabled layer contributes nothing', () => {
  const off = (layer: string) => compile(`layers: { ${layer}: false }\n${policyYaml}`);
  assert.is(table(profileFor(off('access'), user('nobody')), 'crm.employees').access, true);
  assert.is(table(profileFor(off('access'), user('alice@acme.com')), 'crm.secrets').access, true);
  assert.equal(table(profileFor(off('ownership'), user('alice@acme.com')), 'crm.employees').filters, []);
  assert.is(table(profileFor(off('redaction'), user('alice@acme.com')), 'crm.employees').masks.size, 0);
  // The other layers still apply.
  assert.is(table(profileFor(off('redaction'), user('alice@acme.com')), 'crm.employees').filters.length, 2);
});

test('defaults are carried into every profile', () => {
  const p = profileFor(compile(`defaults: { unlistedRelations: deny, writes: allow }\ntables: {}\n`), user('alice@acme.com'));
  assert.is(p.unlistedRelations, 'deny');
  assert.is(p.writes, 'allow');
  const d = profileFor(compile('tables: {}\n'), user('alice@acme.com'));
  assert.is(d.unlistedRelations, 'allow');
  assert.is(d.writes, 'deny');
});

test('interning: equal effective policy → the same object and key; any difference → another', () => {
  // Without "Sales"."Orders", whose filter binds ${user.name} and so differs for everyone.
  const shared = policyYaml.slice(0, policyYaml.indexOf(`  '"Sales"."Orders"':`));
  const c = compile(shared, 7);
  const alice = profileFor(c, user('alice@acme.com'));
  const carol = profileFor(c, user('carol@acme.com'));
  assert.ok(alice === carol, 'same org, same groups in another order');
  assert.match(alice.key, /^[0-9a-f]{12}$/);
  assert.is(alice.generation, 7);
  const dave = profileFor(c, user('dave@acme.com'));
  assert.ok(dave !== alice, 'a different region attribute is bound into a filter');
  assert.is.not(dave.key, alice.key);
  assert.is.not(profileFor(c, user('bob@globex.com')).key, alice.key);
  // The same content in a later generation keeps its key.
  const again = profileFor(compile(shared, 8), user('alice@acme.com'));
  assert.is(again.key, alice.key);
  assert.is(again.generation, 8);
  // Users whose differences the policy does not look at share a profile.
  const plain = compile('tables:\n  crm.t:\n    redaction:\n      c: { mask: full }\n');
  assert.ok(profileFor(plain, user('bob@globex.com')) === profileFor(plain, user('alice@acme.com')));
});

test('templates: placeholders inside strings, comments or quoted names, ";", unbalanced parentheses and backslashes in plain strings are refused', () => {
  const bad: Array<[string, RegExp]> = [
    ["name = '${user.name}'", /inside a string/],
    ['name = $$${user.name}$$', /inside a \$\$ quote/],
    ['"col${user.name}" = 1', /inside a quoted name/],
    ['org = ${user.org}; select 1', /";"/],
    ['org = ${user.org}) OR (true', /unbalanced/],
    ['(org = ${user.org}', /unclosed "\("/],
    ["name <> 'a\\' OR true", /backslash/],
    ['x = 1 /* open', /unterminated/],
    ['f${user.org}', /follows a name/],
  ];
  for (const [filter, re] of bad) {
    const yaml = `tables:\n  crm.t:\n    ownership:\n      - filter: ${JSON.stringify(filter)}\n`;
    assert.match(compileProblems(yaml).join('\n'), re, filter);
  }
  // E'…' takes backslashes in every setting; a comment may hold anything.
  const ok = compile(`tables:\n  crm.t:\n    ownership:\n      - filter: ${JSON.stringify("name <> E'a\\\\' /* '${user.name}' */ AND org = ${user.org}")}\n`);
  assert.equal(table(profileFor(ok, user('alice@acme.com')), 'crm.t').filters, ["(name <> E'a\\\\'   AND org = ($pgv$acme$pgv$::pg_catalog.text))"]);
});

test('scramble and hash need secrets.scrambleKey', () => {
  const problems = compileProblems('tables:\n  crm.t:\n    redaction:\n      c: { mask: scramble }\n      d: { mask: hash }\n');
  assert.is(problems.length, 2);
  assert.match(problems[0], /^tables."crm.t".redaction.c: mask scramble needs secrets.scrambleKey/);
  // compilePolicy itself refuses it too (serve's reload path), with the same message.
  const p = { file: 'x', layers: { access: true, ownership: true, redaction: true }, defaults: { unlistedRelations: 'allow', writes: 'deny' }, secrets: {}, functions: { allow: [] }, channels: { listen: [] },
    tables: { 'crm.t': { ownership: [], redaction: { c: { mask: 'hash' } } } } } as const;
  try {
    compilePolicy(structuredClone(p) as never, users, 1);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, PolicyCompileError);
    assert.equal((err as PolicyCompileError).problems, ['tables."crm.t".redaction.c: mask hash needs secrets.scrambleKey (the key the pgveil helper schema is installed with)']);
  }
});

const m = (kind: MaskKind, options: Record<string, unknown> = {}): MaskSpec => ({ kind, options });

test('precedence: null > full > hash > scramble > partial/email/truncate/round > custom, in any order', () => {
  const order: MaskSpec[] = [m('null'), m('full'), m('hash'), m('scramble'), m('partial', { keepLast: 4 }), m('custom', { expr: 'x' })];
  for (let i = 0; i < order.length; i++) {
    for (let j = i; j < order.length; j++) {
      assert.is(meet(order[i], order[j]).kind, order[i].kind);
      assert.is(meet(order[j], order[i]).kind, order[i].kind);
    }
  }
  assert.is(mostRestrictive([]), undefined);
  assert.is(mostRestrictive([m('custom', { expr: 'x' }), m('scramble'), m('email')])!.kind, 'scramble');
  assert.ok(maskRank.email === maskRank.truncate && maskRank.round === maskRank.partial);
});

test('precedence: same rank takes the stricter options, or null when they cannot be ordered', () => {
  assert.equal(meet(m('partial', { keepFirst: 2, keepLast: 4, fill: '*' }), m('partial', { keepFirst: 1, keepLast: 6, fill: 'X' })),
    m('partial', { keepFirst: 1, keepLast: 4, fill: '*' }));
  assert.equal(meet(m('truncate', { to: 'day' }), m('truncate', { to: 'year' })), m('truncate', { to: 'year' }));
  assert.equal(meet(m('truncate', { to: 'year' }), m('truncate', { to: 'month' })), m('truncate', { to: 'year' }));
  assert.equal(meet(m('round', { step: 10 }), m('round', { step: 100 })), m('round', { step: 100 }));
  assert.equal(meet(m('round', { step: 10 }), m('round', { step: 15 })), m('null'));
  assert.equal(meet(m('partial', { keepLast: 4 }), m('email')), m('null'));
  assert.equal(meet(m('custom', { expr: 'a' }), m('custom', { expr: 'b' })), m('null'));
  assert.equal(meet(m('custom', { expr: 'a' }), m('custom', { expr: 'a' })), m('custom', { expr: 'a' }));
  // Order does not matter.
  const specs = [m('round', { step: 10 }), m('round', { step: 20 }), m('round', { step: 30 })];
  const results = new Set([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]].map((o) => JSON.stringify(mostRestrictive(o.map((i) => specs[i])))));
  assert.is(results.size, 1);
});

test('combineTableProfiles: a partition and its root — denied if either denies, all filters, stricter mask per column', () => {
  const root: TableProfile = { relation: 'crm.events', access: true, filters: ['(org = 1)'], masks: new Map([['ip', m('partial', { keepFirst: 3, keepLast: 0, fill: 'X' })], ['who', m('email')]]) };
  const part: TableProfile = { relation: 'crm.events_acme', access: true, filters: ['(org = 1)', '(kind = 2)'], masks: new Map([['ip', m('null')], ['at', m('truncate', { to: 'day' })]]) };
  const both = combineTableProfiles('crm.events_acme', [part, root]);
  assert.is(both.access, true);
  assert.equal(both.filters, ['(org = 1)', '(kind = 2)']);
  assert.equal(both.masks.get('ip'), m('null'));
  assert.equal(both.masks.get('who'), m('email'));
  assert.equal(both.masks.get('at'), m('truncate', { to: 'day' }));
  const denied = combineTableProfiles('crm.events_acme', [part, { ...root, access: false }]);
  assert.is(denied.access, false);
  assert.equal(denied.filters, []);
});

test.run();
