// Logs in to a PostgreSQL server over a raw socket with ScramClientExchange
// (pg-protocol serialises the frontend messages and parses the replies), so
// the tests see exactly what our client exchange does against a real server.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { ScramClientExchange } from '../../src/auth/scram-client.js';

type AnyMessage = BackendMessage & { mechanisms?: string[]; data?: string; code?: string; message?: string };

export interface LoginResult {
  ok: boolean;
  mechanism?: string;
  /** SQLSTATE and message of the server's ErrorResponse, or a client-side error message. */
  code?: string;
  message?: string;
}

export interface LoginOptions {
  port: number;
  user: string;
  password: string;
  database?: string;
  tls?: boolean;
  /** Rewrites the server's mechanism list before choosing (to simulate a stripped offer). */
  filterMechanisms?: (offered: string[]) => string[];
  /** Pretend the server presented this certificate (to break channel binding on purpose). */
  certificateOverride?: Buffer;
}

export async function rawLogin(opts: LoginOptions): Promise<LoginResult> {
  let socket: Socket | TLSSocket = netConnect(opts.port, '127.0.0.1');
  await once(socket, 'connect');
  let certificate: Buffer | undefined;
  if (opts.tls) {
    socket.write(serialize.requestSsl());
    const [answer] = (await once(socket, 'data')) as [Buffer];
    if (answer.toString('latin1', 0, 1) !== 'S') throw new Error('server refused TLS');
    const tlsSocket = tlsConnect({ socket, rejectUnauthorized: false });
    await once(tlsSocket, 'secureConnect');
    certificate = tlsSocket.getPeerCertificate().raw;
    socket = tlsSocket;
  }
  const messages: AnyMessage[] = [];
  let wake: (() => void) | undefined;
  const parser = new Parser();
  socket.on('data', (d: Buffer) => parser.parse(d, (m) => { messages.push(m as AnyMessage); wake?.(); }));
  const next = async (): Promise<AnyMessage> => {
    while (messages.length === 0) await new Promise<void>((r) => { wake = r; });
    return messages.shift()!;
  };
  const fail = (m: AnyMessage): LoginResult => ({ ok: false, code: m.code, message: m.message });

  try {
    socket.write(serialize.startup({ user: opts.user, database: opts.database ?? 'postgres' }));
    let m = await next();
    if (m.name === 'error') return fail(m);
    if (m.name !== 'authenticationSASL') throw new Error(`unexpected ${m.name}`);
    const offered = opts.filterMechanisms ? opts.filterMechanisms(m.mechanisms ?? []) : m.mechanisms ?? [];
    const client = new ScramClientExchange(opts.password, {
      serverCertificate: opts.certificateOverride ?? certificate,
      mechanisms: offered,
    });
    socket.write(serialize.sendSASLInitialResponseMessage(client.mechanism, client.clientFirst().toString('latin1')));
    m = await next();
    if (m.name === 'error') return { ...fail(m), mechanism: client.mechanism };
    const clientFinal = client.serverFirst(Buffer.from(m.data ?? '', 'utf8'));
    socket.write(serialize.sendSCRAMClientFinalMessage(clientFinal.toString('latin1')));
    m = await next();
    if (m.name === 'error') return { ...fail(m), mechanism: client.mechanism };
    client.serverFinal(Buffer.from(m.data ?? '', 'utf8'));
    m = await next();
    if (m.name !== 'authenticationOk') throw new Error(`unexpected ${m.name}`);
    do m = await next(); while (m.name !== 'readyForQuery' && m.name !== 'error');
    if (m.name === 'error') return fail(m);
    socket.write(serialize.end());
    return { ok: true, mechanism: client.mechanism };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  } finally {
    socket.destroy();
  }
}
