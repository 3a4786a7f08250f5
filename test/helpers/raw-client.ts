// A minimal raw protocol client for tests that need exact bytes: plaintext
// startup (the harness runs tls.mode prefer), SCRAM with pgveil's own client
// exchange, then arbitrary frames and a reader of backend messages.
// RawConnection, the frame-level reading and writing over any stream, is
// shared with RawTlsClient (raw-tls-client.ts).
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ScramClientExchange } from '../../src/auth/scram-client.js';

export interface BackendMessage { type: string; body: Buffer }

/** Raw frames written to, and backend messages read from, a connected stream. */
export class RawConnection<S extends Duplex = Duplex> {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  protected constructor(readonly socket: S) {
    socket.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => {});
  }

  private wake(): void { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }

  send(...frames: Buffer[]): void { this.socket.write(Buffer.concat(frames)); }

  /** Reads `n` raw bytes (for the one-byte SSL/GSS answers). */
  async bytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.closed || Date.now() > deadline) throw new Error(`connection closed after ${this.buf.length} bytes`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The next backend message, or undefined when the connection closed. */
  async message(timeoutMs = 5000): Promise<BackendMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const msg = { type: String.fromCharCode(this.buf[0]), body: Buffer.from(this.buf.subarray(5, len + 1)) };
          this.buf = this.buf.subarray(len + 1);
          return msg;
        }
      }
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error('timed out waiting for a backend message');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }

  /** Messages up to and including the next ReadyForQuery (or close). */
  async untilReady(): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const m = await this.message();
      if (!m) return out;
      out.push(m);
      if (m.type === 'Z') return out;
    }
  }

  close(): void { this.socket.destroy(); }
}

/** Plaintext TCP to the proxy. */
export class RawClient extends RawConnection<net.Socket> {
  private constructor(socket: net.Socket) { super(socket); }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Startup + SCRAM; resolves after the first ReadyForQuery. */
  async login(user: string, password: string, database = 'analytics'): Promise<BackendMessage[]> {
    this.send(startupPacket({ user, database }));
    const sasl = await this.message();
    if (sasl?.type !== 'R' || sasl.body.readInt32BE(0) !== 10) throw new Error('expected AuthenticationSASL');
    const mechanisms = sasl.body.subarray(4).toString().split('\0').filter(Boolean);
    const scram = new ScramClientExchange(password, { mechanisms });
    const first = scram.clientFirst();
    this.send(frame('p', Buffer.concat([Buffer.from(scram.mechanism + '\0'), int32(first.length), first])));
    const cont = await this.message();
    if (cont?.type !== 'R') throw new Error(`expected SASLContinue, got ${cont?.type} ${cont?.body.toString()}`);
    this.send(frame('p', scram.serverFirst(cont.body.subarray(4))));
    const fin = await this.message();
    if (fin?.type !== 'R') throw new Error(`expected SASLFinal, got ${fin?.type} ${fin?.body.toString()}`);
    scram.serverFinal(fin.body.subarray(4));
    return this.untilReady();
  }
}

export const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n | 0); return b; };
export const int16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
export const cstr = (s: string) => Buffer.from(s + '\0');

export function frame(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

export function startupPacket(params: Record<string, string>, version = 196608): Buffer {
  const body = Buffer.concat([int32(version), ...Object.entries(params).map(([k, v]) => cstr(k + '\0' + v).subarray(0)), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export const msg = {
  query: (sql: string) => frame('Q', cstr(sql)),
  parse: (name: string, sql: string) => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)])),
  bind: (portal: string, stmt: string) => frame('B', Buffer.concat([cstr(portal), cstr(stmt), int16(0), int16(0), int16(0)])),
  execute: (portal: string) => frame('E', Buffer.concat([cstr(portal), int32(0)])),
  describePortal: (portal: string) => frame('D', Buffer.concat([Buffer.from('P'), cstr(portal)])),
  sync: () => frame('S'),
  terminate: () => frame('X'),
};

/** The SQLSTATE of an ErrorResponse body. */
export function sqlstate(m: BackendMessage | undefined): string | undefined {
  if (!m || m.type !== 'E') return undefined;
  const s = m.body.toString();
  const i = s.indexOf('\0C');
  return i === -1 ? undefined : s.slice(i + 2, i + 7);
}

/**
 * A backend message as two answers to the same statement are compared
 * (upstream statement reuse's differential tests): an ErrorResponse or
 * notice without its position (P) and the server's source location (F, L,
 * R — a statement refused in Bind rather than in a Query names
 * exec_bind_message), which may differ; every other message as bytes.
 */
export function comparableAnswer(m: BackendMessage): string {
  if (m.type !== 'E' && m.type !== 'N') return `${m.type}:${m.body.toString('hex')}`;
  return `${m.type}:${m.body.toString('utf8').split('\0').filter((f) => f && !/^[PFLR]/.test(f)).join('|')}`;
}
