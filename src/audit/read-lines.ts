// Streams a file's lines as raw bytes (hashes are over bytes, not decoded
// text), saying whether each ended with a newline: the last one may not.
import { createReadStream } from 'node:fs';

export interface RawLine {
  /** 1-based line number. */
  no: number;
  bytes: Buffer;
  /** False for a last line without its newline. */
  complete: boolean;
}

export async function* readLines(path: string): AsyncGenerator<RawLine> {
  let no = 0;
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    let buf: Buffer = rest.length ? Buffer.concat([rest, chunk as Buffer]) : chunk as Buffer;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      yield { no: ++no, bytes: buf.subarray(0, nl), complete: true };
      buf = buf.subarray(nl + 1);
    }
    rest = Buffer.from(buf); // detach from the chunk so it can be freed
  }
  if (rest.length) yield { no: ++no, bytes: rest, complete: false };
}
