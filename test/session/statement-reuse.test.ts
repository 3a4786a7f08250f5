// Upstream statement reuse, differentially: every statement of the corpus
// (pgveil's own of filters, masks, joins, subqueries, errors and probes of
// other organizations' rows, and the recorded client corpus) goes through two
// proxies on the same database — one with reuse off (each statement a Query,
// constants inline), one with it on (pgveil's prepared statements, constants
// bound) — and the client must receive the same bytes from both: row
// descriptions, rows, command tags, notices, errors (all fields but the
// position, which the docs say may differ) and ReadyForQuery. The reuse
// metrics prove the second proxy really prepared and reused statements, or
// the comparison would prove nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxyVariant, clientConfig, employeesPolicy, type Harness } from '../helpers/harness.js';
import { startReusePair, type ReusePair } from '../helpers/reuse-pair.js';
import { type RawClient, msg, sqlstate, frame, cstr, int16, int32, comparableAnswer as comparable } from '../helpers/raw-client.js';
import pg from 'pg';
import type { ProxyHandle } from '../../src/session/server.js';

const clientCorpus = JSON.parse(readFileSync(new URL('../../../test/corpus/client-statements.json', import.meta.url), 'utf8')) as string[];

const extraSql = `
  INSERT INTO crm.employees VALUES (3, 'acme', 'Cy', '777-88-9999', 1500.5), (4, 'globex', 'Di', '123-45-6789', 0.25), (5, 'acme', NULL, NULL, NULL);
  CREATE TABLE public.nums (n int, big bigint, d numeric, s smallint, f float8, o oid, label text);
  INSERT INTO public.nums VALUES (1, 3000000000, 1.50, 1, 0.5, 1259, 'one'), (2, 2, 2, 2, 2, 2, 'two');
  GRANT SELECT ON public.nums TO pgveil_service;
`;

/** Statements that read the protected table with numeric constants in every kind of place, and some that fail. */
const corpus = [
  'select id, name, ssn from crm.employees where id = 1',
  'select id, name from crm.employees where id = 2',
  'select id from crm.employees where id <> 1 order by id',
  'select id from crm.employees where id < 5 and id >= 1 order by id',
  'select id from crm.employees where id != 3 or id > 4 order by id',
  'select id from crm.employees where id in (1, 2, 3) order by id',
  'select id from crm.employees where id not in (2, 4) order by id',
  'select id from crm.employees where id in (3)',
  'select id from crm.employees where id between 1 and 3 order by id',
  'select id from crm.employees where id not between 2 and 3 order by id',
  'select id from crm.employees where 1 = id',
  'select id from crm.employees where id = 3000000000',
  'select id from crm.employees where id = 99999999999999999999',
  'select id from crm.employees where id = 2147483647',
  'select id from crm.employees where id = 2147483648',
  'select id from crm.employees where id = 00003',
  'select id from crm.employees where id = 1.0',
  'select id from crm.employees where id = 1e0',
  'select id, salary from crm.employees where salary > 1.5e3 order by id',
  'select id, salary from crm.employees where salary = 90000.00',
  'select id, salary from crm.employees where salary >= .5 order by id',
  'select id, salary from crm.employees where salary < 1e400 order by id',
  'select name, ssn from crm.employees where salary between 1000 and 100000.5 order by id',
  'select name from crm.employees where ssn = 5',
  'select name from crm.employees where name = 5',
  'select name from crm.employees where id = 1/0',
  'select name from crm.employees where id = 1 and 1/0 = 1',
  'select id = 1 as is_one from crm.employees order by id',
  'select id from crm.employees where id > 0 order by 1',
  'select org_id, count(*) from crm.employees where id > 0 group by 1 order by 1',
  'select id from crm.employees where id > 0 order by id limit 1 offset 1',
  'select id from crm.employees where id = -1',
  'select id from crm.employees where id = - 3',
  'select id from crm.employees where id = +3',
  'select id from crm.employees where id = 1 and name = \'Ann\'',
  'select id from crm.employees where name is null and id > 1',
  'select e.id, n.label from crm.employees e join public.nums n on n.n = e.id where e.id = 1',
  'select e.id, n.big from crm.employees e join public.nums n on n.big = 3000000000 and e.id = 1',
  'select e.id from crm.employees e join public.nums n on n.s = 1 where n.o = 1259 and n.f = 0.5 and n.d = 1.5 order by e.id',
  'select e.id from crm.employees e left join crm.employees f on f.id = 2 where e.id >= 1 order by e.id',
  'select id from crm.employees where id = (select 1)',
  'select id from crm.employees where id in (select id from crm.employees where id = 3)',
  'select count(*) from crm.employees where exists (select 1 from crm.employees x where x.id = 2)',
  'with c as (select id from crm.employees where id = 1) select * from c',
  'select id from crm.employees where id = 1 union all select id from crm.employees where id = 2 union select id from crm.employees where id = 3 order by 1',
  'select * from (select id, name from crm.employees where id >= 1) s where s.id < 100 order by id',
  'select id from crm.employees where id = 0x1',
  'select id from crm.employees where id = 1_000',
  'select count(*) from crm.employees where id > 0',
  'select id::text || coalesce(name, \'-\') from crm.employees where id in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) order by 1',
  'select name from crm.employees where id = 1; select id from crm.employees where id = 3',
  'select name from crm.employees where id = 1 for update',
  'select nope from crm.employees where id = 1',
  'select id from crm.employees where id = 1 and id = 1 and id = 1',
  'SELECT ID FROM CRM.EMPLOYEES WHERE ID=3',
  'select id from crm.employees where id=3--note\n',
  'select id from crm.employees where id = 3 /* c */ and salary > 1',
  'select pg_sleep(0) from crm.employees where id = 1',
  'select 1 from crm.employees where id = 1 group by id having id = 1',
];

