// Cost of a rewrite-cache hit for simple-protocol statements with inlined
// constants: scanShape + getShape + fillTemplate, next to one bare
// libpg-query parse of the same text (the floor of every miss). Prints p50
// and p99 in µs for pgbench's short SELECT and a 1.7 KB BI statement.
// Run: npm run build:test && node build/bench/cache.js [iterations]
import { timeEach, sinkValue } from './timing.js';
import { loadModule, parseSync } from 'libpg-query';
import { RewriteCache } from '../src/cache/rewrite-cache.js';
import { scanShape, type Shape } from '../src/cache/shape.js';
import { fillTemplate, makeTemplate, slotsFromMap, type Template } from '../src/cache/template.js';

const iterations = Number(process.argv[2] ?? 200_000);
await loadModule();

const short = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;

// 5 joins, a CTE, a window, ~20 constants: what a BI tool sends for a dashboard tile.
const bi = (v: number) => `/* dashboard: revenue by region, tile 7 */
WITH recent_orders AS (
  SELECT o.order_id, o.customer_id, o.ordered_at, o.status, o.total_amount, o.currency
  FROM "sales"."orders" o
  WHERE o.ordered_at >= DATE '2024-0${1 + (v % 9)}-01' AND o.ordered_at < DATE '2024-12-31'
    AND o.status IN ('shipped', 'delivered', 'invoiced') AND o.total_amount > ${100 + v}.50
)
SELECT r."region_name" AS "Region", c."segment" AS "Segment", p."category" AS "Category",
       date_trunc('month', ro.ordered_at) AS "Month",
       COUNT(DISTINCT ro.order_id) AS "Orders",
       SUM(oi.quantity * oi.unit_price * (1 - COALESCE(oi.discount, 0))) AS "Revenue",
       AVG(oi.unit_price) FILTER (WHERE oi.quantity >= ${2 + (v % 5)}) AS "Avg Price (bulk)",
       RANK() OVER (PARTITION BY r."region_name" ORDER BY SUM(oi.quantity * oi.unit_price) DESC) AS "Rank",
       SUM(SUM(oi.quantity)) OVER (PARTITION BY c."segment" ORDER BY date_trunc('month', ro.ordered_at)
                                   ROWS BETWEEN ${3 + (v % 4)} PRECEDING AND CURRENT ROW) AS "Rolling Qty"
FROM recent_orders ro
JOIN "sales"."customers" c ON c.customer_id = ro.customer_id AND c.is_test = false
JOIN "sales"."order_items" oi ON oi.order_id = ro.order_id
JOIN "catalog"."products" p ON p.product_id = oi.product_id AND p.category <> 'internal'
LEFT JOIN "geo"."regions" r ON r.region_id = c.region_id
LEFT JOIN "sales"."returns" rt ON rt.order_id = ro.order_id AND rt.reason_code NOT IN (${10 + v}, 11, 12)
WHERE ro.currency = 'EUR' AND c.country_code = ANY (ARRAY['DE', 'FR', 'NL', 'BE'])
  AND rt.return_id IS NULL AND p.launched_at < TIMESTAMP '2024-06-30 23:59:59'
  AND c.lifetime_value BETWEEN ${v * 10} AND 250000 AND p.name NOT LIKE '%sample%'
GROUP BY 1, 2, 3, 4
HAVING SUM(oi.quantity * oi.unit_price) > ${5000 + v}
ORDER BY "Region", "Month" DESC, "Revenue" DESC
LIMIT 500 OFFSET 0;`;

/** A stand-in rewrite: every protected table becomes a filtered, masked subquery. */
function rewrite(sql: string, table: string, columns: string): { rewritten: string; template: Template } {
  const shape = scanShape(sql) as Shape;
  const edits: Array<{ start: number; end: number; text: string }> = [];
  for (let at = sql.indexOf(table); at !== -1; at = sql.indexOf(table, at + table.length)) {
    edits.push({ start: at, end: at + table.length, text: `(SELECT ${columns} FROM ONLY ${table} WHERE org_id = 42) AS t${edits.length}` });
  }
  let rewritten = '';
  let last = 0;
  for (const e of edits) {
    rewritten += sql.slice(last, e.start) + e.text;
    last = e.end;
  }
  rewritten += sql.slice(last);
  const map = (i: number) => {
    let shift = 0;
    for (const e of edits) if (e.start < i) shift += e.text.length - (e.end - e.start);
    return i + shift;
  };
  return { rewritten, template: makeTemplate(rewritten, slotsFromMap(shape, map), { sql, shape }) };
}


