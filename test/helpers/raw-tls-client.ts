// RawClient's counterpart over TLS: SSLRequest, the TLS handshake, then the
// same frame-level reads (RawConnection, raw-client.ts). For tests that check what pgveil does with exact
// SCRAM bytes on an encrypted connection (channel-binding flag and data),
// which no well-behaved driver will send on purpose.
import net from 'node:net';
import tls from 'node:tls';
import { ScramClientExchange } from '../../src/auth/scram-client.js';
import { RawConnection, frame, int32, startupPacket, type BackendMessage } from './raw-client.js';

const SSL_REQUEST = Buffer.concat([int32(8), int32(80877103)]);

export interface ScramOptions {
  database?: string;
  /** Rewrites the offered mechanisms before choosing: a client that believes -PLUS was stripped sends flag "y". */
  filterMechanisms?: (offered: string[]) => string[];
  /** Binds to this certificate instead of the one the server presented (what a man in the middle's victim would do). */
  certificateOverride?: Buffer;
}

export interface ScramAttempt {
  /** Mechanisms the server offered in AuthenticationSASL (empty when it answered otherwise). */
  offered: string[];
  /** The mechanism named in our SASLInitialResponse. */
  mechanism?: string;
  /** Everything the server sent after the StartupMessage, up to ReadyForQuery, the first ErrorResponse, or close. */
  messages: BackendMessage[];
  /** The ErrorResponse that ended the attempt. */
  error?: BackendMessage;
}

export class RawTlsClient extends RawConnection<tls.TLSSocket> {
  private constructor(socket: tls.TLSSocket) { super(socket); }

  /** TCP, SSLRequest, and the handshake; without `ca` the server certificate is not checked. */
  static connect(port: number, opts: { ca?: string; timeoutMs?: number } = {}): Promise<RawTlsClient> {
    return new Promise((resolve, reject) => {
      const raw = net.connect(port, '127.0.0.1');
      const timer = setTimeout(() => { raw.destroy(); reject(new Error('TLS connect timed out')); }, opts.timeoutMs ?? 5000);
      const fail = (err: Error) => { clearTimeout(timer); raw.destroy(); reject(err); };
      raw.once('error', fail);
      raw.once('connect', () => raw.write(SSL_REQUEST));
      raw.once('data', (answer: Buffer) => {
        if (answer.length !== 1 || answer[0] !== 0x53) { fail(new Error(`server refused TLS (answered ${JSON.stringify(answer.toString('latin1'))})`)); return; }
        raw.removeListener('error', fail);
        const secure = tls.connect({ socket: raw, ca: opts.ca, rejectUnauthorized: opts.ca !== undefined, servername: 'localhost' });
        secure.once('error', fail);
        secure.once('secureConnect', () => {
          clearTimeout(timer);
          secure.removeListener('error', fail);
          resolve(new RawTlsClient(secure));
        });
      });
    });
  }

  /** DER of the certificate the server presented. */
  get peerCertificate(): Buffer { return this.socket.getPeerCertificate().raw; }

  /**
   * StartupMessage and a SCRAM exchange with pgveil's own client exchange,
   * bent by `opts`. Never throws on the server's refusal: the attempt says
   * where it ended.
   */
  async scram(user: string, password: string, opts: ScramOptions = {}): Promise<ScramAttempt> {
    const attempt: ScramAttempt = { offered: [], messages: [] };
    const next = async (): Promise<BackendMessage | undefined> => {
      const m = await this.message();
      if (m) attempt.messages.push(m);
      if (m?.type === 'E') attempt.error = m;
      return m;
    };
    this.send(startupPacket({ user, database: opts.database ?? 'analytics' }));
    const sasl = await next();
    if (sasl?.type !== 'R' || sasl.body.readInt32BE(0) !== 10) return attempt;
    attempt.offered = sasl.body.subarray(4).toString('utf8').split('\0').filter(Boolean);
    const exchange = new ScramClientExchange(password, {
      mechanisms: opts.filterMechanisms ? opts.filterMechanisms(attempt.offered) : attempt.offered,
      serverCertificate: opts.certificateOverride ?? this.peerCertificate,
    });
    attempt.mechanism = exchange.mechanism;
    const first = exchange.clientFirst();
    this.send(frame('p', Buffer.concat([Buffer.from(exchange.mechanism + '\0'), int32(first.length), first])));
    const cont = await next();
    if (cont?.type !== 'R' || cont.body.readInt32BE(0) !== 11) return attempt;
    this.send(frame('p', exchange.serverFirst(cont.body.subarray(4))));
    const fin = await next();
    if (fin?.type !== 'R' || fin.body.readInt32BE(0) !== 12) return attempt;
    exchange.serverFinal(fin.body.subarray(4));
    for (;;) {
      const m = await next();
      if (!m || m.type === 'E' || m.type === 'Z') return attempt;
    }
  }
}

/** One field of an ErrorResponse or NoticeResponse body ('C' SQLSTATE, 'M' message, 'S' severity, …). */
export function errorField(m: BackendMessage | undefined, code: string): string | undefined {
  if (!m) return undefined;
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const end = m.body.indexOf(0, i + 1);
    if (String.fromCharCode(m.body[i]) === code) return m.body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return undefined;
}
