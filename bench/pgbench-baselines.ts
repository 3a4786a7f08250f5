// Where the time goes: the same pgbench runs through PgBouncer, a bare Node
// pass-through (two sockets piped, no parsing: the floor of any Node proxy
// on this machine), pgveil with pgbench_accounts unprotected (every
// statement parsed and checked but forwarded unchanged) and pgveil with the
// policy, interleaved over the rounds; tps and each one's CPU per statement
// (the bare pipe and pgveil run in the bench's process, PgBouncer in its own).
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startProxy } from '../src/session/server.js';
import { silentLogger } from '../src/observe/log.js';
import { interleaved, median, runPgbench } from './pgbench-run.js';
import type { Table } from './results.js';

export async function whereTheTimeGoes(spec: {
  configFile: string; direct: NodeJS.ProcessEnv; proxied: NodeJS.ProcessEnv; bouncer?: { env: NodeJS.ProcessEnv; pid: number }; clients: number; seconds: number; rounds: number;
}): Promise<Table> {
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
  const targets = [
    ...(spec.bouncer ? [{ name: 'PgBouncer', env: spec.bouncer.env, pid: spec.bouncer.pid }] : []),
    { name: 'bare Node pipe', env: { ...spec.direct, PGPORT: String((bare.address() as net.AddressInfo).port), PGSSLMODE: 'disable' }, pid: process.pid },
    { name: 'pgveil, table unprotected', env: { ...spec.proxied, PGPORT: String(open.port) }, pid: process.pid },
    { name: 'pgveil, with policy', env: spec.proxied, pid: process.pid },
  ];
  const table: Table = {
    caption: `Where the time goes: pgbench -S, ${spec.clients} clients, medians of ${spec.rounds} interleaved rounds: tps, and CPU µs per statement of the proxy's process`,
    columns: ['protocol', ...targets.map((t) => `${t.name} tps`), ...targets.map((t) => `${t.name} CPU µs/stmt`)],
    rows: [],
  };
  try {
    for (const mode of ['simple', 'extended', 'prepared'] as const) {
      const runs = await interleaved(targets, spec.rounds, (t) => runPgbench({ mode, clients: spec.clients, seconds: spec.seconds, env: t.env, proxyPid: t.pid }));
      table.rows.push([mode, ...runs.map((r) => median(r.map((x) => x.tps)).toFixed(0)), ...runs.map((r) => median(r.map((x) => x.cpuPerStatement)).toFixed(1))]);
    }
  } finally {
    await open.close();
    bare.close();
  }
  return table;
}