/** Sequences where the session's state matters: transactions, failures, DISCARD/DEALLOCATE, names pgveil keeps. */
const sequences = [
  ['begin', 'select id from crm.employees where id = 1', 'select 1/0', 'select id from crm.employees where id = 1', 'rollback', 'select id from crm.employees where id = 1'],
  ['select id from crm.employees where id = 3', 'discard all', 'select id from crm.employees where id = 3', 'select id from crm.employees where id = 1'],
  ['select id from crm.employees where id = 3', 'deallocate all', 'select id from crm.employees where id = 3'],
  ['prepare "pgveil:1" as select 1', 'execute "pgveil:1"', 'deallocate "pgveil:1"', 'select id from crm.employees where id = 1', 'prepare p as select id from crm.employees where id = 1', 'execute p'],
  ['begin', 'select id from crm.employees where id = 1', 'commit', 'select id from crm.employees where id = 1'],
];

let pair: ReusePair;
let h: Harness;
let inline: ProxyHandle;
let connect: ReusePair['connect'];

test.before(async () => {
  pair = await startReusePair({ policyYaml: employeesPolicy, extraSql });
  ({ h, inline, connect } = pair);
});
test.after(async () => { await pair?.close(); });

/** Sends `frames` in one write and reads one ReadyForQuery-terminated answer per Query. */
async function answers(c: RawClient, queries: string[]): Promise<string[][]> {
  c.send(...queries.map((q) => msg.query(q)));
  const out: string[][] = [];
  for (let i = 0; i < queries.length; i++) out.push((await c.untilReady()).map(comparable));
  return out;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function statementCounts(proxy: ProxyHandle): Promise<Record<string, number>> {
  const values = (await proxy.metrics.upstreamStatements.get()).values;
  return Object.fromEntries(values.map((v) => [String(v.labels.how), v.value]));
}

/** Runs each group of statements on a fresh session of each proxy, one at a time and then pipelined; returns the differences. */
async function differences(user: string, groups: string[][], rounds: number): Promise<string[]> {
  const found: string[] = [];
  const a = await connect(inline, user);
  const b = await connect(h.proxy, user);
  for (let round = 0; round < rounds; round++) {
    for (const group of groups) {
      const one: [string[][], string[][]] = [[], []];
      for (const q of group) {
        one[0].push(...await answers(a, [q]));
        one[1].push(...await answers(b, [q]));
      }
      const piped = [await answers(a, group), await answers(b, group)];
      group.forEach((q, i) => {
        if (JSON.stringify(one[0][i]) !== JSON.stringify(one[1][i])) found.push(`${user} round ${round} ${JSON.stringify(q)}:\n  inline ${one[0][i].join(' ')}\n  reused ${one[1][i].join(' ')}`);
        if (JSON.stringify(piped[0][i]) !== JSON.stringify(piped[1][i])) found.push(`${user} pipelined ${JSON.stringify(q)}:\n  inline ${piped[0][i].join(' ')}\n  reused ${piped[1][i].join(' ')}`);
      });
    }
  }
  return found;
}

test('the corpus answers byte for byte the same with constants bound to pgveil\'s prepared statements as with them inline (alice, bob)', async () => {
  const before = await statementCounts(h.proxy);
  const found = [
    ...await differences('alice@acme.com', chunks(corpus, 5), 3),
    ...await differences('bob@globex.com', chunks(corpus, 7), 2),
  ];
  assert.equal(found, []);
  const after = await statementCounts(h.proxy);
  assert.ok((after.prepared ?? 0) - (before.prepared ?? 0) >= 20, `statements prepared upstream: ${JSON.stringify(after)}`);
  assert.ok((after.reused ?? 0) - (before.reused ?? 0) >= 60, `statements reused upstream: ${JSON.stringify(after)}`);
  assert.equal(await statementCounts(inline), {}, 'the inline proxy never prepares');
});

test('C4 pgveil\'s own prepared statements are out of a client\'s reach (42939), and transactions, a failed transaction, DISCARD ALL and DEALLOCATE ALL answer the same with reuse on', async () => {
  const found = await differences('alice@acme.com', sequences, 2);
  assert.equal(found, []);
  const b = await connect(h.proxy, 'alice@acme.com');
  const [prepare] = await answers(b, ['prepare "pgveil:1" as select 1']);
  assert.ok(prepare.some((m) => m.includes('C42939')), `a client statement may not take pgveil's names: ${prepare.join(' ')}`);
  b.send(msg.parse('pgveil:7', 'select 1'), msg.sync());
  assert.is(sqlstate((await b.untilReady())[0]), '42939', 'nor through Parse');
});

test('the recorded client corpus answers the same with reuse on', async () => {
  const found = await differences('carol@acme.com', chunks(clientCorpus, 4), 2);
  assert.equal(found, []);
});

// ── the extended protocol: clients' unnamed Parses mapped onto pgveil's statements ──

const ext = {
  parse: (name: string, sql: string, types: number[] = []) => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(types.length), ...types.map(int32)])),
  bind: (stmt: string, values: Array<string | null>, portal = '') => frame('B', Buffer.concat([
    cstr(portal), cstr(stmt), int16(0), int16(values.length),
    ...values.map((v) => (v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)]))), int16(0),
  ])),
  describe: (kind: 'S' | 'P', name: string) => frame('D', Buffer.concat([Buffer.from(kind), cstr(name)])),
  close: (kind: 'S' | 'P', name: string) => frame('C', Buffer.concat([Buffer.from(kind), cstr(name)])),
  execute: (portal = '') => msg.execute(portal),
  sync: () => msg.sync(),
  query: (sql: string) => msg.query(sql),
};

