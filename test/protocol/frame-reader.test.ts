// THREATS E2: frames are assembled in linear time — a large message arriving
// in many chunks is copied once, not once per chunk — and chunk boundaries
// anywhere give the same frames.
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

test.run();
