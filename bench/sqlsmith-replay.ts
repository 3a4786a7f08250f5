// False refusals found by a random-SQL generator: Debian's sqlsmith prints
// random statements for the test harness's schema; each runs directly as the
// service role and through pgveil as alice (both inside a transaction that is
// rolled back). Prints the statements pgveil refused although upstream
// answered them and that name no protected table, grouped by pgveil's message.
// Not a test: it needs the sqlsmith binary (apt-get install sqlsmith).
// Run: npm run build:test && node build/bench/sqlsmith-replay.js [queries=2000] [seed=1] [--show=N examples per cause]
//      [--exclude-catalog: statements over the user tables only]
import pg from 'pg';
import { spawnSync } from 'node:child_process';
import { startHarness, clientConfig, employeesPolicy, policyDefaults } from '../test/helpers/harness.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const queries = Number(args[0] ?? 2000);
const seed = Number(args[1] ?? 1);
const show = Number(process.argv.find((a) => a.startsWith('--show='))?.slice(7) ?? 1);
const protectedName = /\bemployees\b/i;

type Result = { ok: true } | { ok: false; code?: string; message: string };

async function run(c: pg.Client, sql: string): Promise<Result> {
  try {
    await c.query('BEGIN');
    await c.query(sql);
    return { ok: true };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { ok: false, code: err.code, message: err.message };
  } finally {
    await c.query('ROLLBACK').catch(() => {});
  }
}

/** A refusal message with names and numbers blanked, so refusals of one cause group together. */
function cause(r: { code?: string; message: string }): string {
  return `${r.code} ${r.message.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N')}`;
}

// A few unprotected tables of assorted types besides the harness's (crm.employees is the protected one), and
// crm.notes, listed in the policy with an access rule that denies another user only.
const h = await startHarness({
  extraSql: `CREATE TABLE public.orders (id bigint PRIMARY KEY, placed timestamptz, amount numeric(10,2), tags text[], meta jsonb, note varchar(40));
    INSERT INTO public.orders SELECT g, now() - g * interval '1 day', g * 1.5, ARRAY['t' || g % 3], jsonb_build_object('k', g), 'n' || g FROM generate_series(1, 100) g;
    CREATE TABLE crm.notes (id int PRIMARY KEY, body text, at date);
    INSERT INTO crm.notes SELECT g, 'note ' || g, current_date - g FROM generate_series(1, 50) g;
    CREATE VIEW public.order_totals AS SELECT note, sum(amount) AS total FROM public.orders GROUP BY note;
    GRANT SELECT ON ALL TABLES IN SCHEMA crm, public TO pgveil_service;
    ANALYZE;`,
  policyYaml: `${policyDefaults}${employeesPolicy}  crm.notes:
    access:
      deny: { users: [bob@globex.com] }
`,
});
try {
  const target = `host=127.0.0.1 port=${h.pg.port} dbname=analytics user=pgveil_service password=${h.servicePassword}`;
  const flags = process.argv.includes('--exclude-catalog') ? ['--exclude-catalog'] : [];
  const out = spawnSync('sqlsmith', [`--target=${target}`, '--dry-run', `--max-queries=${queries}`, `--seed=${seed}`, ...flags], {
    encoding: 'utf8', maxBuffer: 1 << 30,
  });
  if (out.error) throw out.error;
  // sqlsmith ends every statement with ";" on a line of its own.
  const statements = out.stdout.split(/;\n/).map((s) => s.trim()).filter((s) => /^(select|insert|update|delete|merge|with|values)\b/i.test(s));
  const direct = new pg.Client({ host: '127.0.0.1', port: h.pg.port, database: 'analytics', user: 'pgveil_service', password: h.servicePassword });
  await direct.connect();
  const through = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await through.connect();
  for (const c of [direct, through]) await c.query("SET statement_timeout = '2s'");
  const falseRefusals = new Map<string, string[]>();
  let bothOk = 0;
  const upstreamFails = new Map<string, number>();
  let protectedSkipped = 0;
  for (const sql of statements) {
    const up = await run(direct, sql);
    if (!up.ok) { upstreamFails.set(cause(up), (upstreamFails.get(cause(up)) ?? 0) + 1); continue; }
    if (protectedName.test(sql)) { protectedSkipped++; continue; }
    const via = await run(through, sql);
    if (via.ok) { bothOk++; continue; }
    const key = cause(via);
    falseRefusals.set(key, [...(falseRefusals.get(key) ?? []), sql]);
  }
  await direct.end();
  await through.end();
  const refused = [...falseRefusals.values()].reduce((n, l) => n + l.length, 0);
  console.log(`${statements.length} statements (seed ${seed}): upstream failed ${[...upstreamFails.values()].reduce((a, b) => a + b, 0)}, name a protected table ${protectedSkipped}, ` +
    `answered by both ${bothOk}, refused by pgveil only ${refused} (${((100 * refused) / Math.max(1, bothOk + refused)).toFixed(1)}% of those upstream answers)`);
  console.log('upstream errors:', [...upstreamFails].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, n]) => `${n} × ${k}`).join('; '));
  // Refusals by a named rule (a system relation or function pgveil refuses on purpose), then everything else:
  // the second group is where needless refusals (analyzer limits) show.
  const byRule = (key: string) => /^42501 (permission denied for (pg_catalog|information_schema)\.|function \S+ is not allowed through pgveil)/.test(key);
  for (const [title, pick] of [['refused by a system-relation or function rule', true], ['other refusals', false]] as const) {
    const group = [...falseRefusals].filter(([key]) => byRule(key) === pick).sort((a, b) => b[1].length - a[1].length);
    console.log(`\n── ${title}: ${group.reduce((n, [, l]) => n + l.length, 0)}`);
    for (const [key, list] of group) {
      console.log(`${String(list.length).padStart(5)}  ${key}`);
      for (const sql of list.slice(0, show)) console.log(`         ${sql.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
  }
} finally {
  await h.close();
}
