// Rewrite latency: p50/p99 of
//   (a) a cache hit — the real hit path, DecisionEngine.decide() with the
//       statement's constants varied, so simple-protocol texts hit by shape;
//   (b) a cache miss — rewriteSql(): parse, analyze, splice, verify; plus the
//       miss through decide() (a comment makes every text a new shape, so
//       template building and the cache insert are included);
//   (c) one bare libpg-query parseSync() of the same text: the floor (and,
//       for reference, one parse of the rewritten text: what verifying by a
//       full re-parse costs at least);
// for pgbench's short SELECT over a protected pgbench_accounts and a ~1.5 KB
// BI statement (6 joins over protected tables, one of them partitioned, a
// CTE, window functions, ~15 constants). The catalog comes from a real
// PostgreSQL (embedded, with the demo's sample data), read by loadCatalog as
// the service role; no proxy runs. Prints a table and the miss/parse ratio
// (aim ≤ 2.5×, hit p99 ≤ 5 µs) and writes an SVG bar chart to the temp dir.
// Run: npm run build:test && node build/bench/rewrite.js [scale]
// (scale multiplies the iteration counts; default 1, about a minute in all.)
import { timeEach, sinkValue } from './timing.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadModule, parseSync } from 'libpg-query';
import { startEmbeddedPostgres } from '../src/demo/embedded-postgres.js';
import { sampleDataSql, serviceRoleSql, SERVICE_ROLE } from '../src/demo/sample-data.js';
import { scrambleInstallSql, scrambleKeyFromSecret } from '../src/policy/scramble-sql.js';
import { loadAll } from '../src/config/load.js';
import { loadCatalog } from '../src/catalog/load.js';
import { parseSearchPath } from '../src/catalog/resolve.js';
import { compilePolicy, profileFor } from '../src/policy/compile.js';
import { rewriteSql } from '../src/rewrite/rewrite.js';
import { DecisionEngine } from '../src/engine/engine.js';
import { silentLogger } from '../src/observe/log.js';

const scale = Number(process.argv[2] ?? 1);
if (!(scale > 0)) throw new Error('usage: node build/bench/rewrite.js [scale > 0]');
const SCRAMBLE_SECRET = 'rewrite bench scramble key';

// --- upstream: the demo sample (crm.*), a pgbench-like table and a small sales schema, all protected.
const extraSchema = `
CREATE TABLE public.pgbench_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84), org_id text NOT NULL);
INSERT INTO public.pgbench_accounts SELECT g, 1 + g / 10000, 0, '', CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END FROM generate_series(1, 100000) g;
CREATE SCHEMA sales;
CREATE SCHEMA inventory;
CREATE SCHEMA geo;
CREATE TABLE sales.orders (order_id int PRIMARY KEY, org_id text NOT NULL, account_id int NOT NULL, ordered_at timestamptz NOT NULL,
                           status text NOT NULL, total_amount numeric(12,2), currency text NOT NULL, sales_rep_email text);
CREATE TABLE sales.order_items (order_id int NOT NULL, line_no int NOT NULL, org_id text NOT NULL, product_id int NOT NULL,
                                quantity int NOT NULL, unit_price numeric(12,2) NOT NULL, discount numeric(4,3), PRIMARY KEY (order_id, line_no));
CREATE TABLE inventory.products (product_id int PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, category text NOT NULL,
                                 launched_at timestamp NOT NULL, cost_price numeric(12,2));
CREATE TABLE geo.regions (region_code text PRIMARY KEY, region_name text NOT NULL, manager_email text);
GRANT USAGE ON SCHEMA sales, inventory, geo TO ${SERVICE_ROLE};
GRANT SELECT ON public.pgbench_accounts, sales.orders, sales.order_items, inventory.products, geo.regions TO ${SERVICE_ROLE};
ANALYZE;
`;

const policyYaml = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
secrets: { scrambleKey: "${SCRAMBLE_SECRET}" }
tables:
  public.pgbench_accounts:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      filler: { mask: full }
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
      email: { mask: email }
      salary: { mask: round, step: 1000 }
      emp_no: { mask: scramble }
      hired: { mask: truncate, to: year }
  crm.accounts:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.events:
    ownership:
      - filter: "org_id = \${user.org}"
  sales.orders:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      sales_rep_email: { mask: email }
  sales.order_items:
    ownership:
      - filter: "org_id = \${user.org}"
  inventory.products:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      cost_price: { mask: "null" }
  geo.regions:
    redaction:
      manager_email: { mask: hash }
