// Exact protocol behaviour checked byte by byte with a raw client:
// pipelines with a refusal in the middle, FunctionCall, unknown messages,
// protocol versions, GSSENCRequest, and the startup deadline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, frame, int32, msg, sqlstate, startupPacket } from '../helpers/raw-client.js';

let h: Harness;
test.before(async () => { h = await startHarness({ tlsMode: 'prefer', startupTimeoutMs: 1000 }); });
test.after(async () => { await h?.close(); });

const types = (ms: Array<{ type: string }>) => ms.map((m) => m.type).join('');

async function loggedIn(user = 'alice@acme.com'): Promise<RawClient> {
  const c = await RawClient.connect(h.proxy.port);
  const ready = await c.login(user, passwords[user]);
  const names = types(ready);
  assert.ok(names.endsWith('KZ'), `startup ends with BackendKeyData, ReadyForQuery: ${names}`);
  return c;
}

test('a pipeline with a refused Parse in the middle: earlier results, then the error, then ReadyForQuery', async () => {
  const c = await loggedIn();
  c.send(
    msg.parse('', 'select 1'), msg.bind('', ''), msg.execute(''),
    msg.parse('', 'select * from pg_catalog.pg_stats'), msg.bind('', ''), msg.execute(''),
    msg.sync(),
  );
  const replies = await c.untilReady();
  assert.is(types(replies), '12DCEZ');
  assert.is(sqlstate(replies[4]), '42501');
  assert.is(replies[5].body.toString(), 'I');
  // The session goes on normally.
  c.send(msg.query('select 7'));
  const next = await c.untilReady();
  assert.is(types(next), 'TDCZ');
  c.close();
});

test('a refused Parse answered directly: skip until Sync, one error, ReadyForQuery idle', async () => {
  const c = await loggedIn();
  c.send(msg.parse('s1', 'select * from pg_catalog.pg_stats'), msg.bind('', 's1'), msg.execute(''), msg.sync());
  const replies = await c.untilReady();
  assert.is(types(replies), 'EZ');
  assert.is(sqlstate(replies[0]), '42501');
  c.close();
});

test('A10 protocol FunctionCall is refused and the session stays usable', async () => {
  const c = await loggedIn();
  // FunctionCall of oid 1 (any function) with no arguments.
  c.send(frame('F', Buffer.concat([int32(1), Buffer.from([0, 0, 0, 0, 0, 0])])));
  const replies = await c.untilReady();
  assert.is(types(replies), 'EZ');
  assert.is(sqlstate(replies[0]), '42501');
  c.send(msg.query('select 1'));
  assert.is(types(await c.untilReady()), 'TDCZ');
  c.close();
});

test('E1 an unknown message type closes that client with 08P01', async () => {
  const c = await loggedIn();
  c.send(frame('!', Buffer.from('junk')));
  const reply = await c.message();
  assert.is(sqlstate(reply), '08P01');
  assert.is(await c.message(), undefined);
});

test('protocol 3.2 is negotiated down to 3.0; unknown _pq_ options are listed', async () => {
  const c = await RawClient.connect(h.proxy.port);
  c.send(startupPacket({ user: 'alice@acme.com', database: 'analytics', '_pq_.compression': 'on' }, (3 << 16) | 2));
  const first = await c.message();
  assert.is(first?.type, 'v');
  assert.is(first?.body.readInt32BE(0), 0);
  assert.is(first?.body.readInt32BE(4), 1);
  assert.match(first?.body.subarray(8).toString() ?? '', /_pq_.compression/);
  const auth = await c.message();
  assert.is(auth?.type, 'R');
  c.close();
});

test('protocol 2.0 is refused with a clear error', async () => {
  const c = await RawClient.connect(h.proxy.port);
  c.send(startupPacket({ user: 'alice@acme.com' }, 2 << 16));
  const reply = await c.message();
  assert.is(sqlstate(reply), '0A000');
  assert.match(reply?.body.toString() ?? '', /unsupported frontend protocol 2\.0/);
});

test('GSSENCRequest is answered N and startup continues', async () => {
  const c = await RawClient.connect(h.proxy.port);
  c.send(Buffer.concat([int32(8), int32(80877104)]));
  assert.is((await c.bytes(1)).toString(), 'N');
  const ready = await c.login('bob@globex.com', passwords['bob@globex.com']);
  assert.is(ready[ready.length - 1].type, 'Z');
  c.close();
});

test('D2 an unknown user runs the same SCRAM exchange as a known one, with a stable salt', async () => {
  const firstMessage = async (user: string) => {
    const c = await RawClient.connect(h.proxy.port);
    c.send(startupPacket({ user, database: 'analytics' }));
    await c.message(); // AuthenticationSASL
    c.send(frame('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(32), Buffer.from('n,,n=,r=AAAAAAAAAAAAAAAAAAAAAAAA')])));
    const cont = await c.message();
    c.close();
    assert.is(cont?.type, 'R');
    const text = cont!.body.subarray(4).toString();
    return { salt: /s=([^,]+)/.exec(text)?.[1], iterations: /i=(\d+)/.exec(text)?.[1] };
  };
  const known = await firstMessage('alice@acme.com');
  const unknown = await firstMessage('nobody@nowhere.example');
  const again = await firstMessage('nobody@nowhere.example');
  assert.is(unknown.iterations, known.iterations);
  assert.ok(unknown.salt && unknown.salt.length === known.salt?.length, 'a salt of the same length');
  assert.is(again.salt, unknown.salt, 'the same fake salt every time, like a real verifier');
});

test('D5 a client that sends nothing is closed at the startup deadline', async () => {
  const c = await RawClient.connect(h.proxy.port);
  const started = Date.now();
  const reply = await c.message(5000);
  assert.is(sqlstate(reply), '08P01');
  assert.ok(Date.now() - started >= 900 && Date.now() - started < 3000);
});

test('D3 tls.mode prefer still serves TLS clients, with channel binding', async () => {
  const client = new pg.Client(clientConfig(h, 'carol@acme.com', { enableChannelBinding: true }));
  await client.connect();
  const r = await client.query('select 1 as one');
  assert.is(r.rows[0].one, 1);
  await client.end();
});

test.run();
