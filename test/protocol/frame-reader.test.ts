// Threat E2 in docs/threat-model.md: frames are assembled in linear time — a large message arriving
// in many chunks is copied once, not once per chunk — and chunk boundaries
// anywhere give the same frames. Streamed types (CopyData) come out piece by
// piece, slices of the chunks they arrived in.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameReader } from '../../src/protocol/frame-reader.js';

function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function readAll(stream: Buffer, chunkSizes: () => number): Array<[number, string]> {
  const reader = new FrameReader(true, 1 << 24);
  const out: Array<[number, string]> = [];
  for (let at = 0; at < stream.length;) {
    const size = Math.min(chunkSizes(), stream.length - at);
    reader.push(Buffer.from(stream.subarray(at, at + size)));
    at += size;
    while (reader.next()) out.push([reader.type, reader.buf.subarray(reader.bodyStart, reader.end).toString('latin1')]);
  }
  assert.is(reader.pending, 0);
  return out;
}

test('E2 frames split at any chunk boundaries read the same', () => {
  const frames = [frame('Q', Buffer.from('select 1\0')), frame('Q', Buffer.alloc(70000, 'x')), frame('S', Buffer.alloc(0)), frame('P', Buffer.from('abc'))];
  const stream = Buffer.concat(frames);
  const whole = readAll(stream, () => stream.length);
  assert.is(whole.length, 4);
  let seed = 7;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return 1 + (seed % 9000); };
  for (const sizes of [() => 1, () => 3, () => 16384, random]) assert.equal(readAll(stream, sizes), whole);
});

test('E2 a large frame in many chunks is copied a bounded number of times, not once per chunk', () => {
  const big = frame('Q', Buffer.alloc(800_000, 'y'));
  let copied = 0;
  const original = Buffer.prototype.copy;
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
    const n = original.apply(this, args);
    copied += n;
    return n;
  };
  try {
    readAll(big, () => 16384);
  } finally {
    Buffer.prototype.copy = original;
  }
  // Linear: each byte copied at most twice. Merging per chunk copied ~25× the frame (49 chunks).
  assert.ok(copied <= 2 * big.length, `copied ${copied} bytes for a ${big.length}-byte frame`);
});

/** Reads `stream` in chunks with CopyData streamed; each frame is rebuilt from its pieces. */
function readStreamed(stream: Buffer, chunkSizes: () => number): Array<[number, string]> {
  const reader = new FrameReader(true, 1 << 24);
  reader.streamTypes([0x64]);
  const out: Array<[number, string]> = [];
  let open: Buffer[] | undefined;
  for (let at = 0; at < stream.length;) {
    const size = Math.min(chunkSizes(), stream.length - at);
    reader.push(Buffer.from(stream.subarray(at, at + size)));
    at += size;
    while (reader.next()) {
      assert.is(reader.continuation, open !== undefined, 'a continuation piece only inside a streamed frame');
      if (!reader.continuation) open = [];
      (open as Buffer[]).push(reader.buf.subarray(reader.frameStart, reader.end));
      if (reader.remaining > 0) continue;
      const whole = Buffer.concat(open as Buffer[]);
      assert.is(whole.readInt32BE(1) + 1, whole.length);
      out.push([whole[0], whole.subarray(5).toString('latin1')]);
      open = undefined;
    }
  }
  assert.is(open, undefined);
  assert.is(reader.pending, 0);
  return out;
}

test('E2 streamed CopyData frames split at any chunk boundaries give the same bytes; other frames stay whole', () => {
  const frames = [frame('d', Buffer.alloc(70000, 'c')), frame('Q', Buffer.from('select 1\0')), frame('d', Buffer.from('a\tb\n')),
    frame('d', Buffer.alloc(0)), frame('B', Buffer.alloc(20000, 'b')), frame('c', Buffer.alloc(0))];
  const stream = Buffer.concat(frames);
  const whole = readAll(stream, () => stream.length);
  let seed = 11;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return 1 + (seed % 9000); };
  for (const sizes of [() => stream.length, () => 1, () => 2, () => 7, () => 16384, random]) assert.equal(readStreamed(stream, sizes), whole);
});

test('E2 only streamed types come in pieces: a Bind straddling chunks is handed over whole', () => {
  const reader = new FrameReader(true, 1 << 24);
  reader.streamTypes([0x64]);
  const bind = frame('B', Buffer.alloc(100000, 'v'));
  reader.push(Buffer.from(bind.subarray(0, 40000)));
  assert.not.ok(reader.next());
  reader.push(Buffer.from(bind.subarray(40000)));
  assert.ok(reader.next());
  assert.is(reader.remaining, 0);
  assert.is(reader.end - reader.frameStart, bind.length);
  assert.ok(reader.buf.subarray(reader.frameStart, reader.end).equals(bind));
});

