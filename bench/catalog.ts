// How long loadCatalog takes (it runs at start and on every policy reload):
// on the catalog test schema, then with 2,000 more tables × 20 columns, with
// few and with all of them protected. Prints median and min over a few runs,
// and how much of it is the query (server + transfer) versus assembly in JS.
// Run: npm run build:test && node build/bench/catalog.js [runs]
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/demo/embedded-postgres.js';
import { loadCatalog } from '../src/catalog/load.js';
import { catalogSql } from '../src/catalog/load-sql.js';
import { parseQualifiedName } from '../src/config/identifiers.js';
import { fixtureSql, PROTECTED, SERVICE_ROLE } from '../test/catalog/fixture.js';

const runs = Number(process.argv[2] ?? 7);

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function time(fn: () => Promise<unknown>): Promise<{ median: number; min: number }> {
  await fn(); // warm up: connection caches, JIT
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(ms(t));
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], min: times[0] };
}

const server = await startEmbeddedPostgres();
const admin = await server.connect();
const password = 'bench-' + Math.random().toString(36).slice(2);
await admin.query(fixtureSql(password));
const svc = new pg.Client({ host: server.host, port: server.port, user: SERVICE_ROLE, password, database: 'postgres' });
await svc.connect();

async function report(label: string, protectedRelations: string[]): Promise<void> {
  const names = protectedRelations.map((k) => parseQualifiedName(k) as [string, string]);
  const sql = catalogSql({ serviceRole: SERVICE_ROLE, protectedNames: names });
  const total = await time(() => loadCatalog(svc, { protectedRelations, serviceRole: SERVICE_ROLE }));
  const query = await time(() => svc.query(sql));
  const c = await loadCatalog(svc, { protectedRelations, serviceRole: SERVICE_ROLE });
  const columns = [...c.byOid.values()].reduce((n, r) => n + (r.columns?.length ?? 0), 0);
  console.log(`${label.padEnd(44)} ${total.median.toFixed(1).padStart(8)} ${total.min.toFixed(1).padStart(8)} ` +
    `${query.median.toFixed(1).padStart(8)} ${String(c.byOid.size).padStart(7)} ${String(columns).padStart(7)} ${String(c.readers.size).padStart(7)}`);
}

console.log(`loadCatalog, ${runs} runs each; times in ms`);
console.log(`${'scenario'.padEnd(44)} ${'median'.padStart(8)} ${'min'.padStart(8)} ${'query'.padStart(8)} ${'rels'.padStart(7)} ${'columns'.padStart(7)} ${'readers'.padStart(7)}`);
await report('test schema (4 protected)', PROTECTED);

const t = process.hrtime.bigint();
await admin.query(`
CREATE SCHEMA bulk;
DO $$
DECLARE cols text;
BEGIN
  SELECT string_agg(format('c%s %s', j, (ARRAY['int4', 'text', 'numeric(10,2)', 'timestamptz', 'varchar(20)'])[1 + j % 5]), ', ')
    INTO cols FROM generate_series(2, 20) AS j;
  FOR i IN 1..2000 LOOP
    EXECUTE format('CREATE TABLE bulk.t%s (id serial PRIMARY KEY, %s)', i, cols);
  END LOOP;
END
$$;
GRANT USAGE ON SCHEMA bulk TO ${SERVICE_ROLE};
GRANT SELECT ON ALL TABLES IN SCHEMA bulk TO ${SERVICE_ROLE};
ANALYZE;`);
console.log(`(created 2,000 tables × 20 columns in ${(ms(t) / 1000).toFixed(1)} s)`);

const bulk = Array.from({ length: 2000 }, (_, i) => `bulk.t${i + 1}`);
await report('+2,000 tables, 4 protected', PROTECTED);
await report('+2,000 tables, 100 protected', [...PROTECTED, ...bulk.slice(0, 100)]);
await report('+2,000 tables, all 2,004 protected', [...PROTECTED, ...bulk]);

await svc.end();
await admin.end();
await server.stop();
