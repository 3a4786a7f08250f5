// Version-sensitive threat tests (run on every major PGVEIL_TEST_PG_MAJOR
// selects; listed in test/versions.json):
//   A11  a statement an older upstream's grammar reads differently never runs
//        there: `select 0x10` answers 16 on 16+, is refused on 14/15, and is
//        never `0 AS x10`;
//   A6/A9 every function of the refused families in the running upstream's
//        pg_proc is refused through pgveil, or allowed by a named rule;
//   the scramble helpers: a policy with scramble/hash masks and no helpers
//        upstream stops `pgveil serve` (exit 2, naming install-helpers) and
//        is rejected on reload (the old policy stays).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { clientConfig, startHarness, type Harness } from '../helpers/harness.js';
import { allowedFamilyFunctions, refusedFamily } from '../../src/rewrite/functions.js';

let h: Harness;

test.before(async () => {
  h = await startHarness({ tlsMode: 'disable' });
});

test.after(async () => {
  await h?.close();
});

async function asUser<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com', { ssl: false }));
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

test('A11 select 0x10 through pgveil answers 16 on 16+, is refused on 14 and 15, never 0 AS x10', async () => {
  await asUser(async (c) => {
    for (const protocol of ['simple', 'extended'] as const) {
      // The decimal twin first, so a shape-cache entry exists that 0x10 must not reuse.
      const run = (text: string) => (protocol === 'simple' ? c.query(text) : c.query({ text, values: [] }));
      assert.equal((await run('select 16 as v')).rows, [{ v: 16 }]);
      try {
        const r = await run('select 0x10');
        assert.ok(h.pg.major >= 16, `PostgreSQL ${h.pg.major} answered ${JSON.stringify(r.rows)} (${protocol})`);
        assert.equal(r.fields.map((f) => f.name), ['?column?']);
        assert.equal(r.rows, [{ '?column?': 16 }]);
      } catch (err) {
        const e = err as { code?: string; message: string };
        assert.ok(h.pg.major < 16, `PostgreSQL ${h.pg.major} refused 0x10 (${protocol}): ${e.message}`);
        assert.is(e.code, '42601', e.message);
        assert.match(e.message, /read differently by PostgreSQL 1[45] than by pgveil|syntax error|trailing junk/);
      }
      try {
        const r = await run('select 1_000');
        assert.ok(h.pg.major >= 16);
        assert.equal(r.rows, [{ '?column?': 1000 }]);
      } catch (err) {
        assert.ok(h.pg.major < 16, (err as Error).message);
        assert.is((err as { code?: string }).code, '42601');
      }
    }
  });
});

test('A6 A9 every pg_proc function of a refused family is refused through pgveil, or allowed by a named rule', async () => {
  const admin = await h.pg.connect('analytics');
  let names: string[];
  try {
    const r = await admin.query<{ n: string }>(`SELECT DISTINCT proname::text AS n FROM pg_catalog.pg_proc ORDER BY 1`);
    names = r.rows.map((x) => x.n).filter((n) => refusedFamily.test(n));
  } finally {
    await admin.end();
  }
  assert.ok(names.length > 40, `only ${names.length} family functions found`);
  const slipped: string[] = [];
  await asUser(async (c) => {
    for (const fn of names) {
      if (allowedFamilyFunctions.has(fn)) continue;
      // Never evaluated even if forwarded: WHERE false.
      const err = await c.query(`select 1 where false and pg_catalog.${fn}() is not null`).then(() => undefined, (e: Error) => e);
      if (!err || !/is not allowed through pgveil/.test(err.message)) slipped.push(`${fn}: ${err ? err.message : 'forwarded'}`);
    }
  });
  assert.equal(slipped, [], `PostgreSQL ${h.pg.version}: functions of refused families not refused`);
});

const scramblePolicy = `
secrets: { scrambleKey: "version-drift test scramble key 51c" }
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      name: { mask: scramble }
`;

test('scramble helpers missing upstream: pgveil serve refuses to start (exit 2) and says to run pgveil install-helpers', async () => {
  const policyFile = join(h.dir, 'policy-scramble.yaml');
  writeFileSync(policyFile, scramblePolicy);
  const configFile = join(h.dir, 'pgveil-scramble.yaml');
  writeFileSync(configFile, readFileSync(h.configFile, 'utf8').replace(/^policy: .*$/m, 'policy: policy-scramble.yaml'));
  const child = spawn(process.execPath, ['bin/pgveil.js', 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGTERM'); resolve(null); }, 20000);
    child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.is(code, 2, `exit code; stderr: ${stderr}`);
  assert.match(stderr, /pgveil helper schema is not installed upstream/);
  assert.ok(stderr.includes(`pgveil install-helpers --config ${configFile}`), stderr);
});

test('scramble helpers missing upstream: a reload to a policy with scramble masks is rejected and the old policy stays', async () => {
  const policyFile = join(h.dir, 'policy.yaml');
  const before = readFileSync(policyFile, 'utf8');
  writeFileSync(policyFile, scramblePolicy);
  try {
    assert.is(await h.proxy.reload(), false);
    await asUser(async (c) => {
      const r = await c.query('select name from crm.employees order by id');
      assert.equal(r.rows, [{ name: 'Ann' }], 'the old policy (no mask, acme rows only) still applies');
    });
  } finally {
    writeFileSync(policyFile, before);
    await h.proxy.reload();
  }
});

test.run();
