// Codec tests: every stream is fed split at every byte boundary and compared
// against a deliberately naive encoder written here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameReader } from '../../src/protocol/frame-reader.js';
import { BackendScanner, watchTypes } from '../../src/protocol/backend-scanner.js';
import {
  readParse, readQuery, readSaslInitialResponse, readStartupPacket, writeParse, writeQuery,
} from '../../src/protocol/frontend-messages.js';
import { readErrorFields, writeErrorResponse, writeParameterStatus } from '../../src/protocol/backend-messages.js';
import { PgError } from '../../src/errors.js';

// ── naive encoders ──────────────────────────────────────────────────────────
const cstr = (s: string) => [...Buffer.from(s, 'utf8'), 0];
const int32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const int16 = (n: number) => [(n >>> 8) & 255, n & 255];
function typed(type: string, body: number[]): Buffer {
  return Buffer.from([type.charCodeAt(0), ...int32(body.length + 4), ...body]);
}
function untyped(body: number[]): Buffer {
  return Buffer.from([...int32(body.length + 4), ...body]);
}

function splits(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]];
  for (let i = 1; i < stream.length; i++) out.push([stream.subarray(0, i), stream.subarray(i)]);
  out.push([...stream].map((b) => Buffer.from([b]))); // one byte at a time
  return out;
}

function readAll(chunks: Buffer[], typedReader: boolean): Array<{ type: number; body: Buffer }> {
  const reader = new FrameReader(typedReader, 1 << 20);
  const frames: Array<{ type: number; body: Buffer }> = [];
  for (const c of chunks) {
    reader.push(c);
    while (reader.next()) frames.push({ type: reader.type, body: Buffer.from(reader.buf.subarray(reader.bodyStart, reader.end)) });
  }
  assert.is(reader.pending, 0);
  return frames;
}

test('FrameReader yields the same frames for every split of a pipelined stream', () => {
  const msgs = [
    typed('P', [...cstr('s1'), ...cstr('select $1::int, \'é\''), ...int16(1), ...int32(23)]),
    typed('B', [...cstr(''), ...cstr('s1'), ...int16(0), ...int16(1), ...int32(1), 0x31, ...int16(0)]),
    typed('E', [...cstr(''), ...int32(0)]),
    typed('S', []),
    typed('Q', cstr('select 1; select 2')),
  ];
  const stream = Buffer.concat(msgs);
  for (const chunks of splits(stream)) {
    const frames = readAll(chunks, true);
    assert.is(frames.length, msgs.length);
    frames.forEach((f, i) => {
      assert.is(f.type, msgs[i][0]);
      assert.equal(f.body, msgs[i].subarray(5));
    });
  }
});

test('FrameReader reads startup-phase packets split anywhere', () => {
  const ssl = untyped(int32(80877103));
  const startup = untyped([...int32(196608), ...cstr('user'), ...cstr('alice@acme.com'), ...cstr('database'), ...cstr('analytics'), 0]);
  for (const chunks of splits(Buffer.concat([ssl, startup]))) {
    const frames = readAll(chunks, false);
    assert.is(frames.length, 2);
    const first = readStartupPacket(frames[0].body, 0, frames[0].body.length);
    assert.is(first.kind, 'ssl');
    const second = readStartupPacket(frames[1].body, 0, frames[1].body.length);
    assert.ok(second.kind === 'startup');
    if (second.kind === 'startup') {
      assert.is(second.major, 3);
      assert.is(second.params.get('user'), 'alice@acme.com');
      assert.is(second.params.get('database'), 'analytics');
    }
  }
});

test('E1 FrameReader refuses bad and oversized lengths', () => {
  const reader = new FrameReader(true, 1000);
  reader.push(Buffer.from([0x51, ...int32(2)]));
  assert.throws(() => reader.next(), (e: PgError) => e.code === '08P01');
  const big = new FrameReader(true, 1000);
  big.push(Buffer.from([0x51, ...int32(5000)]));
  assert.throws(() => big.next(), (e: PgError) => e.code === '08P01' && /exceeds/.test(e.message));
  const startup = new FrameReader(false, 10000);
  startup.push(Buffer.from(int32(3)));
  assert.throws(() => startup.next(), (e: PgError) => e.code === '08P01');
});

test('E1 FrameReader hands out an oversize Query bodiless, drops its bytes however they are split, and reads on', () => {
  const body = Buffer.alloc(4990, 0x61);
  const stream = Buffer.concat([Buffer.from([0x51, ...int32(4 + body.length)]), body, typed('Q', cstr('select 1'))]);
  for (const cut of [[3], [5], [6, 100, 4000], [4994, 4995], [stream.length - 3]]) {
    const reader = new FrameReader(true, 1000);
    reader.refusableTypes([[0x51, 1000]]);
    const seen: string[] = [];
    let from = 0;
    for (const at of [...cut, stream.length]) {
      reader.push(stream.subarray(from, at));
      from = at;
      while (reader.next()) seen.push(reader.oversize ? `oversize ${reader.oversize}` : readQuery(reader.buf, reader.bodyStart, reader.end));
    }
    assert.equal(seen, ['oversize 4994', 'select 1'], `cut at ${cut.join(',')}`);
  }
  const other = new FrameReader(true, 1000);
  other.refusableTypes([[0x51, 1000]]);
  other.push(Buffer.from([0x44, ...int32(5000)]));
  assert.throws(() => other.next(), (e: PgError) => e.code === '08P01' && /exceeds/.test(e.message), 'other types still fail');
});

