// The rewrite's own cost, no proxy running: p50/p99 of
//   (a) a cache hit — the real hit path, DecisionEngine.decide() with the
//       statement's constants varied, so simple-protocol texts hit by shape;
//   (b) a cache miss — rewriteSql(): parse, analyze, splice, verify; plus the
//       miss through decide() (a comment makes every text a new shape, so
//       template building and the cache insert are included);
//   (c) one bare libpg-query parseSync() of the same text: the floor (and,
//       for reference, one parse of the rewritten text: what verifying by a
//       full re-parse costs at least);
// for pgbench's short SELECT over a protected pgbench_accounts and a ~1.7 KB
// BI statement (6 joins over protected tables, a CTE, window functions, ~15
// constants). The catalog comes from a real PostgreSQL (embedded, with the
// demo's sample data), read by loadCatalog as the service role.
// (bench/cache.ts splits the hit path into scanShape, getShape, fillTemplate.)
import { timeEach, type Percentiles } from './timing.js';
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

export interface PathRow { name: string; bytes: number; rewrittenBytes: number; hit: Percentiles; miss: Percentiles; missDecide: Percentiles; parse: Percentiles; reparse: Percentiles }
export interface CacheCounts { hits: number; misses: number; evictions: number }

/** Times the hit, miss and parse paths; `scale` multiplies the iteration counts (1: about a minute). */
export async function measureRewritePaths(scale: number): Promise<{ rows: PathRow[]; cache: CacheCounts }> {
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

    const rows: PathRow[] = [];
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
    return { rows, cache: { hits: stats.hits - statsBefore.hits, misses: stats.misses - statsBefore.misses, evictions: stats.evictions - statsBefore.evictions } };
  } finally {
    await server.stop();
  }
}
