// A dashboard through pgveil against the same dashboard straight to
// PostgreSQL: the overhead a BI user actually feels. One dashboard load is
// what a BI tool does when a person opens it: connect, the tool's
// catalog-sync burst (the catalog statements real clients send, recorded in
// test/corpus/client-statements.json: psql, pgjdbc, SQLAlchemy, psqlODBC),
// then six panels over ~300,000 orders (joins, GROUP BY, window functions,
// a top-N). Through pgveil the orders are filtered to the user's org and
// customer e-mails masked by the policy; directly, the same panels carry the
// org filter by hand, so both sides read the same rows. Loads alternate
// between the two (several rounds, medians), at 1 and 4 dashboards at once.
// Target: the mix through pgveil at ≥ 0.95× direct (time direct / time pgveil).
// Run: npm run build:test && node build/bench/bi.js [rounds]
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHarness, passwords } from '../test/helpers/harness.js';
import { median } from './pgbench-run.js';
import { barChart } from './chart.js';
import { saveResults, type Table } from './results.js';

const rounds = Math.max(1, Number(process.argv[2] ?? 5));
const ORGS = ['acme', 'globex', 'initech'];

const schemaSql = `
  CREATE SCHEMA sales;
  CREATE TABLE sales.products (id int PRIMARY KEY, name text, category text);
  CREATE TABLE sales.customers (id int PRIMARY KEY, org_id text NOT NULL, name text, email text, region text);
  CREATE TABLE sales.orders (id int PRIMARY KEY, org_id text NOT NULL, customer_id int, product_id int, amount numeric(10,2), created_at timestamptz);
  INSERT INTO sales.products SELECT g, 'product ' || g, (ARRAY['hardware','software','services','support'])[1 + g % 4] FROM generate_series(1, 500) g;
  INSERT INTO sales.customers SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3], 'customer ' || g, 'c' || g || '@example.com', (ARRAY['north','south','east','west'])[1 + g % 4] FROM generate_series(1, 20000) g;
  INSERT INTO sales.orders SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3], 1 + (g::bigint * 7919) % 20000, 1 + (g::bigint * 31) % 500, ((g::bigint * 37) % 100000) / 100.0, timestamptz '2025-01-01' + (g % 700) * interval '1 day' + (g % 86400) * interval '1 second' FROM generate_series(1, 300000) g;
  CREATE INDEX ON sales.orders (org_id, created_at);
  ANALYZE sales.products, sales.customers, sales.orders;
  GRANT USAGE ON SCHEMA sales TO pgveil_service;
  GRANT SELECT ON ALL TABLES IN SCHEMA sales TO pgveil_service;
`;

const policyYaml = `
tables:
  sales.orders:
    ownership:
      - filter: "org_id = \${user.org}"
  sales.customers:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      email: { mask: email }
`;

/** Each panel as pgveil gets it, and directly with the policy's org filter written by hand (o = orders, c = customers). */
const panels: Array<{ name: string; sql: (direct: boolean) => string }> = [
  { name: 'revenue by month', sql: (d) => `SELECT date_trunc('month', created_at) AS month, sum(amount) AS revenue, count(*) AS orders FROM sales.orders o ${d ? "WHERE o.org_id = 'acme'" : ''} GROUP BY 1 ORDER BY 1` },
  { name: 'top customers', sql: (d) => `SELECT c.name, c.email, sum(o.amount) AS total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ${d ? "WHERE o.org_id = 'acme' AND c.org_id = 'acme'" : ''} GROUP BY c.name, c.email ORDER BY total DESC LIMIT 20` },
  { name: 'running total', sql: (d) => `SELECT month, revenue, sum(revenue) OVER (ORDER BY month) AS running FROM (SELECT date_trunc('month', created_at) AS month, sum(amount) AS revenue FROM sales.orders o ${d ? "WHERE o.org_id = 'acme'" : ''} GROUP BY 1) m ORDER BY month` },
  { name: 'rank by category', sql: (d) => `SELECT category, name, revenue, rank() OVER (PARTITION BY category ORDER BY revenue DESC) FROM (SELECT p.category, p.name, sum(o.amount) AS revenue FROM sales.orders o JOIN sales.products p ON p.id = o.product_id ${d ? "WHERE o.org_id = 'acme'" : ''} GROUP BY p.category, p.name) r ORDER BY category, rank LIMIT 40` },
  { name: 'regions this quarter', sql: (d) => `SELECT c.region, count(DISTINCT o.customer_id) AS buyers, avg(o.amount) AS average FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id WHERE o.created_at >= timestamptz '2026-10-01' ${d ? "AND o.org_id = 'acme' AND c.org_id = 'acme'" : ''} GROUP BY c.region ORDER BY c.region` },
  { name: 'recent orders', sql: (d) => `SELECT o.id, o.created_at, c.name, o.amount FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id ${d ? "WHERE o.org_id = 'acme' AND c.org_id = 'acme'" : ''} ORDER BY o.created_at DESC, o.id LIMIT 100` },
];

type Side = 'direct' | 'pgveil';
const sameRows: Record<string, string> = {};
interface Load { connect: number; catalog: number; panels: number[]; total: number }