test('message decoders match the naive encoder', () => {
  const q = typed('Q', cstr('select \'ünïcode\''));
  assert.is(readQuery(q, 5, q.length), "select 'ünïcode'");
  const p = typed('P', [...cstr('stmt'), ...cstr('select $1'), ...int16(2), ...int32(23), ...int32(25)]);
  const parse = readParse(p, 5, p.length);
  assert.is(parse.name, 'stmt');
  assert.is(parse.query, 'select $1');
  const rebuilt = writeParse(parse.name, 'select $1 /* rewritten */', p, parse.paramsOffset, p.length);
  assert.equal(rebuilt, typed('P', [...cstr('stmt'), ...cstr('select $1 /* rewritten */'), ...int16(2), ...int32(23), ...int32(25)]));
  assert.equal(writeQuery('select 1'), typed('Q', cstr('select 1')));
  const sasl = typed('p', [...cstr('SCRAM-SHA-256'), ...int32(3), 0x61, 0x62, 0x63]);
  const initial = readSaslInitialResponse(sasl, 5, sasl.length);
  assert.is(initial.mechanism, 'SCRAM-SHA-256');
  assert.is(initial.data.toString(), 'abc');
});

test('E1 malformed bodies are protocol violations, not crashes', () => {
  const badParse = typed('P', [...cstr('s'), ...cstr('select 1'), ...int16(3), ...int32(23)]);
  assert.throws(() => readParse(badParse, 5, badParse.length), (e: PgError) => e.code === '08P01');
  const noNul = typed('Q', [0x61, 0x62]);
  assert.throws(() => readQuery(noNul, 5, noNul.length), (e: PgError) => e.code === '08P01');
  const badStartup = untyped([...int32(196608), ...cstr('user')]);
  assert.throws(() => readStartupPacket(badStartup, 4, badStartup.length), (e: PgError) => e.code === '08P01');
});

test('ErrorResponse encoder round-trips through the decoder', () => {
  const err = new PgError('42501', 'permission denied for table employees', { hint: 'ask your DBA', position: 15 });
  const msg = writeErrorResponse(err);
  assert.is(msg[0], 0x45);
  assert.is(msg.readInt32BE(1), msg.length - 1);
  const fields = readErrorFields(msg, 5, msg.length);
  assert.is(fields.get('C'), '42501');
  assert.is(fields.get('S'), 'ERROR');
  assert.is(fields.get('M'), 'permission denied for table employees');
  assert.is(fields.get('H'), 'ask your DBA');
  assert.is(fields.get('P'), '15');
});

test('BackendScanner forwards bytes unchanged and sees every watched message, for every split', () => {
  const msgs = [
    writeParameterStatus('TimeZone', 'UTC'),
    typed('T', [...int16(1), ...cstr('a'), ...int32(0), ...int16(0), ...int32(23), ...int16(4), ...int32(-1), ...int16(0)]),
    typed('D', [...int16(1), ...int32(1), 0x31]),
    typed('C', cstr('SELECT 1')),
    typed('E', [0x53, ...cstr('ERROR'), 0x4d, ...cstr('boom'), 0]),
    typed('Z', [0x49]),
    typed('n', []),
  ];
  const stream = Buffer.concat(msgs);
  for (const chunks of splits(stream)) {
    const seen: string[] = [];
    const out: Buffer[] = [];
    const scanner = new BackendScanner(watchTypes([0x5a, 0x45, 0x6e]), (type, msg) => {
      seen.push(String.fromCharCode(type) + msg.length);
      return undefined;
    }, (b) => out.push(Buffer.from(b)));
    for (const c of chunks) scanner.push(c);
    assert.equal(Buffer.concat(out), stream);
    assert.equal(seen, ['E' + msgs[4].length, 'Z6', 'n5']);
    assert.ok(scanner.atBoundary);
  }
});

test('BackendScanner replaces and drops watched messages in place', () => {
  const a = typed('C', cstr('SELECT 1'));
  const e = typed('E', [0x4d, ...cstr('sentinel'), 0]);
  const z = typed('Z', [0x45]);
  const replacement = typed('E', [0x4d, ...cstr('refused'), 0]);
  const stream = Buffer.concat([a, e, z]);
  for (const chunks of splits(stream)) {
    const out: Buffer[] = [];
    const scanner = new BackendScanner(watchTypes([0x45, 0x5a]), (type) => (type === 0x45 ? replacement : null), (b) => out.push(Buffer.from(b)));
    for (const c of chunks) scanner.push(c);
    assert.equal(Buffer.concat(out), Buffer.concat([a, replacement]));
  }
});

test('E1 BackendScanner rejects an impossible length', () => {
  const scanner = new BackendScanner(watchTypes([]), () => undefined, () => {});
  assert.throws(() => scanner.push(Buffer.from([0x44, ...int32(1)])));
});

test.run();