const BY_ID = 'select id, name, ssn from crm.employees where id = $1';
/** One cycle as a driver sends it: Parse of the unnamed statement, Bind, Describe, Execute, Sync. */
const cycle = (sql: string, values: Array<string | null>, types: number[] = []) => [ext.parse('', sql, types), ext.bind('', values), ext.describe('P', ''), ext.execute(), ext.sync()];

/** Exchanges: frames sent in one write, then as many ReadyForQuery-terminated answers as they hold Syncs and Queries. */
const extendedExchanges: Buffer[][] = [
  cycle(BY_ID, ['1']), cycle(BY_ID, ['2']), cycle(BY_ID, ['3']), cycle(BY_ID, [null]),
  [ext.bind('', ['1']), ext.describe('P', ''), ext.execute(), ext.sync()],
  [ext.describe('S', ''), ext.sync()],
  [ext.bind('', ['x']), ext.execute(), ext.sync()],
  cycle(BY_ID, ['3'], [20]), cycle(BY_ID, ['3'], [20]), cycle(BY_ID, ['3'], [23]),
  cycle('select id from crm.employees where id > $1 and salary < $2 order by id', ['0', '100000']),
  cycle('select id from crm.employees where id > $1 and salary < $2 order by id', ['0', '1e9']),
  [ext.parse('', BY_ID), ext.sync(), ext.parse('', 'select nope from crm.employees where id = $1'), ext.sync(), ext.bind('', ['1']), ext.execute(), ext.sync()],
  [ext.parse('', BY_ID), ext.sync(), ext.close('S', ''), ext.sync(), ext.bind('', ['1']), ext.execute(), ext.sync()],
  [ext.parse('', BY_ID), ext.sync(), ext.query('select 1'), ext.bind('', ['1']), ext.execute(), ext.sync()],
  [...cycle(BY_ID, ['1']), ...cycle(BY_ID, ['3']), ext.bind('', ['1']), ext.execute(), ext.sync(), ...cycle(BY_ID, ['2'])],
  [ext.parse('named_s', BY_ID), ext.bind('named_s', ['1']), ext.execute(), ext.parse('', BY_ID), ext.bind('', ['3']), ext.execute(), ext.sync()],
  [ext.query('begin'), ext.query('select 1/0'), ...cycle(BY_ID, ['1']), ext.bind('', ['1']), ext.execute(), ext.sync(), ext.query('rollback')],
  [ext.query('begin'), ...cycle(BY_ID, ['1']), ext.query('commit'), ext.bind('', ['3']), ext.execute(), ext.sync()],
  [ext.query('discard all'), ...cycle(BY_ID, ['1']), ext.bind('', ['3']), ext.execute(), ext.sync()],
  [ext.parse('', 'select count(*) from crm.employees where id = any($1::int[])'), ext.bind('', ['{1,2,3}']), ext.execute(), ext.sync()],
  [ext.parse('', 'select id from crm.employees where id = 1'), ext.bind('', []), ext.execute(), ext.sync(), ext.bind('', []), ext.execute(), ext.sync()],
  [ext.parse('', 'update crm.employees set name = $1 where id = 1'), ext.bind('', ['x']), ext.execute(), ext.sync()],
  [ext.describe('S', 'pgveil:1'), ext.sync(), ext.close('S', 'pgveil:1'), ext.sync(), ext.bind('pgveil:1', []), ext.sync()],
];

