// pgbench -S (select-only) straight to PostgreSQL, through PgBouncer (when
// installed: `bash scripts/install-bench-tools.sh`; session pooling, the
// same one-server-connection-per-client shape as pgveil) and through
// pgveil, in the simple, extended and prepared protocols, with a policy on
// pgbench_accounts (ownership filter and a mask) so every statement pgveil
// sees is really rewritten. Prints a table of tps and latency with ratios
// to direct, and writes an SVG bar chart. Then the cost of the audit log:
// pgveil with `audit: { statements: fingerprint }` against the same pgveil
// without, run interleaved (rounds of A B B A per protocol, so drift on a busy
// machine falls on both alike), with the tps ratio of each round and their median.
// Run: npm run build:test && node build/bench/pgbench.js [seconds] [clients] [--baselines] [--audit-rounds=N]
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startHarness, passwords } from '../test/helpers/harness.js';
import { startProxy, type ProxyHandle } from '../src/session/server.js';
import { silentLogger } from '../src/observe/log.js';
import { freePort } from '../src/demo/embedded-postgres.js';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seconds = Number(positional[0] ?? 10);
const clients = Number(positional[1] ?? 4);
// --baselines: also a bare Node pass-through and pgveil with the table unprotected, to show where the time goes
const baselines = process.argv.includes('--baselines');
// --audit-rounds=N: A B B A rounds of the audit comparison per protocol (default 3)
const auditRounds = Math.max(1, Number(/^--audit-rounds=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--audit-rounds=')) ?? '')?.[1] ?? 3));

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

/** pgbench -S arguments for one protocol mode, with this run's clients and duration. */
const selectOnly = (mode: string) => ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)];
const tps = (out: string) => Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
const latency = (out: string) => Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? NaN);
const transactions = (out: string) => Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN);

/** pgbench through pgveil, with the CPU time pgveil (this process) spent per transaction: steady on a loaded machine, unlike tps. */
async function pgbenchTimed(args: string[], env: NodeJS.ProcessEnv): Promise<{ out: string; cpuPerTx: number }> {
  const before = process.cpuUsage();
  const out = await pgbench(args, env);
  const used = process.cpuUsage(before);
  return { out, cpuPerTx: (used.user + used.system) / transactions(out) };
}

