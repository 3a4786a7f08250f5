// A4 with rules on a partition as well as on its root: the rules combine
// subtractively; a parent read that would apply only the parent's rules to
// such a partition is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    extraSql: `
      CREATE SCHEMA hr;
      CREATE TABLE hr.events (id int, org_id text, amount numeric) PARTITION BY LIST (org_id);
      CREATE TABLE hr.events_acme PARTITION OF hr.events FOR VALUES IN ('acme');
      CREATE TABLE hr.events_globex PARTITION OF hr.events FOR VALUES IN ('globex');
      INSERT INTO hr.events VALUES (1, 'acme', 10), (2, 'globex', 20), (3, 'acme', 30);
      GRANT USAGE ON SCHEMA hr TO pgveil_service;
      GRANT SELECT ON hr.events, hr.events_acme, hr.events_globex TO pgveil_service;`,
    policyYaml: `
tables:
  hr.events:
    ownership:
      - filter: "org_id = \${user.org}"
  hr.events_acme:
    redaction:
      amount: { mask: "null" }
`,
  });
});
test.after(async () => { await h?.close(); });

async function q(sql: string): Promise<{ rows?: unknown[]; code?: string }> {
  const c = new pg.Client(clientConfig(h, 'bob@globex.com'));
  await c.connect();
  try { return { rows: (await c.query(sql)).rows }; } catch (e) { return { code: (e as { code?: string }).code }; } finally { await c.end(); }
}

test("A4 a partition listed in the policy keeps its root's filter and adds its own mask", async () => {
  assert.equal((await q('select id, amount from hr.events_acme order by id')).rows, [], 'bob (globex) sees no acme rows through the partition');
  const alice = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await alice.connect();
  try {
    const r = await alice.query('select id, amount from hr.events_acme order by id');
    assert.equal(r.rows, [{ id: 1, amount: null }, { id: 3, amount: null }]);
  } finally {
    await alice.end();
  }
});

test('A4 reading the parent with its partitions is refused when a partition has rules of its own; ONLY and the plain partitions serve', async () => {
  assert.is((await q('select * from hr.events')).code, '42501');
  assert.equal((await q('select * from only hr.events')).rows, []);
  assert.equal((await q('select id, amount from hr.events_globex')).rows, [{ id: 2, amount: '20' }]);
});

test.run();