async function exchange(c: RawClient, frames: Buffer[]): Promise<string[]> {
  c.send(...frames);
  const ends = frames.filter((f) => f[0] === 0x53 || f[0] === 0x51).length;
  const out: string[] = [];
  for (let i = 0; i < ends; i++) out.push(...(await c.untilReady()).map(comparable), '|');
  return out;
}

test('clients\' unnamed Parses run as pgveil\'s prepared statements answer byte for byte as sent (Bind, Describe, Close, errors, pipelines, transactions)', async () => {
  const before = await statementCounts(h.proxy);
  const found: string[] = [];
  for (const user of ['alice@acme.com', 'bob@globex.com']) {
    const a = await connect(inline, user);
    const b = await connect(h.proxy, user);
    for (let round = 0; round < 3; round++) {
      for (const [i, frames] of extendedExchanges.entries()) {
        const [x, y] = [await exchange(a, frames), await exchange(b, frames)];
        if (x.join(' ') !== y.join(' ')) found.push(`${user} round ${round} exchange ${i}:\n  inline ${x.join(' ')}\n  reused ${y.join(' ')}`);
      }
    }
  }
  assert.equal(found, []);
  const after = await statementCounts(h.proxy);
  assert.ok((after.reused ?? 0) - (before.reused ?? 0) >= 30, `unnamed Parses mapped onto prepared statements: ${JSON.stringify(after)}`);
});

