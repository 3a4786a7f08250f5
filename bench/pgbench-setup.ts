// The database every pgbench bench runs on: the harness with a policy on
// pgbench_accounts (an ownership filter and a mask, so each statement pgveil
// sees is really rewritten), pgbench's scale-1 tables, and the libpq
// environments that reach it directly and through pgveil as alice.
import { startHarness, passwords, type Harness } from '../test/helpers/harness.js';
import { pgbench } from './pgbench-run.js';

export interface PgbenchDatabase {
  h: Harness;
  /** Straight to PostgreSQL as the superuser. */
  direct: NodeJS.ProcessEnv;
}

export async function startPgbenchDatabase(): Promise<PgbenchDatabase> {
  const h = await startHarness({
    tlsMode: 'prefer',
    policyYaml: 'tables:\n  public.pgbench_accounts:\n    ownership:\n      - filter: "bid = 1"\n    redaction:\n      filler: { mask: "null" }\n',
    // The policy's table must exist when pgveil starts (a missing one is a load error); pgbench -i recreates it and pgveil reloads.
    extraSql: 'GRANT CREATE ON SCHEMA public TO postgres; CREATE TABLE public.pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))',
  });
  try {
    const direct = { PGHOST: h.pg.host, PGPORT: String(h.pg.port), PGUSER: 'postgres', PGPASSWORD: h.pg.password, PGDATABASE: 'analytics' };
    await pgbench(['-i', '-s', '1', '-q'], direct);
    const su = await h.pg.connect('analytics');
    await su.query('GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO pgveil_service');
    await su.end();
    await h.proxy.reload(); // the harness's pgveil now knows pgbench_accounts
    return { h, direct };
  } catch (err) {
    await h.close();
    throw err;
  }
}

/** libpq environment reaching a pgveil on `port` as alice, plaintext. */
export function throughPgveil(port: number): NodeJS.ProcessEnv {
  return { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'disable' };
}
