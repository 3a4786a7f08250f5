// A minimal PostgreSQL front end for tests: SSLRequest (optional TLS),
// StartupMessage, the SASL exchange run by ScramServerExchange, then
// ReadyForQuery and an EmptyQueryResponse for every Query. Enough for real
// clients (libpq's psql, node-postgres) to authenticate against pgveil's
// server exchange. Encoders are written naively here on purpose.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PgError } from '../../src/errors.js';
import { scramMechanisms, ScramServerExchange } from '../../src/auth/scram-server.js';
import type { ScramVerifier } from '../../src/auth/scram-verifier.js';

export interface AuthOutcome { user: string; mechanism?: string; ok: boolean; code?: string; message?: string }

export interface FakeServer {
  port: number;
  outcomes: AuthOutcome[];
  close(): Promise<void>;
}

export interface FakeServerOptions {
  verifierFor(user: string): ScramVerifier;
  tls?: { certPem: string; keyPem: string };
  /** Offer these mechanisms instead of scramMechanisms() (to simulate a stripped offer). */
  mechanisms?: string[];
}

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

const cstr = (s: string) => Buffer.from(s + '\0', 'utf8');

function authSasl(mechanisms: string[]): Buffer {
  return msg('R', Buffer.concat([int32(10), ...mechanisms.map(cstr), Buffer.from([0])]));
}

function errorResponse(err: PgError): Buffer {
  const fields = [Buffer.from('S'), cstr(err.severity), Buffer.from('V'), cstr(err.severity), Buffer.from('C'), cstr(err.code), Buffer.from('M'), cstr(err.message)];
  if (err.detail) fields.push(Buffer.from('D'), cstr(err.detail));
  return msg('E', Buffer.concat([...fields, Buffer.from([0])]));
}

/** Buffered reads from a stream that can be swapped (for the TLS upgrade). */
class Reader {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private stream!: Duplex;

  constructor(stream: Duplex) { this.attach(stream); }

  attach(stream: Duplex): void {
    this.stream = stream;
    stream.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.wake?.(); });
    stream.on('end', () => { this.ended = true; this.wake?.(); });
    stream.on('error', () => { this.ended = true; this.wake?.(); });
  }

  detach(): void { this.stream.removeAllListeners('data'); this.stream.removeAllListeners('end'); }

  async bytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error('client went away');
      await new Promise<void>((r) => { this.wake = r; });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async untyped(): Promise<Buffer> {
    const len = (await this.bytes(4)).readInt32BE(0);
    return this.bytes(len - 4);
  }

  async typed(): Promise<{ type: string; body: Buffer }> {
    const head = await this.bytes(5);
    return { type: head.toString('latin1', 0, 1), body: await this.bytes(head.readInt32BE(1) - 4) };
  }
}

async function serve(socket: Socket, opts: FakeServerOptions, outcomes: AuthOutcome[]): Promise<void> {
  let stream: Duplex = socket;
  const reader = new Reader(socket);
  let certificate: Buffer | undefined;
  let startup = await reader.untyped();
  for (;;) {
    const code = startup.readInt32BE(0);
    if (code === 80877103 && opts.tls) { // SSLRequest
      reader.detach();
      socket.write('S');
      const tlsSocket = new TLSSocket(socket, { isServer: true, cert: opts.tls.certPem, key: opts.tls.keyPem });
      reader.attach(tlsSocket);
      stream = tlsSocket;
      certificate = Buffer.from(new X509Certificate(opts.tls.certPem).raw);
    } else if (code === 80877103 || code === 80877104) { // SSLRequest without TLS, GSSENCRequest
      socket.write('N');
    } else {
      break;
    }
    startup = await reader.untyped();
  }
  const params = startup.subarray(4).toString('utf8').split('\0');
  const user = params[params.indexOf('user') + 1];
  const outcome: AuthOutcome = { user, ok: false };
  outcomes.push(outcome);
  const exchange = new ScramServerExchange({ user, verifier: opts.verifierFor(user), serverCertificate: certificate });
  try {
    stream.write(authSasl(opts.mechanisms ?? scramMechanisms(certificate !== undefined, certificate)));
    const initial = await reader.typed();
    const zero = initial.body.indexOf(0);
    const mechanism = initial.body.toString('utf8', 0, zero);
    outcome.mechanism = mechanism;
    const dataLen = initial.body.readInt32BE(zero + 1);
    const serverFirst = exchange.start(mechanism, initial.body.subarray(zero + 5, zero + 5 + Math.max(0, dataLen)));
    stream.write(msg('R', Buffer.concat([int32(11), serverFirst])));
    const response = await reader.typed();
    const serverFinal = exchange.finish(response.body);
    stream.write(msg('R', Buffer.concat([int32(12), serverFinal])));
    stream.write(msg('R', int32(0)));
    outcome.ok = true;
    stream.write(msg('S', Buffer.concat([cstr('server_version'), cstr('18.0')])));
    stream.write(msg('S', Buffer.concat([cstr('client_encoding'), cstr('UTF8')])));
    stream.write(msg('K', Buffer.concat([int32(1), int32(2)])));
    stream.write(msg('Z', Buffer.from('I')));
    for (;;) {
      const m = await reader.typed();
      if (m.type === 'X') break;
      if (m.type === 'Q') stream.write(Buffer.concat([msg('I', Buffer.alloc(0)), msg('Z', Buffer.from('I'))]));
    }
  } catch (err) {
    if (err instanceof PgError) {
      outcome.code = err.code;
      outcome.message = err.message;
      stream.write(errorResponse(err));
    }
  }
  stream.end();
}

export async function startFakeServer(opts: FakeServerOptions): Promise<FakeServer> {
  const outcomes: AuthOutcome[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serve(socket, opts, outcomes).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    outcomes,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