`;

// --- statements: simple-protocol texts with their constants inlined, as a client sends them.
const short = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid}`;

const bi = (v: number) => `/* dashboard: revenue by region and category */
WITH recent AS (
  SELECT e."account_id", e."kind", e."occurred_at", e."amount"
  FROM "crm"."events" e
  WHERE e."occurred_at" >= TIMESTAMPTZ '2025-0${1 + (v % 9)}-01 00:00:00+00' AND e."kind" IN ('invoice', 'meeting')
)
SELECT a."name" AS "Account", emp."region" AS "Region", r."region_name" AS "Region Name", p."category" AS "Category",
       date_trunc('month', o."ordered_at") AS "Month",
       COUNT(DISTINCT o."order_id") AS "Orders",
       SUM(oi."quantity" * oi."unit_price" * (1 - COALESCE(oi."discount", 0))) AS "Revenue",
       SUM(recent."amount") FILTER (WHERE recent."kind" = 'invoice') AS "Invoiced",
       RANK() OVER (PARTITION BY emp."region" ORDER BY SUM(oi."quantity" * oi."unit_price") DESC) AS "Rank",
       SUM(COUNT(*)) OVER (PARTITION BY p."category" ORDER BY date_trunc('month', o."ordered_at")
                           ROWS BETWEEN ${2 + (v % 4)} PRECEDING AND CURRENT ROW) AS "Rolling"
FROM recent
JOIN "crm"."accounts" a ON a."id" = recent."account_id"
JOIN "crm"."employees" emp ON emp."id" = a."owner_id" AND emp."salary" > ${40000 + v}
JOIN "sales"."orders" o ON o."account_id" = a."id" AND o."status" IN ('shipped', 'invoiced')
JOIN "sales"."order_items" oi ON oi."order_id" = o."order_id"
JOIN "inventory"."products" p ON p."product_id" = oi."product_id" AND p."category" <> 'internal'
LEFT JOIN "geo"."regions" r ON r."region_code" = emp."region"
WHERE o."currency" = 'EUR' AND o."total_amount" BETWEEN ${v * 10} AND 250000
  AND p."launched_at" < TIMESTAMP '2025-06-30 23:59:59'
GROUP BY 1, 2, 3, 4, 5
HAVING SUM(oi."quantity" * oi."unit_price") > ${5000 + v}
ORDER BY "Region", "Month" DESC, "Revenue" DESC
LIMIT 500`;


// Decoded from bytes, as the session gets them off the wire (flat strings, not template-literal ropes).
const wire = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

