// Reads the two ends of an audit file without reading it whole: its first line
// (the start record) and its last complete line plus any torn bytes after it
// (what a crash mid-write leaves). Enough to continue the chain at open.
import { open } from 'node:fs/promises';

const CHUNK = 64 * 1024;
const NL = 0x0a;

export interface FileEnds {
  size: number;
  /** The first line without its newline, or null when the file holds no complete line. */
  first: string | null;
  /** The last complete line without its newline, or null when there is none. */
  last: string | null;
  /** Bytes after the last newline (a line cut short), or null when the file ends with a newline. */
  torn: Buffer | null;
}

export async function readFileEnds(path: string): Promise<FileEnds> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const read = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    };
    // Walk back from the end, a chunk at a time, until a newline before the last one (or the start) bounds the last line.
    let tail = Buffer.alloc(0);
    let start = size;
    const bounded = (): boolean => {
      const lastNl = tail.lastIndexOf(NL);
      return lastNl > 0 && tail.subarray(0, lastNl).includes(NL);
    };
    while (start > 0 && !bounded()) {
      const from = Math.max(0, start - CHUNK);
      tail = Buffer.concat([await read(from, start - from), tail]);
      start = from;
    }
    const lastNl = tail.lastIndexOf(NL);
    if (lastNl < 0) return { size, first: null, last: null, torn: size > 0 ? tail : null };
    const torn = lastNl === tail.length - 1 ? null : tail.subarray(lastNl + 1);
    const before = tail.subarray(0, lastNl).lastIndexOf(NL);
    const last = tail.subarray(before + 1, lastNl).toString('utf8');
    const first = start === 0 && before < 0 ? last : await firstLine(read, size);
    return { size, first, last, torn };
  } finally {
    await handle.close();
  }
}

async function firstLine(read: (position: number, length: number) => Promise<Buffer>, size: number): Promise<string | null> {
  let head = Buffer.alloc(0);
  while (head.length < size) {
    head = Buffer.concat([head, await read(head.length, Math.min(CHUNK, size - head.length))]);
    const nl = head.indexOf(NL);
    if (nl >= 0) return head.subarray(0, nl).toString('utf8');
  }
  return null;
}