const cache = new RewriteCache<Template>(10_000);
const GEN = 1;
const PROFILE = 'profile:org=42;masks=3';
const SEARCH_PATH = '"$user", public';

interface Case { name: string; texts: string[] }
// Decoded from bytes, as the session gets them off the wire (flat strings, not the ropes template literals build).
const wire = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
const cases: Case[] = [
  { name: 'pgbench SELECT', texts: Array.from({ length: 1024 }, (_, i) => wire(short(1 + ((i * 7919) % 100_000)))) },
  { name: 'BI 1.7 KB', texts: Array.from({ length: 256 }, (_, i) => wire(bi(i))) },
];
const templates = [
  rewrite(cases[0].texts[0], 'pgbench_accounts', 'aid, bid, abalance, filler'),
  rewrite(cases[1].texts[0], '"sales"."orders"', 'order_id, customer_id, ordered_at, status, total_amount, currency'),
];
cases.forEach((c, k) => cache.setShape(GEN, PROFILE, SEARCH_PATH, (scanShape(c.texts[0]) as Shape).key, templates[k].template));

const timerOverhead = timeEach([''], () => 0, 100_000, Math.min(100_000, 20_000));
const rows: string[][] = [];
const fmt = (x: number) => x.toFixed(2);
for (const c of cases) {
  const bytes = Buffer.byteLength(c.texts[0]);
  const constants = (scanShape(c.texts[0]) as Shape).constants.length / 2;
  const hit = timeEach(c.texts, (sql) => {
    const shape = scanShape(sql) as Shape;
    const t = cache.getShape(GEN, PROFILE, SEARCH_PATH, shape.key) as Template;
    return fillTemplate(t, sql, shape).length;
  }, iterations);
  const scan = timeEach(c.texts, (sql) => (scanShape(sql) as Shape).constants.length, iterations, Math.min(iterations, 20_000));
  const shapes = c.texts.map((sql) => scanShape(sql) as Shape);
  const lookup = timeEach(c.texts, (sql) => (cache.getShape(GEN, PROFILE, SEARCH_PATH, shapes[0].key) ? sql.length : 0), iterations, Math.min(iterations, 20_000));
  const t = cache.getShape(GEN, PROFILE, SEARCH_PATH, shapes[0].key) as Template;
  let k = 0;
  const fill = timeEach(c.texts, (sql) => fillTemplate(t, sql, shapes[k++ % shapes.length]).length, iterations, Math.min(iterations, 20_000));
  const parse = timeEach(c.texts, (sql) => parseSync(sql).stmts?.length ?? 0, Math.min(iterations, c.texts[0].length > 500 ? 5_000 : 50_000));
  rows.push([`${c.name} (${bytes} B, ${constants} constants)`, `${fmt(hit.p50)} / ${fmt(hit.p99)}`, `${fmt(scan.p50)} / ${fmt(scan.p99)}`,
    `${fmt(lookup.p50)} / ${fmt(lookup.p99)}`, `${fmt(fill.p50)} / ${fmt(fill.p99)}`, `${fmt(parse.p50)} / ${fmt(parse.p99)}`,
    `${(parse.p50 / hit.p50).toFixed(0)}×`]);
}

const header = ['statement', 'hit path', 'scanShape', 'getShape', 'fillTemplate', 'parseSync', 'parse/hit p50'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((x, i) => x.padEnd(widths[i])).join('  ');
console.log(`p50 / p99 in µs, ${iterations} iterations per cell (parseSync fewer); timer overhead p50 ${fmt(timerOverhead.p50)} µs included`);
console.log(line(header));
for (const r of rows) console.log(line(r));
if (sinkValue() === 42) console.log(''); // keep results alive
