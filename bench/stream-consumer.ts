// A streaming consumer for the throughput bench: logs in with the pg client
// (SCRAM and all), then takes the socket over and sends one simple Query,
// counting the bytes and frames that come back without decoding or keeping
// rows, until ReadyForQuery. The client's cost per byte is a few integer
// reads, so it does not hide the proxy's (pg's row parser would).
import pg from 'pg';
import type { Socket } from 'node:net';

export interface StreamRun {
  bytes: number;
  seconds: number;
  /** DataRow ('D') plus CopyData ('d') frames: the rows received. */
  rows: number;
}

/** Runs `sql` on a fresh connection; the connection is closed after. */
export async function streamOnce(config: pg.ClientConfig, sql: string): Promise<StreamRun> {
  const client = new pg.Client(config);
  client.on('error', () => {}); // the socket is ours after login and is destroyed at the end
  await client.connect();
  const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  socket.removeAllListeners('data'); // pg's parser steps aside
  const text = Buffer.from(sql + '\0');
  const query = Buffer.alloc(5 + text.length);
  query.write('Q', 0);
  query.writeInt32BE(4 + text.length, 1);
  text.copy(query, 5);
  try {
    return await new Promise<StreamRun>((resolve, reject) => {
      const scan = new FrameScanner();
      let bytes = 0;
      const start = process.hrtime.bigint();
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        scan.feed(chunk);
        if (scan.error) reject(new Error(`${sql.slice(0, 60)}…: ${scan.error}`));
        else if (scan.ready) resolve({ bytes, seconds: Number(process.hrtime.bigint() - start) / 1e9, rows: scan.rows });
      });
      socket.once('close', () => reject(new Error('connection closed before ReadyForQuery')));
      socket.write(query);
    });
  } finally {
    socket.destroy();
  }
}

/** Walks backend frames (type byte, int32 length) across chunk boundaries; keeps only ErrorResponse text. */
class FrameScanner {
  rows = 0;
  ready = false;
  error?: string;
  private header = Buffer.alloc(5);
  private headerBytes = 0;
  private type = 0;
  private remaining = 0;
  private errorBody: Buffer[] = [];

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.type === 0x45 /* E */) this.errorBody.push(chunk.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.frameDone();
        continue;
      }
      this.header[this.headerBytes++] = chunk[i++];
      if (this.headerBytes < 5) continue;
      this.headerBytes = 0;
      this.type = this.header[0];
      this.remaining = this.header.readInt32BE(1) - 4;
      if (this.remaining === 0) this.frameDone();
    }
  }

  private frameDone(): void {
    if (this.type === 0x44 /* D */ || this.type === 0x64 /* d */) this.rows++;
    else if (this.type === 0x5a /* Z */) this.ready = true;
    else if (this.type === 0x45) {
      // Fields are a code byte and a C string each; M is the message.
      const body = Buffer.concat(this.errorBody).toString('utf8');
      this.error ??= body.split('\0').find((f) => f.startsWith('M'))?.slice(1) ?? body;
    }
  }
}
