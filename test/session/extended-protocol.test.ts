// The extended query protocol in full, byte by byte with a raw client, on a
// protected table: Describe of statements and portals,
// Execute with a row limit and PortalSuspended, Flush, Close, pipelines
// with an error in the middle (in and out of a transaction block), binary
// parameters and results, and masked columns keeping the type OID and
// typmod of the table's column in RowDescription.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, cstr, frame, int16, int32, msg, sqlstate, type BackendMessage } from '../helpers/raw-client.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    extraSql: `
      CREATE TABLE crm.items (id int PRIMARY KEY, org_id text NOT NULL, code varchar(12), price numeric(10,2), tag char(4));
      INSERT INTO crm.items SELECT i, CASE WHEN i <= 10 THEN 'acme' ELSE 'globex' END, 'C-' || lpad(i::text, 6, '0'), i * 10.25, 't' || (i % 10)
        FROM generate_series(1, 20) i;
      GRANT SELECT ON crm.items TO pgveil_service;`,
    policyYaml: `
tables:
  crm.items:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      code:  { mask: partial, keepLast: 2 }
      price: { mask: round, step: 100 }
      tag:   { mask: "null" }
`,
  });
});
test.after(async () => { await h?.close(); });

const types = (ms: BackendMessage[]) => ms.map((m) => m.type).join('');

async function loggedIn(): Promise<RawClient> {
  const c = await RawClient.connect(h.proxy.port);
  await c.login('alice@acme.com', passwords['alice@acme.com']);
  return c;
}

/** Reads exactly `n` messages (for exchanges that end without ReadyForQuery, e.g. after Flush). */
async function take(c: RawClient, n: number): Promise<BackendMessage[]> {
  const out: BackendMessage[] = [];
  for (let i = 0; i < n; i++) {
    const m = await c.message();
    if (!m) throw new Error(`connection closed after ${types(out)}`);
    out.push(m);
  }
  return out;
}

const parse = (name: string, sql: string, paramTypes: number[] = []) =>
  frame('P', Buffer.concat([cstr(name), cstr(sql), int16(paramTypes.length), ...paramTypes.map(int32)]));
/** Bind with per-parameter formats (0 text, 1 binary) and one result format for all columns. */
function bind(portal: string, stmt: string, params: Array<{ format: 0 | 1; value: Buffer | null }>, resultFormat: 0 | 1 = 0): Buffer {
  return frame('B', Buffer.concat([
    cstr(portal), cstr(stmt),
    int16(params.length), ...params.map((p) => int16(p.format)),
    int16(params.length), ...params.map((p) => (p.value === null ? int32(-1) : Buffer.concat([int32(p.value.length), p.value]))),
    int16(1), int16(resultFormat),
  ]));
}
const execute = (portal: string, maxRows: number) => frame('E', Buffer.concat([cstr(portal), int32(maxRows)]));
const describe = (kind: 'S' | 'P', name: string) => frame('D', Buffer.concat([Buffer.from(kind), cstr(name)]));
const close = (kind: 'S' | 'P', name: string) => frame('C', Buffer.concat([Buffer.from(kind), cstr(name)]));
const flush = () => frame('H');
const text = (s: string) => ({ format: 0 as const, value: Buffer.from(s) });

/** Fields of a RowDescription: name, type OID, typmod, format. */
function rowDescription(m: BackendMessage): Array<{ name: string; type: number; typmod: number; format: number }> {
  assert.is(m.type, 'T');
  const out = [];
  let at = 2;
  for (let i = 0; i < m.body.readInt16BE(0); i++) {
    const end = m.body.indexOf(0, at);
    const name = m.body.toString('utf8', at, end);
    at = end + 1;
    out.push({ name, type: m.body.readInt32BE(at + 6), typmod: m.body.readInt32BE(at + 12), format: m.body.readInt16BE(at + 16) });
    at += 18;
  }
  return out;
}

/** Columns of a DataRow (null for SQL NULL). */
function dataRow(m: BackendMessage): Array<Buffer | null> {
  assert.is(m.type, 'D');
  const out: Array<Buffer | null> = [];
  let at = 2;
  for (let i = 0; i < m.body.readInt16BE(0); i++) {
    const len = m.body.readInt32BE(at);
    at += 4;
    out.push(len === -1 ? null : m.body.subarray(at, at + len));
    if (len > 0) at += len;
  }
  return out;
}

const ITEMS = 'select id, code, price, tag from crm.items where id > $1 order by id';

test('Describe of a statement: ParameterDescription, then a RowDescription whose masked columns keep the column\'s type OID and typmod', async () => {
  const direct = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: h.pg.user, password: h.pg.password, database: 'analytics' });
  await direct.connect();
  const upstreamFields = (await direct.query('select id, code, price, tag from crm.items limit 0')).fields.map((f) => ({ name: f.name, type: f.dataTypeID, typmod: f.dataTypeModifier }));
  await direct.end();
  assert.equal(upstreamFields.map((f) => f.type), [23, 1043, 1700, 1042], 'fixture: int4, varchar, numeric, bpchar');
  const c = await loggedIn();
  c.send(parse('items', ITEMS), describe('S', 'items'), msg.sync());
  const replies = await c.untilReady();
  assert.is(types(replies), '1tTZ');
  assert.is(replies[1].body.readInt16BE(0), 1);
  assert.is(replies[1].body.readInt32BE(2), 23, '$1 inferred as int4 from the user\'s own text');
  assert.equal(rowDescription(replies[2]).map(({ name, type, typmod }) => ({ name, type, typmod })), upstreamFields);
  // a statement that returns no rows describes as NoData
  c.send(parse('noop', 'set datestyle = iso'), describe('S', 'noop'), msg.sync());
  assert.is(types(await c.untilReady()), '1tnZ');
  c.close();
});

test('Execute with a row limit suspends the portal (PortalSuspended); Flush delivers without a Sync; the rest follows', async () => {
  const c = await loggedIn();
  c.send(parse('s', ITEMS), bind('p', 's', [text('0')]), describe('P', 'p'), execute('p', 3), flush());
  const first = await take(c, 7);
  assert.is(types(first), '12TDDDs', 'Flush sends what is ready, before any Sync');
  assert.equal(first.slice(3, 6).map((m) => dataRow(m)[0]?.toString()), ['1', '2', '3']);
  assert.equal(dataRow(first[3]).map((v) => v?.toString() ?? null), ['1', 'XXXXXX01', '0.00', null], 'masked values, the user\'s rows');
  c.send(execute('p', 4), flush());
  const second = await take(c, 5);
  assert.is(types(second), 'DDDDs');
  c.send(execute('p', 0), msg.sync());
  const rest = await c.untilReady();
  assert.is(types(rest), 'DDDCZ');
  assert.is(rest[3].body.toString('utf8', 0, rest[3].body.length - 1), 'SELECT 3');
  assert.equal(rest.slice(0, 3).map((m) => dataRow(m)[0]?.toString()), ['8', '9', '10'], 'only acme\'s ten rows in all');
  c.close();
});

test('Close of a portal and of a statement: CloseComplete, and the closed statement is gone', async () => {
  const c = await loggedIn();
  c.send(msg.query('begin'));
  await c.untilReady();
  c.send(parse('s2', ITEMS), bind('p2', 's2', [text('8')]), execute('p2', 1), close('P', 'p2'), close('S', 's2'), msg.sync());
  const replies = await c.untilReady();
  assert.is(types(replies), '12Ds33Z');
  assert.is(replies[replies.length - 1].body.toString(), 'T', 'still in the transaction block');
  c.send(bind('p3', 's2', [text('1')]), execute('p3', 0), msg.sync());
  const gone = await c.untilReady();
  assert.is(types(gone), 'EZ');
  assert.is(sqlstate(gone[0]), '26000');
  assert.is(gone[1].body.toString(), 'E', 'the error aborted the block');
  c.send(msg.query('rollback'));
  assert.is((await c.untilReady()).at(-1)?.body.toString(), 'I');
  c.close();
});

test('a pipeline with an upstream error or a refusal in the middle: skip to Sync, and the transaction status is right', async () => {
  // upstream parses 1/0 and fails executing it (ParseComplete first); pgveil refuses pg_statistic at Parse
  for (const [failing, parsed] of [['select 1/0 from crm.items', '1'], ['select * from pg_catalog.pg_statistic', '']]) {
    const c = await loggedIn();
    // outside a block: the results before the error, the error, nothing after, then idle
    c.send(
      parse('', 'select count(*) from crm.items'), bind('', '', []), execute('', 0),
      parse('', failing), bind('', '', []), execute('', 0),
      parse('', 'select 42'), bind('', '', []), execute('', 0),
      msg.sync(),
    );
    const idle = await c.untilReady();
    assert.is(types(idle), `12DC${parsed}EZ`, failing);
    assert.is(dataRow(idle[2])[0]?.toString(), '10');
    assert.is(idle.at(-1)?.body.toString(), 'I');
    // inside a block: failed ('E') until ROLLBACK
    c.send(msg.query('begin'));
    await c.untilReady();
    c.send(parse('', failing), bind('', '', []), execute('', 0), parse('', 'select 42'), bind('', '', []), execute('', 0), msg.sync());
    const failed = await c.untilReady();
    assert.is(types(failed), `${parsed}EZ`, failing);
    assert.is(failed.at(-1)?.body.toString(), 'E');
    c.send(msg.query('select 1'));
    const still = await c.untilReady();
    assert.is(sqlstate(still[0]), '25P02', 'commands are ignored until the end of the block');
    c.send(msg.query('rollback'));
    assert.is((await c.untilReady()).at(-1)?.body.toString(), 'I');
    c.close();
  }
});

test('binary parameters and binary results, with a masked column', async () => {
  const c = await loggedIn();
  const id = Buffer.alloc(4);
  id.writeInt32BE(4);
  c.send(parse('', 'select id, price, code from crm.items where id = $1', [23]), bind('', '', [{ format: 1, value: id }], 1), describe('P', ''), execute('', 0), msg.sync());
  const replies = await c.untilReady();
  assert.is(types(replies), '12TDCZ');
  assert.equal(rowDescription(replies[2]).map((f) => f.format), [1, 1, 1]);
  const [rid, price, code] = dataRow(replies[3]);
  assert.is(rid?.readInt32BE(0), 4);
  // numeric in binary: ndigits, weight, sign, dscale, digits — 0.00 is no digits, dscale 2 (41.00 rounded to a step of 100)
  assert.equal([price?.readInt16BE(0), price?.readInt16BE(4), price?.readInt16BE(6)], [0, 0, 2]);
  assert.is(code?.toString(), 'XXXXXX04');
  // a binary parameter for another org's row finds nothing
  id.writeInt32BE(14);
  c.send(parse('', 'select id from crm.items where id = $1', [23]), bind('', '', [{ format: 1, value: id }], 1), execute('', 0), msg.sync());
  assert.is(types(await c.untilReady()), '12CZ');
  c.close();
});

test('parameters of common types round-trip through pgveil exactly as straight to upstream', async () => {
  const values: Array<[string, unknown]> = [
    ['int2', 7], ['int4', -42], ['int8', '9007199254740993'], ['float8', 1.5e-10], ['numeric', '12345678901234567890.0123'],
    ['text', 'héllo\twörld'], ['varchar(5)', 'abcde'], ['bool', true], ['date', '2026-11-23'], ['timestamptz', '2026-11-23T10:00:00.123Z'],
    ['interval', '1 day 02:03:04'], ['uuid', '6f1c2a8e-1b7d-4c5e-9f00-123456789abc'], ['bytea', Buffer.from([0, 1, 254, 255])],
    ['json', '{"a":[1,2]}'], ['jsonb', '{"b": {"c": null}}'], ['int4[]', [1, null, 3]], ['text[]', ['a', 'b"c', null]], ['inet', '10.1.2.3/32'],
  ];
  const direct = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: h.pg.user, password: h.pg.password, database: 'analytics' });
  const via = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await direct.connect();
  await via.connect();
  try {
    for (const [type, value] of values) {
      const q = { text: `select $1::${type} as v, pg_typeof($1::${type})::text as t`, values: [value] };
      assert.equal((await via.query(q)).rows, (await direct.query(q)).rows, type);
    }
  } finally {
    await direct.end();
    await via.end();
  }
});

test.run();