test('a DEALLOCATE ALL run as a named statement while the unnamed statement stands for one of pgveil\'s: binding it answers as with reuse off (26000), never runs something else', async () => {
  const answersOf = async (proxy: ProxyHandle) => {
    const c = await connect(proxy, 'alice@acme.com');
    const out = [await exchange(c, [...cycle(BY_ID, ['1']), ...cycle(BY_ID, ['1'])])]; // prepared, then the stand-in: the unnamed statement is pgveil's
    out.push(await exchange(c, [ext.parse('drop_all', 'deallocate all'), ext.bind('drop_all', []), ext.execute(), ext.sync()]));
    out.push(await exchange(c, [ext.bind('', ['1']), ext.execute(), ext.sync()]));
    out.push(await exchange(c, cycle(BY_ID, ['1'])));
    return out;
  };
  const reused = await answersOf(h.proxy);
  assert.equal(reused, await answersOf(inline));
  assert.ok(reused[2].some((m) => m.includes('C26000')), reused[2].join(' '));
  assert.ok(reused[3].some((m) => m.startsWith('D:')), `parsed again, it runs: ${reused[3].join(' ')}`);
});

test('node-postgres parameterized queries (an unnamed Parse each) give the same results with reuse on', async () => {
  const run = async (port: number) => {
    const c = new pg.Client({ ...clientConfig(h, 'alice@acme.com'), port, ssl: false });
    await c.connect();
    const out: unknown[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        for (const [sql, values] of [[BY_ID, [1]], [BY_ID, [2]], ['select id, salary from crm.employees where salary > $1 order by id', [1000]], ['select nope from crm.employees where id = $1', [1]]] as const) {
          out.push(await c.query({ text: sql, values: [...values], rowMode: 'array' }).then((r) => [r.fields.map((f) => [f.name, f.dataTypeID]), r.rows, r.command, r.rowCount], (e: pg.DatabaseError) => [e.code, e.message]));
        }
      }
    } finally {
      await c.end();
    }
    return out;
  };
  assert.equal(await run(h.proxy.port), await run(inline.port));
});

test('pgveil keeps at most upstream.statements.maxPerConnection statements per connection, and prepares anew after a policy reload', async () => {
  const small = await startProxyVariant(h, { upstreamStatements: 2 });
  try {
    const forms = ['select id from crm.employees where id = 1', 'select name from crm.employees where id = 1', 'select ssn from crm.employees where id = 1'];
    const c = await connect(small, 'alice@acme.com');
    for (let round = 0; round < 3; round++) for (const q of forms) await answers(c, [q]);
    assert.equal(await statementCounts(small), { prepared: 9 }, 'three forms round-robin over two places: each use evicts the next one needed');
    for (let round = 0; round < 3; round++) for (const q of forms.slice(0, 2)) await answers(c, [q]);
    assert.equal(await statementCounts(small), { prepared: 11, reused: 4 }, 'two forms fit: prepared once more each, then reused');
    const [masked] = await answers(c, [forms[2]]);
    const policy = join(h.dir, 'policy.yaml');
    const original = readFileSync(policy, 'utf8');
    assert.ok(original.includes('{ mask: partial, keepLast: 4 }'));
    writeFileSync(policy, original.replace('{ mask: partial, keepLast: 4 }', '{ mask: full }'));
    assert.is(await small.reload(), true);
    const [after] = await answers(c, [forms[2]]);
    assert.is.not(after.join(), masked.join(), 'the new policy\'s mask, not the old statement');
    assert.equal((await statementCounts(small)).prepared, 13, 'prepared anew under the new policy');
    writeFileSync(policy, original);
    assert.is(await small.reload(), true);
  } finally {
    await small.close();
  }
});

test.run();