await loadModule();
console.log('starting PostgreSQL and loading the sample data …');
const server = await startEmbeddedPostgres();
const servicePassword = 'bench-' + Math.random().toString(36).slice(2);
try {
  const admin = await server.connect();
  await admin.query('CREATE DATABASE analytics');
  await admin.end();
  const db = await server.connect('analytics');
  await db.query(sampleDataSql());
  await db.query(serviceRoleSql({ database: 'analytics', password: servicePassword }));
  await db.query(extraSchema);
  await db.query(scrambleInstallSql(scrambleKeyFromSecret(SCRAMBLE_SECRET), { serviceRole: SERVICE_ROLE }));
  await db.end();

  // The files as an operator writes them, loaded and validated by the real loader.
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-bench-rewrite-'));
  writeFileSync(join(dir, 'pgveil.yaml'), `tls: { mode: disable }
upstream: { host: 127.0.0.1, port: ${server.port}, database: analytics, user: ${SERVICE_ROLE}, password: "${servicePassword}" }
users: users.yaml
policy: policy.yaml
cache: { maxEntries: 10000 }
`);
  writeFileSync(join(dir, 'users.yaml'), `organizations: { acme: {}, globex: {} }
users:
  alice@acme.com: { org: acme, groups: [analysts] }
`);
  writeFileSync(join(dir, 'policy.yaml'), policyYaml);
  const { config, users, policy } = loadAll(join(dir, 'pgveil.yaml'));
  const alice = users.users.get('alice@acme.com')!;
  const searchPathText = '"$user", public';
  const searchPath = parseSearchPath(searchPathText);

  // Miss path inputs: compilePolicy + loadCatalog directly, as the brief of the benchmark asks.
  const compiled = compilePolicy(policy, users, 1);
  const svc = new pg.Client({ host: server.host, port: server.port, database: 'analytics', user: SERVICE_ROLE, password: servicePassword });
  await svc.connect();
  const catalog = await loadCatalog(svc, { protectedRelations: [...compiled.tables.keys()], serviceRole: SERVICE_ROLE });
  await svc.end();
  const profile = profileFor(compiled, alice);

  // Hit path: the real DecisionEngine, loaded against the same server.
  const active = new DecisionEngine(config, servicePassword, silentLogger);
  await active.load(users, policy);
  const activeProfile = active.profileFor(alice)!;

  interface Case { name: string; texts: string[] }
  const cases: Case[] = [
    { name: 'pgbench SELECT', texts: Array.from({ length: 1024 }, (_, i) => wire(short(1 + ((i * 7919) % 100_000)))) },
    { name: 'BI dashboard', texts: Array.from({ length: 256 }, (_, i) => wire(bi(i))) },
  ];

  // Correctness first: the rewrite happens, and a hit returns what a fresh rewrite gives.
  for (const c of cases) {
    for (const sql of c.texts.slice(0, 20)) {
      const fresh = rewriteSql(sql, { profile, catalog, searchPath, searchPathKnown: true });
      if (fresh.kind !== 'rewrite') throw new Error(`${c.name}: expected a rewrite, got ${fresh.kind}${fresh.kind === 'refuse' ? `: ${fresh.error.message}` : ''}`);
      const decided = active.decide(sql, activeProfile, searchPath, searchPathText, true);
      if (decided.kind !== 'rewrite' || decided.sql !== fresh.sql) throw new Error(`${c.name}: the cached rewrite differs from a fresh one for: ${sql.slice(0, 80)}`);
    }
  }
  const statsBefore = active.cache.stats();

  interface Row { name: string; bytes: number; rewrittenBytes: number; hit: Fig; miss: Fig; missDecide: Fig; parse: Fig; reparse: Fig }
  type Fig = { p50: number; p99: number };
  const rows: Row[] = [];
  for (const c of cases) {
    const big = c.texts[0].length > 500;
    const nHit = Math.round((big ? 50_000 : 200_000) * scale);
    const nMiss = Math.round((big ? 2_000 : 20_000) * scale);
    const hit = timeEach(c.texts, (sql) => {
      const d = active.decide(sql, activeProfile, searchPath, searchPathText, true);
      return d.kind === 'rewrite' ? d.sql.length : -1;
    }, nHit);
    const miss = timeEach(c.texts, (sql) => {
      const o = rewriteSql(sql, { profile, catalog, searchPath, searchPathKnown: true });
      return o.kind === 'rewrite' ? o.sql.length : -1;
    }, nMiss);
    // A leading comment unique to each call: a new shape every time, so decide() takes the whole miss path.
    let unique = 0;
    const missDecide = timeEach(c.texts, (sql) => {
      const d = active.decide(`/* ${unique++} */ ${sql}`, activeProfile, searchPath, searchPathText, true);
      return d.kind === 'rewrite' ? d.sql.length : -1;
    }, nMiss);
    const parse = timeEach(c.texts, (sql) => parseSync(sql).stmts?.length ?? 0, nMiss);
    // What a verification by full re-parse costs at least: one parse of the (longer) rewritten text.
    const rewritten = c.texts.map((sql) => {
      const o = rewriteSql(sql, { profile, catalog, searchPath, searchPathKnown: true });
      return o.kind === 'rewrite' ? wire(o.sql) : sql;
    });
    let k = 0;
    const reparse = timeEach(c.texts, () => parseSync(rewritten[k++ % rewritten.length]).stmts?.length ?? 0, nMiss);
    rows.push({ name: c.name, bytes: Buffer.byteLength(c.texts[0]), rewrittenBytes: Buffer.byteLength(rewritten[0]), hit, miss, missDecide, parse, reparse });
  }
  const stats = active.cache.stats();

  const fmt = (x: number) => x.toFixed(2);
  const table = [
    ['statement', 'hit (decide)', 'miss (rewriteSql)', 'miss (decide)', 'parseSync', 'miss/parse p50', 'miss/parse p99', 'parse of rewrite'],
    ...rows.map((r) => [
      `${r.name} (${r.bytes} B)`,
      `${fmt(r.hit.p50)} / ${fmt(r.hit.p99)}`,
      `${fmt(r.miss.p50)} / ${fmt(r.miss.p99)}`,
      `${fmt(r.missDecide.p50)} / ${fmt(r.missDecide.p99)}`,
      `${fmt(r.parse.p50)} / ${fmt(r.parse.p99)}`,
      `${(r.miss.p50 / r.parse.p50).toFixed(2)}×`,
      `${(r.miss.p99 / r.parse.p99).toFixed(2)}×`,
      `${fmt(r.reparse.p50)} / ${fmt(r.reparse.p99)} (${r.rewrittenBytes} B)`,
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  console.log(`\np50 / p99 in µs (scale ${scale}; Node ${process.version}); aim: hit p99 ≤ 5 µs, miss ≤ 2.5× parse`);
  for (const r of table) console.log(r.map((x, i) => x.padEnd(widths[i])).join('  '));
  console.log(`cache during the run: ${stats.hits - statsBefore.hits} hits, ${stats.misses - statsBefore.misses} misses, ${stats.evictions - statsBefore.evictions} evictions`);
  for (const r of rows) {
    const verdict = [
      r.hit.p99 <= 5 ? 'hit p99 within 5 µs' : `hit p99 ${fmt(r.hit.p99)} µs is over 5 µs`,
      r.miss.p50 / r.parse.p50 <= 2.5 ? 'miss within 2.5× parse' : `miss is ${(r.miss.p50 / r.parse.p50).toFixed(2)}× parse (aim 2.5×)`,
    ];
    console.log(`${r.name}: ${verdict.join('; ')}`);
  }

  const svgFile = join(mkdtempSync(join(tmpdir(), 'pgveil-bench-')), 'rewrite.svg');
  writeFileSync(svgFile, chart(rows.map((r) => ({
    label: `${r.name} (${r.bytes} B)`,
    bars: [
      { label: 'hit', ...r.hit },
      { label: 'miss', ...r.miss },
      { label: 'parse', ...r.parse },
    ],
  }))));
  console.log(`chart: ${svgFile}`);
} finally {
  await server.stop();
}
if (sinkValue() === 42) console.log('');

/** Horizontal bars on a log scale: p50 solid, p99 as a lighter extension, one group per statement. */
function chart(groups: Array<{ label: string; bars: Array<{ label: string; p50: number; p99: number }> }>): string {
  const colours: Record<string, string> = { hit: '#2a9d8f', miss: '#e76f51', parse: '#6c757d' };
  const left = 70, right = 110, top = 44, barH = 18, gap = 6, groupGap = 34, width = 760;
  const plotW = width - left - right;
  const all = groups.flatMap((g) => g.bars.flatMap((b) => [b.p50, b.p99]));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.01, Math.min(...all)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  const x = (v: number) => Math.round((left + (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * plotW) * 10) / 10;
  const height = top + groups.length * (3 * (barH + gap) + groupGap) + 30;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">pgveil rewrite latency, µs (log scale): p50 solid, p99 light</text>`,
  ];
  for (let d = lo; d <= hi; d *= 10) {
    out.push(`<line x1="${x(d)}" y1="${top - 8}" x2="${x(d)}" y2="${height - 24}" stroke="#ddd"/>`,
      `<text x="${x(d)}" y="${height - 10}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toFixed(2)}</text>`);
  }
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left}" y="${y + 2}" font-weight="bold">${esc(g.label)}</text>`);
    y += 8;
    for (const b of g.bars) {
      const c = colours[b.label] ?? '#333';
      out.push(`<text x="${left - 6}" y="${y + barH - 5}" text-anchor="end">${b.label}</text>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(b.p99) - left) * 10) / 10)}" height="${barH}" fill="${c}" opacity="0.35"/>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, Math.round((x(b.p50) - left) * 10) / 10)}" height="${barH}" fill="${c}"/>`,
        `<text x="${x(b.p99) + 4}" y="${y + barH - 5}" fill="#333">${b.p50.toFixed(1)} / ${b.p99.toFixed(1)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  out.push('</svg>');
  return out.join('\n');
}
