// Cost of reading one large client frame that arrives in 64 KiB chunks, per
// MiB of frame, at 1, 8, 32 and 64 MiB. A row that stays flat means linear
// time; one that grows with the size means every chunk re-copies earlier
// bytes. Rows: FrameReader assembling the frame whole (what Query, Parse and
// Bind get), FrameReader streaming it piece by piece (what CopyData gets),
// pg-protocol's parser on the same bytes for comparison, and the floor of any
// reader that assembles: one copy of the chunks into fresh memory, whose page
// faults dominate on a busy machine.
// Run: npm run build:test && node build/bench/frames.js [sizes in MiB, comma-separated] [runs]
import { Parser } from 'pg-protocol/dist/parser.js';
import { FrameReader } from '../src/protocol/frame-reader.js';

const MiB = 1 << 20;
const CHUNK = 64 * 1024;
const sizes = (process.argv[2] ?? '1,8,32,64').split(',').map(Number);
const runs = Number(process.argv[3] ?? 5);
if (sizes.some((s) => !(s > 0)) || !(runs >= 1)) throw new Error('usage: node build/bench/frames.js [1,8,32,64] [runs ≥ 1]');

/** One frame of `type` with a body of `bytes` bytes, cut into 64 KiB chunks as a socket would deliver it. */
function chunkedFrame(type: string, bytes: number): Buffer[] {
  const whole = Buffer.alloc(5 + bytes, 0x61);
  whole[0] = type.charCodeAt(0);
  whole.writeInt32BE(bytes + 4, 1);
  const chunks: Buffer[] = [];
  // Fresh buffers, not views of one: a socket hands over separate chunks.
  for (let at = 0; at < whole.length; at += CHUNK) chunks.push(Buffer.from(whole.subarray(at, at + CHUNK)));
  return chunks;
}

let sink = 0;

type Reader = (chunks: Buffer[]) => void;

const assembled: Reader = (chunks) => {
  const reader = new FrameReader(true, 1 << 30);
  for (const chunk of chunks) {
    reader.push(chunk);
    while (reader.next()) sink += reader.end - reader.frameStart;
  }
};

const streamed: Reader = (chunks) => {
  const reader = new FrameReader(true, 1 << 30);
  reader.streamTypes([0x64]);
  for (const chunk of chunks) {
    reader.push(chunk);
    while (reader.next()) sink += reader.end - reader.frameStart;
  }
};

/** The floor of any reader that assembles: one copy of the chunks into fresh memory (page faults included). */
const floor: Reader = (chunks) => {
  let bytes = 0;
  for (const chunk of chunks) bytes += chunk.length;
  const whole = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(whole, at);
  sink += whole[bytes - 1];
};

const pgProtocol: Reader = (chunks) => {
  const parser = new Parser();
  for (const chunk of chunks) parser.parse(chunk, (message) => { sink += message.length; });
};

const rows: Array<[string, Reader]> = [
  ['FrameReader, assembled', assembled],
  ['FrameReader, streamed (CopyData)', streamed],
  ['pg-protocol Parser', pgProtocol],
  ['floor: one copy into fresh memory', floor],
];

/**
 * ms per MiB for every reader at one size, the median over `runs`. The
 * readers take turns within each run, so that whether freed memory is
 * reused or fresh pages are faulted in falls alike on all of them.
 */
function msPerMiB(mib: number): number[] {
  const chunks = chunkedFrame('d', mib * MiB);
  for (const [, read] of rows) read(chunks); // warm-up
  const times = rows.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    rows.forEach(([, read], r) => {
      const t0 = process.hrtime.bigint();
      read(chunks);
      times[r].push(Number(process.hrtime.bigint() - t0) / 1e6 / mib);
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

const cell = (s: string) => s.padStart(10);
const table = sizes.map(msPerMiB);
console.log(`one frame in ${CHUNK / 1024} KiB chunks: ms per MiB (median of ${runs})`);
console.log(`${'reader'.padEnd(34)}${sizes.map((s) => cell(`${s} MiB`)).join('')}`);
rows.forEach(([name], r) => console.log(`${name.padEnd(34)}${table.map((col) => cell(col[r].toFixed(2))).join('')}`));
if (sink < 0) console.log(sink);
