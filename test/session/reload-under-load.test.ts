// Reload under load: four clients query a protected table in a loop
// (simple protocol with inlined constants, so the shape cache is on the path,
// and the unnamed extended protocol) while the policy is tightened — a filter
// narrowed and a mask added — and then invalid policies are written. No query
// may fail; every result is exactly the old or the new policy's answer, and
// every statement sent after `reload()` resolved true follows the tightened
// one; the invalid policies are rejected (`reload()` false) and the tightened
// one stays.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

const extraSql = `
CREATE TABLE crm.tickets (id int PRIMARY KEY, org_id text NOT NULL, priority int NOT NULL, reporter_email text, body text NOT NULL);
INSERT INTO crm.tickets
SELECT g, CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END, 1 + (g * 7) % 4,
       CASE WHEN g % 9 = 4 THEN NULL ELSE 'user' || g || '@' || CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END || '.example' END,
       'ticket ' || g
FROM generate_series(1, 120) g;
GRANT SELECT ON crm.tickets TO pgveil_service;
`;

const basePolicy = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.tickets:
    ownership:
      - filter: "org_id = \${user.org}"
`;

const tightenedPolicy = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.tickets:
    ownership:
      - filter: "org_id = \${user.org}"
      - filter: "priority <= 2"
    redaction:
      reporter_email: { mask: email }
`;

/** Not YAML at all. */
const brokenYaml = `${tightenedPolicy}\n  crm.other: [\n`;
/** Valid YAML, but a mask that does not fit its column's type (a load error against the catalog). */
const misfitPolicy = tightenedPolicy.replace('reporter_email: { mask: email }', 'reporter_email: { mask: round, step: 10 }');

interface Ticket { id: number; org_id: string; priority: number; reporter_email: string | null }

function maskEmail(v: string | null): string | null {
  if (v === null) return null;
  const at = v.lastIndexOf('@');
  return v.includes('@') ? `${v[0]}***@${v.slice(at + 1)}` : '***';
}

let h: Harness;
let raw: Ticket[] = [];
test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: basePolicy });
  const db = await h.pg.connect('analytics');
  raw = (await db.query<Ticket>('SELECT id, org_id, priority, reporter_email FROM crm.tickets ORDER BY id')).rows;
  await db.end();
});
test.after(async () => { await h?.close(); });

function expected(org: string, above: number, tightened: boolean): string {
  const rows = raw
    .filter((t) => t.org_id === org && t.id > above && (!tightened || t.priority <= 2))
    .map((t) => ({ ...t, reporter_email: tightened ? maskEmail(t.reporter_email) : t.reporter_email }));
  return JSON.stringify(rows);
}

interface Observation { client: number; started: number; finished: number; above: number; rows: string }

test('clients in a loop across a tightening reload and two rejected ones: no failure, the new policy from the next statement on', async () => {
  const specs = [
    { user: 'alice@acme.com', org: 'acme', extended: false },
    { user: 'bob@globex.com', org: 'globex', extended: true },
    { user: 'carol@acme.com', org: 'acme', extended: true },
    { user: 'bob@globex.com', org: 'globex', extended: false },
  ];
  const clients = await Promise.all(specs.map(async (s) => {
    const c = new pg.Client(clientConfig(h, s.user));
    await c.connect();
    return c;
  }));
  const observations: Observation[] = [];
  const failures: string[] = [];
  let running = true;
  const loops = clients.map(async (c, i) => {
    const spec = specs[i];
    let n = 0;
    while (running) {
      const above = (n++ * 7) % 40;
      const text = 'SELECT id, org_id, priority, reporter_email FROM crm.tickets WHERE id > ';
      const started = performance.now();
      try {
        const r = spec.extended
          ? await c.query<Ticket>(`${text}$1 ORDER BY id`, [above])
          : await c.query<Ticket>(`${text}${above} ORDER BY id`);
        observations.push({ client: i, started, finished: performance.now(), above, rows: JSON.stringify(r.rows) });
      } catch (err) {
        const e = err as { code?: string; message: string };
        failures.push(`client ${i} (${spec.user}, ${spec.extended ? 'extended' : 'simple'}), id > ${above}: ${e.code} ${e.message}`);
      }
    }
  });

  const policyFile = join(h.dir, 'policy.yaml');
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await pause(1500);
  writeFileSync(policyFile, tightenedPolicy);
  assert.is(await h.proxy.reload(), true, 'the tightened policy loads');
  const tightenedAt = performance.now();
  await pause(2000);
  writeFileSync(policyFile, brokenYaml);
  assert.is(await h.proxy.reload(), false, 'a policy that is not YAML is rejected');
  await pause(1500);
  writeFileSync(policyFile, misfitPolicy);
  assert.is(await h.proxy.reload(), false, 'a mask that does not fit its column is rejected');
  await pause(1500);
  running = false;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.end()));

  const after = observations.filter((o) => o.started > tightenedAt);
  const before = observations.filter((o) => o.finished < tightenedAt);
  console.log(`  ${observations.length} statements: ${before.length} finished before the reload, ${after.length} sent after it; ${failures.length} failed`);
  assert.equal(failures, [], `queries failed:\n${failures.slice(0, 10).join('\n')}`);
  assert.ok(before.length >= 20 && after.length >= 40, `too few statements to judge: ${before.length} before, ${after.length} after`);
  for (const i of specs.keys()) {
    assert.ok(after.some((o) => o.client === i), `client ${i} ran after the reload`);
  }
  const wrong: string[] = [];
  for (const o of observations) {
    const org = specs[o.client].org;
    const now = expected(org, o.above, true);
    const old = expected(org, o.above, false);
    if (o.started > tightenedAt) {
      if (o.rows !== now) wrong.push(`client ${o.client}, id > ${o.above}, sent ${(o.started - tightenedAt).toFixed(1)} ms after the reload: not the tightened answer: ${o.rows.slice(0, 300)}`);
    } else if (o.rows !== now && o.rows !== old) {
      wrong.push(`client ${o.client}, id > ${o.above}, around the reload: neither policy's answer: ${o.rows.slice(0, 300)}`);
    }
  }
  assert.equal(wrong, [], wrong.slice(0, 5).join('\n'));
  const sawOld = before.filter((o) => o.rows === expected(specs[o.client].org, o.above, false) && o.rows !== expected(specs[o.client].org, o.above, true));
  assert.ok(sawOld.length > 0, 'before the reload the old policy was in force');
});

test('after the rejected reloads a new session still gets the tightened policy', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  const r = await c.query<Ticket>('SELECT id, org_id, priority, reporter_email FROM crm.tickets WHERE id > 0 ORDER BY id');
  assert.is(JSON.stringify(r.rows), expected('acme', 0, true));
  await c.end();
});

test.run();
