// E1: a bounded number of random and mutated frames at the listener. Each
// bad client is closed; pgveil and other sessions live on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => { h = await startHarness({ tlsMode: 'prefer', maxMessageBytes: 65536, maxClients: 40 }); });
test.after(async () => { await h?.close(); });

// A small deterministic PRNG so a failure can be replayed from its seed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n | 0); return b; };
const startup = (params: Record<string, string>) => {
  const body = Buffer.concat([int32(196608), ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
};
const typed = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), int32(body.length + 4), body]);

function mutate(buf: Buffer, rand: () => number): Buffer {
  const out = Buffer.from(buf);
  const flips = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < flips; i++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
  if (rand() < 0.3) return out.subarray(0, Math.floor(rand() * out.length)); // truncated
  return out;
}

function cases(seed: number): Buffer[] {
  const rand = rng(seed);
  const valid = startup({ user: 'alice@acme.com', database: 'analytics' });
  const saslInitial = typed(0x70, Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(32), Buffer.from('n,,n=,r=AAAAAAAAAAAAAAAAAAAAAAAA')]));
  const kinds: Array<() => Buffer> = [
    () => Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256))),
    () => mutate(valid, rand),
    () => Buffer.concat([valid, mutate(saslInitial, rand)]),
    () => Buffer.concat([valid, typed(Math.floor(rand() * 256), Buffer.alloc(Math.floor(rand() * 16)))]),
    () => Buffer.concat([int32(8), int32(80877103), Buffer.from('garbage instead of a TLS hello')]),
    () => Buffer.concat([int32(0x7fffffff), int32(196608)]),
    () => Buffer.concat([valid, Buffer.from([0x70]), int32(0x7ffffff0)]),
    () => Buffer.concat([int32(16), int32(80877102), int32(Math.floor(rand() * 1e9)), int32(Math.floor(rand() * 1e9))]),
    () => Buffer.concat([int32(8), int32(80877104), valid.subarray(0, Math.floor(rand() * valid.length))]),
  ];
  return Array.from({ length: 400 }, () => kinds[Math.floor(rand() * kinds.length)]());
}

function send(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(h.proxy.port, '127.0.0.1', () => s.write(bytes));
    const done = () => { clearTimeout(timer); s.destroy(); resolve(); };
    const timer = setTimeout(done, 300);
    s.on('data', () => {});
    s.on('error', done);
    s.on('close', done);
  });
}

test('E1 400 random and mutated frames: every bad client is handled, the proxy keeps serving', async () => {
  const steady = new pg.Client(clientConfig(h, 'bob@globex.com'));
  await steady.connect();
  const all = cases(20261123);
  for (let i = 0; i < all.length; i += 20) {
    await Promise.all(all.slice(i, i + 20).map(send));
  }
  const r = await steady.query('select 1 as alive');
  assert.is(r.rows[0].alive, 1);
  await steady.end();
  const fresh = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await fresh.connect();
  const again = await fresh.query('select 2 as alive');
  assert.is(again.rows[0].alive, 2);
  await fresh.end();
});

test('E1 an oversized message closes that client with 08P01', async () => {
  const reply = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(h.proxy.port, '127.0.0.1', () => s.write(Buffer.concat([startup({ user: 'alice@acme.com', database: 'analytics' }), Buffer.from([0x70]), int32(10_000_000)])));
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', () => {});
  });
  assert.match(reply.toString('latin1'), /08P01/);
  assert.match(reply.toString('latin1'), /exceeds the limit/);
});

test('E2 huge and pathological SQL: a clear error, no crash, nothing cached wrongly', async () => {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    // Deeply nested expressions and subqueries: answered or refused with an error, never a dead session.
    const nested = 'select ' + '('.repeat(5000) + '1' + ')'.repeat(5000);
    assert.equal((await c.query(nested)).rows, [{ '?column?': 1 }]);
    const subqueries = 'select ' + '(select '.repeat(3000) + '1' + ')'.repeat(3000);
    for (let i = 0; i < 2; i++) {
      const r = await c.query(subqueries).then((x) => x.rows[0], (e) => e as { code?: string });
      assert.ok('code' in r ? typeof r.code === 'string' : Object.values(r)[0] === 1, 'an answer or a clean error');
    }
    const broken = await c.query('select * from crm.employees where (').then(() => undefined, (e) => e as { code?: string });
    assert.is(broken?.code, '42601');
    const ok = await c.query('select name from crm.employees');
    assert.equal(ok.rows, [{ name: 'Ann' }], 'the next statement is analysed afresh');
  } finally {
    await c.end();
  }
  const big = new pg.Client(clientConfig(h, 'alice@acme.com'));
  big.on('error', () => {});
  await big.connect();
  const err = await big.query(`select '${'x'.repeat(70_000)}'`).then(() => undefined, (e) => e as { code?: string; message: string });
  assert.is(err?.code, '54000', 'a statement over limits.maxMessageBytes is refused');
  assert.match(err?.message ?? '', 'exceeds limits.maxMessageBytes (65536 bytes)');
  assert.equal((await big.query('select 1 as one')).rows, [{ one: 1 }], 'and the session goes on');
  await big.end().catch(() => {});
});

test('E3 connection floods: past limits.maxClients a new connection gets 53300; slots free up again', async () => {
  const idle: net.Socket[] = [];
  for (let i = 0; i < 45; i++) {
    idle.push(await new Promise<net.Socket>((resolve) => { const s = net.connect(h.proxy.port, '127.0.0.1', () => resolve(s)); s.on('error', () => {}); }));
  }
  // the refusal answers the StartupMessage, as in PostgreSQL
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(h.proxy.port, '127.0.0.1', () => s.write(startup({ user: 'bob@globex.com', database: 'analytics' })));
    let out = '';
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
  assert.match(reply, /53300/);
  // and a TLS client reads it too: SSL is negotiated first
  const tlsClient = new pg.Client(clientConfig(h, 'bob@globex.com'));
  tlsClient.on('error', () => {});
  const err = await tlsClient.connect().then(() => undefined, (e: { code?: string }) => e);
  assert.is(err?.code, '53300');
  for (const s of idle) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  const c = new pg.Client(clientConfig(h, 'bob@globex.com'));
  await c.connect();
  assert.is((await c.query('select 1 as ok')).rows[0].ok, 1);
  await c.end();
});

test.run();
