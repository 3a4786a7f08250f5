// pgbench -S (select-only) straight to PostgreSQL and through pgveil, in the
// simple, extended and prepared protocols, with a policy on pgbench_accounts
// (ownership filter and a mask) so every statement is really rewritten.
// Run: npm run build && node dist/bench/pgbench.js [seconds] [clients]
import { spawn } from 'node:child_process';
import { startHarness, passwords } from '../test/helpers/harness.js';

const seconds = Number(process.argv[2] ?? 10);
const clients = Number(process.argv[3] ?? 4);

function pgbench(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgbench exited ${code}:\n${out}`))));
  });
}

const tps = (out: string) => Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
const latency = (out: string) => Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? NaN);

const h = await startHarness({
  tlsMode: 'prefer',
  policyYaml: `
tables:
  public.pgbench_accounts:
    ownership:
      - filter: "bid = 1"
    redaction:
      filler: { mask: "null" }
`,
  extraSql: 'GRANT CREATE ON SCHEMA public TO postgres',
});
try {
  const direct = { PGHOST: h.pg.host, PGPORT: String(h.pg.port), PGUSER: 'postgres', PGPASSWORD: h.pg.password, PGDATABASE: 'analytics' };
  await pgbench(['-i', '-s', '1', '-q'], direct);
  const su = await h.pg.connect('analytics');
  await su.query('GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO pgveil_service');
  await su.end();
  await h.proxy.reload(); // the catalog now knows pgbench_accounts
  const proxied = { PGHOST: '127.0.0.1', PGPORT: String(h.proxy.port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'disable' };
  const rows: string[] = ['protocol   | direct tps | pgveil tps | ratio | direct lat ms | pgveil lat ms'];
  for (const mode of ['simple', 'extended', 'prepared']) {
    const args = ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)];
    const d = await pgbench(args, direct);
    const p = await pgbench(args, proxied);
    rows.push(`${mode.padEnd(10)} | ${tps(d).toFixed(0).padStart(10)} | ${tps(p).toFixed(0).padStart(10)} | ${(tps(p) / tps(d)).toFixed(2).padStart(5)} | ${latency(d).toFixed(3).padStart(13)} | ${latency(p).toFixed(3).padStart(13)}`);
  }
  console.log(`pgbench -S, ${clients} clients, ${seconds} s each, plaintext client link; policy: bid = 1 filter + filler masked\n${rows.join('\n')}`);
} finally {
  await h.close();
}
