// Where the time goes: the same pgbench runs through a bare Node pass-through
// (two sockets piped, no parsing: the floor of any Node proxy on this
// machine) and through pgveil with pgbench_accounts unprotected (every
// statement parsed and checked but forwarded unchanged), next to pgveil with
// the policy.
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startProxy } from '../src/session/server.js';
import { silentLogger } from '../src/observe/log.js';
import { runPgbench } from './pgbench-run.js';
import type { Table } from './results.js';

export async function whereTheTimeGoes(spec: { configFile: string; direct: NodeJS.ProcessEnv; proxied: NodeJS.ProcessEnv; clients: number; seconds: number }): Promise<Table> {
  const bare = net.createServer((c) => {
    const u = net.connect(Number(spec.direct.PGPORT), '127.0.0.1');
    for (const s of [c, u]) { s.setNoDelay(true); s.on('error', () => {}); }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const dir = dirname(spec.configFile);
  writeFileSync(join(dir, 'policy-open.yaml'), 'defaults: { unlistedRelations: allow }\ntables: {}\n');
  const openConfig = join(dir, 'pgveil-open.yaml');
  writeFileSync(openConfig, readFileSync(spec.configFile, 'utf8').replace(/^policy: .*$/m, 'policy: policy-open.yaml'));
  const open = await startProxy({ configFile: openConfig, logger: silentLogger, watch: false });
  const table: Table = { caption: `Where the time goes: tps, pgbench -S, ${spec.clients} clients`, columns: ['protocol', 'bare Node pipe', 'pgveil, table unprotected', 'pgveil, with policy'], rows: [] };
  try {
    for (const mode of ['simple', 'extended', 'prepared'] as const) {
      const run = (env: NodeJS.ProcessEnv) => runPgbench({ mode, clients: spec.clients, seconds: spec.seconds, env });
      const b = await run({ ...spec.direct, PGPORT: String((bare.address() as net.AddressInfo).port), PGSSLMODE: 'disable' });
      const o = await run({ ...spec.proxied, PGPORT: String(open.port) });
      const p = await run(spec.proxied);
      table.rows.push([mode, b.tps.toFixed(0), o.tps.toFixed(0), p.tps.toFixed(0)]);
    }
  } finally {
    await open.close();
    bare.close();
  }
  return table;
}