/** Starts PgBouncer in front of upstream (session pooling, SCRAM from a plain-text userlist); undefined when it is not installed. */
async function startPgBouncer(upstream: { port: number; user: string; password: string }): Promise<{ env: NodeJS.ProcessEnv; stop(): void } | undefined> {
  const found = await new Promise<boolean>((resolve) => {
    const probe = spawn('pgbouncer', ['--version']);
    probe.on('error', () => resolve(false));
    probe.on('close', (code) => resolve(code === 0));
  });
  if (!found) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-bench-pgbouncer-'));
  chmodSync(dir, 0o777); // as root PgBouncer runs as the postgres user (-u), which must write its log here
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(join(dir, 'userlist.txt'), '"bench" "bench-password"\n', { mode: 0o644 });
  writeFileSync(ini, [
    '[databases]',
    `analytics = host=127.0.0.1 port=${upstream.port} dbname=analytics user=${upstream.user} password=${upstream.password}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1', `listen_port = ${port}`, 'unix_socket_dir =',
    'auth_type = scram-sha-256', `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = session', `default_pool_size = ${clients + 2}`, 'max_client_conn = 200',
    'ignore_startup_parameters = extra_float_digits',
    `logfile = ${join(dir, 'pgbouncer.log')}`, `pidfile = ${join(dir, 'pgbouncer.pid')}`,
  ].join('\n') + '\n', { mode: 0o644 });
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const child: ChildProcess = spawn('pgbouncer', args, { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) { // ready when it accepts connections
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env: { PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'bench', PGPASSWORD: 'bench-password', PGDATABASE: 'analytics', PGSSLMODE: 'disable' },
    stop: () => { child.kill('SIGTERM'); },
  };
}

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
  // The policy's table must exist when pgveil starts (a missing one is a load error); pgbench -i recreates it and pgveil reloads.
  extraSql: 'GRANT CREATE ON SCHEMA public TO postgres; CREATE TABLE public.pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84))',
});
const bouncerNote = 'PgBouncer not installed (bash scripts/install-bench-tools.sh installs it): its column is left out';
let bouncer: Awaited<ReturnType<typeof startPgBouncer>>;
try {
  const direct = { PGHOST: h.pg.host, PGPORT: String(h.pg.port), PGUSER: 'postgres', PGPASSWORD: h.pg.password, PGDATABASE: 'analytics' };
  await pgbench(['-i', '-s', '1', '-q'], direct);
  const su = await h.pg.connect('analytics');
  await su.query('GRANT SELECT ON pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history TO pgveil_service');
  await su.end();
  await h.proxy.reload(); // the catalog now knows pgbench_accounts
  bouncer = await startPgBouncer({ port: h.pg.port, user: 'postgres', password: h.pg.password });
  const proxied = { PGHOST: '127.0.0.1', PGPORT: String(h.proxy.port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'disable' };
  const results: Array<{ mode: string; direct: string; bouncer?: string; pgveil: string; cpuPerTx: number }> = [];
  const auditCost: Array<{ mode: string; without: number[]; withAudit: number[]; cpuWithout: number[]; cpuWith: number[]; roundRatios: number[] }> = [];
  const audited = await startAuditedProxy();
  for (const mode of ['simple', 'extended', 'prepared']) {
    const args = selectOnly(mode);
    const directOut = await pgbench(args, direct);
    const bouncerOut = bouncer ? await pgbench(args, bouncer.env) : undefined;
    const timed = await pgbenchTimed(args, proxied);
    results.push({ mode, direct: directOut, bouncer: bouncerOut, pgveil: timed.out, cpuPerTx: timed.cpuPerTx });
    // Rounds of A B B A; the first A of the first round is the run above.
    const cost = { mode, without: [] as number[], withAudit: [] as number[], cpuWithout: [] as number[], cpuWith: [] as number[], roundRatios: [] as number[] };
    for (let round = 0; round < auditRounds; round++) {
      const without1 = round === 0 ? timed : await pgbenchTimed(args, proxied);
      const withAudit1 = await pgbenchTimed(args, { ...proxied, PGPORT: String(audited.proxy.port) });
      const withAudit2 = await pgbenchTimed(args, { ...proxied, PGPORT: String(audited.proxy.port) });
      const without2 = await pgbenchTimed(args, proxied);
      const a = [tps(without1.out), tps(without2.out)], b = [tps(withAudit1.out), tps(withAudit2.out)];
      cost.without.push(...a);
      cost.withAudit.push(...b);
      cost.cpuWithout.push(without1.cpuPerTx, without2.cpuPerTx);
      cost.cpuWith.push(withAudit1.cpuPerTx, withAudit2.cpuPerTx);
      cost.roundRatios.push((b[0] + b[1]) / (a[0] + a[1]));
    }
    auditCost.push(cost);
  }
  await audited.proxy.close();
  const cols = ['protocol  ', 'direct tps', ...(bouncer ? ['pgbouncer tps', 'ratio'] : []), 'pgveil tps', 'ratio', ...(bouncer ? ['vs pgbouncer'] : []), 'direct ms', ...(bouncer ? ['pgbouncer ms'] : []), 'pgveil ms', 'pgveil CPU µs/tx'];
  const rows = [cols.join(' | ')];
  for (const r of results) {
    const cells = [r.mode.padEnd(10), tps(r.direct).toFixed(0)];
    if (r.bouncer) cells.push(tps(r.bouncer).toFixed(0), (tps(r.bouncer) / tps(r.direct)).toFixed(2));
    cells.push(tps(r.pgveil).toFixed(0), (tps(r.pgveil) / tps(r.direct)).toFixed(2));
    if (r.bouncer) cells.push((tps(r.pgveil) / tps(r.bouncer)).toFixed(2));
    cells.push(latency(r.direct).toFixed(3));
    if (r.bouncer) cells.push(latency(r.bouncer).toFixed(3));
    cells.push(latency(r.pgveil).toFixed(3), r.cpuPerTx.toFixed(1));
    rows.push(cells.map((c, i) => c.padStart(cols[i].length)).join(' | '));
  }
  console.log(`pgbench -S, ${clients} clients, ${seconds} s each, plaintext client links; pgveil policy: bid = 1 filter + filler masked${bouncer ? '; PgBouncer session pooling' : ''}\n${rows.join('\n')}`);
  if (!bouncer) console.log(bouncerNote);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const auditRows = ['protocol   | pgveil tps (A) | with audit tps (B) | B/A of means | B/A per round (median) | CPU µs/tx A | CPU µs/tx B'];
  for (const r of auditCost) {
    const rounds = `${r.roundRatios.map((x) => x.toFixed(3)).join(' ')} (${median(r.roundRatios).toFixed(3)})`;
    auditRows.push(`${r.mode.padEnd(10)} | ${mean(r.without).toFixed(0).padStart(14)} | ${mean(r.withAudit).toFixed(0).padStart(18)} | ${(mean(r.withAudit) / mean(r.without)).toFixed(3).padStart(12)} | ${rounds.padStart(22)} | ${mean(r.cpuWithout).toFixed(1).padStart(11)} | ${mean(r.cpuWith).toFixed(1).padStart(11)}`);
  }
  const lines = countLines(audited.file);
  rmSync(dirname(audited.file), { recursive: true, force: true }); // hundreds of MB after a long run
  console.log(`audit log cost (statements: fingerprint; ${auditRounds} rounds of A B B A per protocol; ${lines} audit lines written, then removed):\n${auditRows.join('\n')}`);
  const svgFile = join(mkdtempSync(join(tmpdir(), 'pgveil-bench-')), 'pgbench.svg');
  writeFileSync(svgFile, chart(results.map((r) => ({
    label: r.mode,
    bars: [{ label: 'direct', value: tps(r.direct) }, ...(r.bouncer ? [{ label: 'pgbouncer', value: tps(r.bouncer) }] : []), { label: 'pgveil', value: tps(r.pgveil) }],
  })), `pgbench -S transactions per second (${clients} clients, ${seconds} s)`));
  console.log(`chart: ${svgFile}`);
  if (baselines) await whereTheTimeGoes(direct, results.map((r) => tps(r.pgveil)));
} finally {
  bouncer?.stop();
  await h.close();
}

/** The harness's pgveil again, with an audit log that records every statement's fingerprint. */
async function startAuditedProxy(): Promise<{ proxy: ProxyHandle; file: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'pgveil-bench-audit-')), 'audit.jsonl');
  const configFile = join(h.dir, 'pgveil-audited.yaml');
  writeFileSync(configFile, `${readFileSync(h.configFile, 'utf8')}\naudit: { file: ${file}, statements: fingerprint, onFailure: block }\n`);
  return { proxy: await startProxy({ configFile, logger: silentLogger, watch: false }), file };
}