const corpus: string[] = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'corpus', 'client-statements.json'), 'utf8'));

const h = await startHarness({ tlsMode: 'prefer', extraSql: schemaSql, policyYaml });
try {
  const connection = (side: Side): pg.ClientConfig => (side === 'direct'
    ? { host: h.pg.host, port: h.pg.port, user: 'postgres', password: h.pg.password, database: 'analytics' }
    : { host: '127.0.0.1', port: h.proxy.port, user: 'alice@acme.com', password: passwords['alice@acme.com'], database: 'analytics', ssl: false });
  // The catalog burst: the corpus statements pgveil answers (a tool's refused probe would cost nothing upstream).
  const burst: string[] = [];
  {
    const probe = new pg.Client(connection('pgveil'));
    await probe.connect();
    for (const sql of corpus) if (await probe.query(sql).then(() => true, () => false)) burst.push(sql);
    await probe.end();
  }
  // Same rows both ways: each panel's row count through pgveil equals the hand-filtered one.
  for (const side of ['direct', 'pgveil'] as const) {
    const c = new pg.Client(connection(side));
    await c.connect();
    const counts = [];
    for (const p of panels) counts.push((await c.query(p.sql(side === 'direct'))).rowCount);
    sameRows[side] = counts.join(",");
    await c.end();
  }
  if (sameRows.direct !== sameRows.pgveil) throw new Error(`panels differ: direct ${sameRows.direct}, pgveil ${sameRows.pgveil}`);

  const loadOnce = async (side: Side): Promise<Load> => {
    const t0 = performance.now();
    const c = new pg.Client(connection(side));
    await c.connect();
    const t1 = performance.now();
    for (const sql of burst) await c.query(sql);
    const t2 = performance.now();
    const times: number[] = [];
    for (const p of panels) {
      const s = performance.now();
      await c.query(p.sql(side === 'direct'));
      times.push(performance.now() - s);
    }
    await c.end();
    return { connect: t1 - t0, catalog: t2 - t1, panels: times, total: performance.now() - t0 };
  };
  const results: Record<string, Record<Side, Load[]>> = {};
  for (const concurrent of [1, 4]) {
    const key = String(concurrent);
    results[key] = { direct: [], pgveil: [] };
    await Promise.all([loadOnce('direct'), loadOnce('pgveil')]); // warm
    for (let r = 0; r < rounds; r++) {
      for (const side of (r % 2 ? ['pgveil', 'direct'] : ['direct', 'pgveil']) as Side[]) {
        results[key][side].push(...await Promise.all(Array.from({ length: concurrent }, () => loadOnce(side))));
      }
    }
  }
  const ms = (xs: number[]) => median(xs).toFixed(1);
  const table: Table = {
    caption: `One dashboard load, ms (median of ${rounds} rounds; at 4, of every load of every round)`,
    columns: ['dashboards at once', 'part', 'direct ms', 'pgveil ms', 'direct / pgveil'],
    rows: [],
  };
  const summary: Table = { caption: 'Target: the mix through pgveil at ≥ 0.95× direct', columns: ['dashboards at once', 'direct / pgveil (whole load)', 'target'], rows: [] };
  for (const [key, r] of Object.entries(results)) {
    const part = (name: string, f: (l: Load) => number) => {
      const d = median(r.direct.map(f)), v = median(r.pgveil.map(f));
      table.rows.push([key, name, d.toFixed(1), v.toFixed(1), (d / v).toFixed(2)]);
    };
    part('connect + login', (l) => l.connect);
    part(`catalog burst (${burst.length} statements)`, (l) => l.catalog);
    panels.forEach((p, i) => part(p.name, (l) => l.panels[i]));
    part('whole load', (l) => l.total);
    const ratio = median(r.direct.map((l) => l.total)) / median(r.pgveil.map((l) => l.total));
    summary.rows.push([key, ratio.toFixed(2), ratio >= 0.95 ? 'met' : 'not met']);
  }
  saveResults({
    name: 'bi',
    title: 'A BI dashboard: direct and through pgveil',
    notes: [
      `~300,000 orders in 3 orgs, 20,000 customers, 500 products. pgveil filters orders and customers to the user's org and masks customer e-mails; the direct side writes the org filter by hand, so both read the same rows (checked: each panel returns as many rows both ways). Direct logs in as the superuser; pgveil as alice@acme.com with SCRAM over plaintext. Catalog burst: ${burst.length} of the ${corpus.length} recorded catalog statements of real clients (those pgveil answers).`,
      `Medians over ${rounds} rounds, direct and pgveil alternating; PostgreSQL, pgveil and the client share the machine. ${summary.rows.map((r) => `${r[0]} at once: ${r[1]}× (${r[2]})`).join('; ')}.`,
    ],
    tables: [table, summary],
    data: { rounds, burst: burst.length, results },
    svg: barChart(Object.entries(results).map(([key, r]) => ({ label: `${key} dashboard${key === '1' ? '' : 's'} at once`, bars: (['direct', 'pgveil'] as const).map((s) => ({ label: s, value: Number(ms(r[s].map((l) => l.total))) })) })), 'One dashboard load (ms, median; shorter is better)', ' ms'),
  });
} finally {
  await h.close();
}
