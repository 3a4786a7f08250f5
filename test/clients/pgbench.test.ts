// pgbench -S in the simple, extended and prepared protocols through pgveil,
// with a policy on pgbench_accounts: every transaction succeeds and
// the policy applies (masked filler, filtered rows).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    // The policy's table must exist when pgveil starts (a missing one is a load error); pgbench -i recreates it and pgveil reloads.
  extraSql: 'CREATE TABLE public.pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))',
  policyYaml: `
tables:
  public.pgbench_accounts:
    ownership:
      - filter: "aid <= 50000"
    redaction:
      filler: { mask: "null" }
`,
  });
  const init = await run('pgbench', ['-i', '-s', '1', '-q'], {
    env: { ...process.env, PGHOST: h.pg.host, PGPORT: String(h.pg.port), PGUSER: 'postgres', PGPASSWORD: h.pg.password, PGDATABASE: 'analytics' },
    timeoutMs: 60_000,
  });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  const su = await h.pg.connect('analytics');
  await su.query('GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO pgveil_service');
  await su.end();
  if (!(await h.proxy.reload())) throw new Error('reload after pgbench -i failed');
});
test.after(async () => { await h?.close(); });

for (const mode of ['simple', 'extended', 'prepared']) {
  test(`pgbench -S -M ${mode} through pgveil: every transaction succeeds`, async () => {
    const r = await run('pgbench', ['-S', '-n', '-M', mode, '-c', '2', '-t', '300'], {
      env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(h.proxy.port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'prefer' },
      timeoutMs: 60_000,
    });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /number of transactions actually processed: 600\/600/);
    assert.match(r.stdout, /number of failed transactions: 0/);
  });
}

test('the policy applies to what pgbench reads: filler masked, rows past the filter absent', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    const r = await c.query('select count(*)::int as n, count(filler)::int as f, max(aid) as m from pgbench_accounts');
    assert.equal(r.rows, [{ n: 50000, f: 0, m: 50000 }]);
  } finally {
    await c.end();
  }
});

test.run();