/** Grouped horizontal bars on a linear scale, one group per protocol mode. */
function chart(groups: Array<{ label: string; bars: Array<{ label: string; value: number }> }>, title: string): string {
  const colours: Record<string, string> = { direct: '#6c757d', pgbouncer: '#e9c46a', pgveil: '#2a9d8f' };
  const left = 90, right = 90, top = 44, barH = 18, gap = 6, groupGap = 30, width = 760;
  const plotW = width - left - right;
  const max = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const x = (v: number) => Math.round((left + (v / max) * plotW) * 10) / 10;
  const height = top + groups.reduce((sum, g) => sum + g.bars.length * (barH + gap) + groupGap, 0) + 10;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${title}</text>`,
  ];
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left}" y="${y + 2}" font-weight="bold">${g.label}</text>`);
    y += 8;
    for (const b of g.bars) {
      out.push(`<text x="${left - 6}" y="${y + barH - 5}" text-anchor="end">${b.label}</text>`,
        `<rect x="${left}" y="${y}" width="${Math.max(1, x(b.value) - left)}" height="${barH}" fill="${colours[b.label] ?? '#333'}"/>`,
        `<text x="${x(b.value) + 4}" y="${y + barH - 5}" fill="#333">${b.value.toFixed(0)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  out.push('</svg>');
  return out.join('\n');
}

/**
 * The same pgbench runs through a bare Node pass-through (two sockets piped,
 * no parsing: the floor of any Node proxy on this machine) and through
 * pgveil with pgbench_accounts unprotected (every statement parsed and
 * checked but forwarded unchanged), next to pgveil with the policy.
 */
async function whereTheTimeGoes(direct: NodeJS.ProcessEnv, withPolicy: number[]): Promise<void> {
  const bare = net.createServer((c) => {
    const u = net.connect(Number(direct.PGPORT), '127.0.0.1');
    for (const s of [c, u]) { s.setNoDelay(true); s.on('error', () => {}); }
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const openPolicy = join(h.dir, 'policy-open.yaml');
  writeFileSync(openPolicy, 'defaults: { unlistedRelations: allow }\ntables: {}\n');
  const openConfig = join(h.dir, 'pgveil-open.yaml');
  writeFileSync(openConfig, readFileSync(h.configFile, 'utf8').replace(/^policy: .*$/m, 'policy: policy-open.yaml'));
  const open: ProxyHandle = await startProxy({ configFile: openConfig, logger: silentLogger, watch: false });
  try {
    const rows = ['protocol   | bare Node pipe | pgveil, table unprotected | pgveil, with policy'];
    for (const [i, mode] of ['simple', 'extended', 'prepared'].entries()) {
      const args = selectOnly(mode);
      const b = tps(await pgbench(args, { ...direct, PGPORT: String((bare.address() as net.AddressInfo).port), PGSSLMODE: 'disable' }));
      const o = tps(await pgbench(args, { PGHOST: '127.0.0.1', PGPORT: String(open.port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'disable' }));
      rows.push(`${mode.padEnd(10)} | ${b.toFixed(0).padStart(14)} | ${o.toFixed(0).padStart(25)} | ${withPolicy[i].toFixed(0).padStart(19)}`);
    }
    console.log(`where the time goes (tps):\n${rows.join('\n')}`);
  } finally {
    await open.close();
    bare.close();
  }
}

/** Newlines in a file, read in chunks (an audit file of a long run is larger than a string may be). */
function countLines(file: string): number {
  const fd = openSync(file, 'r');
  const chunk = Buffer.allocUnsafe(1 << 20);
  let lines = 0;
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      for (let i = chunk.indexOf(10, 0); i !== -1 && i < n; i = chunk.indexOf(10, i + 1)) lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}