test('E2 a 64 MiB frame in 64 KiB chunks is assembled whole', () => {
  const size = 64 << 20;
  const reader = new FrameReader(true, 1 << 30);
  const head = Buffer.alloc(5);
  head[0] = 0x42; // 'B'
  head.writeInt32BE(size + 4, 1);
  reader.push(head);
  let frames = 0;
  for (let at = 0; at < size; at += 65536) {
    const chunk = Buffer.alloc(Math.min(65536, size - at), at / 65536);
    reader.push(chunk);
    while (reader.next()) frames++;
  }
  assert.is(frames, 1);
  assert.is(reader.end - reader.bodyStart, size);
  assert.is(reader.buf[reader.bodyStart], 0);
  assert.is(reader.buf[reader.end - 1], (size / 65536 - 1) & 0xff);
  assert.is(reader.pending, 0);
});

test('E2 a 64 MiB CopyData frame is streamed in the chunks it came in, none of them copied', () => {
  const size = 64 << 20;
  const reader = new FrameReader(true, 1 << 30);
  reader.streamTypes([0x64]);
  const head = Buffer.alloc(5);
  head[0] = 0x64;
  head.writeInt32BE(size + 4, 1);
  reader.push(head);
  let bytes = 0;
  let pieces = 0;
  for (let at = 0; at < size; at += 65536) {
    const chunk = Buffer.alloc(65536, 1);
    reader.push(chunk);
    while (reader.next()) {
      if (pieces > 0) assert.is(reader.buf, chunk, 'a piece is a slice of its chunk');
      bytes += reader.end - reader.frameStart;
      pieces++;
    }
  }
  assert.is(bytes, size + 5);
  assert.is(pieces, 1 + size / 65536);
  assert.is(reader.remaining, 0);
});

test('E2 the length header is checked before the body arrives, with the same error as before', () => {
  const reader = new FrameReader(true, 1000);
  const head = Buffer.alloc(5);
  head[0] = 0x51;
  head.writeInt32BE(1001 + 4, 1);
  reader.push(head.subarray(0, 3));
  assert.not.ok(reader.next());
  reader.push(head.subarray(3));
  assert.throws(() => reader.next(), (err: Error) => err.message === 'message of 1005 bytes exceeds the limit of 1000 bytes');
  const bad = new FrameReader(true, 1000);
  bad.push(Buffer.from([0x51, 0, 0, 0, 3]));
  assert.throws(() => bad.next(), (err: Error) => err.message === 'invalid message length 3');
  const streamed = new FrameReader(true, 1000);
  streamed.streamTypes([0x64]);
  streamed.push(Buffer.from([0x64, 0, 0, 0x10, 0]));
  assert.throws(() => streamed.next(), (err: Error) => err.message === 'message of 4096 bytes exceeds the limit of 1000 bytes');
});

test('unread() hands the same frame out again, also one assembled from several chunks', () => {
  const stream = Buffer.concat([frame('Q', Buffer.from('select 1\0')), frame('P', Buffer.alloc(300, 'p')), frame('S', Buffer.alloc(0))]);
  const reader = new FrameReader(true, 1 << 24);
  reader.push(Buffer.from(stream.subarray(0, 20)));
  reader.push(Buffer.from(stream.subarray(20, 200)));
  reader.push(Buffer.from(stream.subarray(200)));
  const seen: string[] = [];
  while (reader.next()) {
    const text = reader.buf.subarray(reader.frameStart, reader.end).toString('latin1');
    reader.unread();
    assert.is(reader.pending > 0, true);
    assert.ok(reader.next());
    assert.is(reader.buf.subarray(reader.frameStart, reader.end).toString('latin1'), text);
    seen.push(String.fromCharCode(reader.type));
  }
  assert.equal(seen, ['Q', 'P', 'S']);
  assert.is(reader.pending, 0);
});

test('startup packets (untyped) and takeRest() after them', () => {
  const reader = new FrameReader(false, 10000);
  const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
  const rest = Buffer.from('tls bytes');
  reader.push(ssl.subarray(0, 2));
  assert.not.ok(reader.next());
  reader.push(Buffer.concat([ssl.subarray(2), rest.subarray(0, 4)]));
  reader.push(rest.subarray(4));
  assert.ok(reader.next());
  assert.is(reader.type, 0);
  assert.is(reader.end - reader.bodyStart, 4);
  assert.is(reader.buf.readInt32BE(reader.bodyStart), 80877103);
  assert.is(reader.pending, rest.length);
  assert.is(reader.takeRest().toString(), 'tls bytes');
  assert.is(reader.pending, 0);
});

test('frames handed out are never overwritten by later ones (they may still wait in a write queue)', () => {
  const reader = new FrameReader(true, 1 << 24);
  const frames = Array.from({ length: 400 }, (_, i) => frame('Q', Buffer.alloc(1 + (i * 37) % 3000, 65 + (i % 26))));
  const stream = Buffer.concat(frames);
  const kept: Array<[Buffer, string]> = [];
  for (let at = 0; at < stream.length; at += 1001) {
    reader.push(Buffer.from(stream.subarray(at, at + 1001)));
    while (reader.next()) {
      const slice = reader.buf.subarray(reader.frameStart, reader.end);
      kept.push([slice, slice.toString('latin1')]);
    }
  }
  assert.is(kept.length, frames.length);
  for (const [i, [slice, text]] of kept.entries()) {
    assert.is(slice.toString('latin1'), text);
    assert.is(text, frames[i].toString('latin1'));
  }
});

test.run();
