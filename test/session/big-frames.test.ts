// Messages of several MiB pass through pgveil intact, with
// limits.maxMessageBytes raised: a COPY FROM STDIN row (CopyData, forwarded
// piece by piece as it arrives), a Bind parameter (assembled whole, decided,
// then forwarded), and a CopyData frame whose halves arrive apart. A frame
// over the limit is refused on its header alone: a Query, Parse or Bind with
// 54000 (its bytes dropped as they come, the session goes on), any other
// with a FATAL 08P01.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import postgres from 'postgres';
import { startHarness, clientConfig, passwords, policyDefaults, employeesPolicy, type Harness } from '../helpers/harness.js';
import { RawClient, cstr, frame, int32, msg, sqlstate } from '../helpers/raw-client.js';

const ALICE = 'alice@acme.com';
const LIMIT = 16 << 20;
let h: Harness;

const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

/** A text of `bytes` bytes that is not one repeated character (so a misplaced piece would show). */
function bigText(bytes: number, seed: number): string {
  let out = '';
  const line = Array.from({ length: 61 }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join('');
  while (out.length < bytes) out += line + String(out.length % 10);
  return out.slice(0, bytes);
}

async function stored(id: number): Promise<{ length: number; md5: string } | undefined> {
  const su = await h.pg.connect('analytics');
  try {
    const r = await su.query('select length(body) as length, md5(body) as md5 from public.blobs where id = $1', [id]);
    return r.rows[0] ? { length: Number(r.rows[0].length), md5: r.rows[0].md5 as string } : undefined;
  } finally {
    await su.end();
  }
}

test.before(async () => {
  h = await startHarness({
    tlsMode: 'prefer',
    maxMessageBytes: LIMIT,
    policyYaml: policyDefaults.replace('writes: deny', 'writes: allow') + employeesPolicy,
    extraSql: `CREATE TABLE public.blobs (id int, body text);
      GRANT SELECT, INSERT ON public.blobs TO pgveil_service;`,
  });
});
test.after(async () => { await h?.close(); });

test('a COPY FROM STDIN row of 6 MiB goes in intact', async () => {
  const body = bigText(6 << 20, 1);
  const sql = postgres({ ...clientConfig(h, ALICE), max: 1, onnotice: () => {} } as postgres.Options<Record<string, never>>);
  try {
    // One write is one CopyData message of 6 MiB; it reaches pgveil in many socket chunks.
    await pipeline(Readable.from([Buffer.from(`1\t${body}\n`)]), await sql`copy public.blobs (id, body) from stdin`.writable());
  } finally {
    await sql.end();
  }
  assert.equal(await stored(1), { length: body.length, md5: md5(body) });
});

test('a Bind parameter of 6 MiB arrives whole', async () => {
  const body = bigText(6 << 20, 2);
  const client = new pg.Client(clientConfig(h, ALICE));
  await client.connect();
  try {
    const r = await client.query('select md5($1::text) as md5, length($1::text) as length', [body]);
    assert.equal(r.rows[0], { md5: md5(body), length: body.length });
  } finally {
    await client.end();
  }
});

test('a CopyData frame whose halves arrive apart is forwarded in order and goes in intact', async () => {
  const c = await RawClient.connect(h.proxy.port);
  try {
    await c.login(ALICE, passwords[ALICE]);
    c.send(msg.query('copy public.blobs (id, body) from stdin'));
    assert.is((await c.message())?.type, 'G');
    const body = bigText(3 << 20, 3);
    const data = frame('d', Buffer.from(`3\t${body}\n`));
    const half = data.length >> 1;
    c.send(data.subarray(0, 3)); // even the header split
    await new Promise((r) => setTimeout(r, 20));
    c.send(data.subarray(3, half));
    await new Promise((r) => setTimeout(r, 50)); // the first part is upstream before the rest is sent
    c.send(data.subarray(half), frame('c'));
    const answers = await c.untilReady();
    assert.equal(answers.map((m) => m.type), ['C', 'Z'], JSON.stringify(answers.map((m) => m.body.toString())));
    assert.is(answers[0].body.toString(), 'COPY 1\0');
    assert.equal(await stored(3), { length: body.length, md5: md5(body) });
  } finally {
    c.close();
  }
});

test('E2 a Query over limits.maxMessageBytes is refused with 54000 on its header; its bytes are dropped as they come and the session goes on', async () => {
  const c = await RawClient.connect(h.proxy.port);
  try {
    await c.login(ALICE, passwords[ALICE]);
    // Only the header is sent: the refusal must not wait for the body.
    c.send(Buffer.concat([Buffer.from('Q'), int32(LIMIT + 1)]));
    const answer = await c.untilReady();
    assert.equal(answer.map((m) => m.type), ['E', 'Z']);
    assert.is(sqlstate(answer[0]), '54000');
    assert.match(answer[0].body.toString(), `message of ${LIMIT + 1} bytes exceeds limits.maxMessageBytes (${LIMIT} bytes)`);
    // The body, in pieces, and a statement right behind it in the last piece.
    const body = Buffer.alloc(LIMIT + 1 - 4, 'x');
    for (let at = 0; at < body.length; at += 1 << 20) c.send(body.subarray(at, Math.min(body.length, at + (1 << 20))));
    c.send(msg.query('select 1'));
    assert.equal((await c.untilReady()).map((m) => m.type), ['T', 'D', 'C', 'Z']);
  } finally {
    c.close();
  }
});

test('E2 a Bind over limits.maxMessageBytes fails that statement with 54000 (node-postgres); the session goes on', async () => {
  const c = new pg.Client(clientConfig(h, ALICE));
  await c.connect();
  try {
    // Within the raised limit but surely over the statement budget: refused unread too.
    const tenMb = `select * from crm.employees where id in (${Array.from({ length: 1_200_000 }, (_, i) => i).join(', ')})`;
    const tooLong = await c.query(tenMb).then(() => undefined, (e: { code?: string; message: string }) => e);
    assert.is(tooLong?.code, '54000');
    assert.match(tooLong?.message ?? '', 'has more than 262144 characters');
    const err = await c.query('select length($1::text) as n', [bigText(LIMIT + 10, 3)]).then(() => undefined, (e: { code?: string }) => e);
    assert.is(err?.code, '54000');
    assert.equal((await c.query('select length($1::text) as n', [bigText(1000, 3)])).rows, [{ n: 1000 }]);
  } finally {
    await c.end();
  }
});

test('a frame over limits.maxMessageBytes of any other type is refused on its header with 08P01', async () => {
  for (const type of ['d', 'D']) {
    const c = await RawClient.connect(h.proxy.port);
    try {
      await c.login(ALICE, passwords[ALICE]);
      // Only the header is sent: the refusal must not wait for the body.
      c.send(Buffer.concat([Buffer.from(type), int32(LIMIT + 1)]));
      const error = await c.message();
      assert.is(sqlstate(error), '08P01');
      assert.match(error?.body.toString() ?? '', `message of ${LIMIT + 1} bytes exceeds the limit of ${LIMIT} bytes`);
      assert.is(await c.message(), undefined, 'the connection is closed');
    } finally {
      c.close();
    }
  }
  // Sessions go on: a small Bind still works.
  const c = await RawClient.connect(h.proxy.port);
  try {
    await c.login(ALICE, passwords[ALICE]);
    c.send(msg.parse('', 'select 1'), frame('B', Buffer.concat([cstr(''), cstr(''), Buffer.alloc(6)])), msg.execute(''), msg.sync());
    assert.equal((await c.untilReady()).map((m) => m.type), ['1', '2', 'D', 'C', 'Z']);
  } finally {
    c.close();
  }
});

test.run();
