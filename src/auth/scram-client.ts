// Client side of SCRAM-SHA-256(-PLUS) for pgveil's upstream connection, as
// libpq does it: empty SCRAM user name (the server uses the startup user),
// -PLUS with tls-server-end-point when offered over TLS, flag "y" when we
// are on TLS but the server offered no -PLUS, "n" without TLS. Also the
// legacy md5 password message.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { tlsServerEndPointHash, TLS_SERVER_END_POINT } from './channel-binding.js';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS } from './scram-server.js';
import { decodeBase64, hmac, saltedPassword, scramKeys, xor } from './scram-verifier.js';

const NONCE_BYTES = 18;

export interface ScramClientOptions {
  /** The upstream server's DER certificate: present iff the connection is TLS. */
  serverCertificate?: Buffer;
  /** The mechanisms from AuthenticationSASL; the exchange picks with choose(). Default: what a TLS-capable PostgreSQL offers. */
  mechanisms?: string[];
}

function scramError(detail: string): Error {
  return new Error(`SCRAM authentication with the upstream server failed: ${detail}`);
}

export class ScramClientExchange {
  /** The mechanism to name in SASLInitialResponse. Throws when the server offers no SCRAM-SHA-256. */
  static choose(mechanisms: string[], tls: boolean): string {
    if (tls && mechanisms.includes(SCRAM_SHA_256_PLUS)) return SCRAM_SHA_256_PLUS;
    if (mechanisms.includes(SCRAM_SHA_256)) return SCRAM_SHA_256;
    throw scramError(`the server offers no supported SASL mechanism (${mechanisms.join(', ') || 'none'})`);
  }

  readonly mechanism: string;
  private readonly gs2Header: string;
  private readonly clientNonce = randomBytes(NONCE_BYTES).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;
  private step: 'first' | 'server-first' | 'server-final' | 'done' = 'first';

  constructor(private readonly password: string, private readonly opts: ScramClientOptions = {}) {
    const tls = opts.serverCertificate !== undefined;
    const offered = opts.mechanisms ?? (tls ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256]);
    this.mechanism = ScramClientExchange.choose(offered, tls);
    if (this.mechanism === SCRAM_SHA_256_PLUS) this.gs2Header = `p=${TLS_SERVER_END_POINT},,`;
    else this.gs2Header = tls ? 'y,,' : 'n,,';
  }

  /** The client-first-message (data of SASLInitialResponse). */
  clientFirst(): Buffer {
    if (this.step !== 'first') throw scramError('clientFirst() called twice');
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    this.step = 'server-first';
    return Buffer.from(this.gs2Header + this.clientFirstBare, 'latin1');
  }

  /** Takes the server-first-message (AuthenticationSASLContinue); returns the client-final-message. */
  serverFirst(data: Buffer): Buffer {
    if (this.step !== 'server-first') throw scramError('unexpected server-first-message');
    const serverFirst = data.toString('latin1');
    const attrs = new Map<string, string>();
    for (const part of serverFirst.split(',')) {
      const m = /^([A-Za-z])=(.*)$/s.exec(part);
      if (!m) throw scramError('malformed server-first-message');
      if (!attrs.has(m[1])) attrs.set(m[1], m[2]);
    }
    if (attrs.has('m')) throw scramError('the server requires an unsupported SCRAM extension');
    const nonce = attrs.get('r');
    const salt = decodeBase64(attrs.get('s') ?? '');
    const iterText = attrs.get('i') ?? '';
    const iterations = Number(iterText);
    if (!serverFirst.startsWith('r=') || nonce === undefined) throw scramError('malformed server-first-message (no nonce)');
    if (!nonce.startsWith(this.clientNonce) || nonce.length <= this.clientNonce.length) {
      throw scramError('the server nonce does not extend the client nonce');
    }
    if (!salt || salt.length === 0) throw scramError('malformed server-first-message (bad salt)');
    if (!/^[1-9][0-9]{0,9}$/.test(iterText) || iterations > 0x7fffffff) {
      throw scramError('malformed server-first-message (bad iteration count)');
    }

    const cbindData = this.mechanism === SCRAM_SHA_256_PLUS
      ? Buffer.concat([Buffer.from(this.gs2Header, 'latin1'), tlsServerEndPointHash(this.opts.serverCertificate!)])
      : Buffer.from(this.gs2Header, 'latin1');
    const withoutProof = `c=${cbindData.toString('base64')},r=${nonce}`;
    const authMessage = Buffer.from(`${this.clientFirstBare},${serverFirst},${withoutProof}`, 'latin1');
    const { clientKey, storedKey, serverKey } = scramKeys(saltedPassword(this.password, salt, iterations));
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    this.step = 'server-final';
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'latin1');
  }

  /** Takes the server-final-message (AuthenticationSASLFinal); throws unless the server proved it knows the verifier. */
  serverFinal(data: Buffer): void {
    if (this.step !== 'server-final' || !this.expectedServerSignature) throw scramError('unexpected server-final-message');
    const text = data.toString('latin1');
    const error = /^e=([^,]*)/.exec(text);
    if (error) throw scramError(`the server reported "${error[1].replace(/[^\x20-\x7e]/g, '?').slice(0, 100)}"`);
    const m = /^v=([^,]*)(,.*)?$/s.exec(text);
    const signature = m ? decodeBase64(m[1]) : null;
    if (!signature) throw scramError('malformed server-final-message');
    if (signature.length !== this.expectedServerSignature.length || !timingSafeEqual(signature, this.expectedServerSignature)) {
      throw scramError('invalid server signature');
    }
    this.step = 'done';
  }
}

/** The PasswordMessage for AuthenticationMD5Password: 'md5' + md5(md5(password + user) + salt), hex. */
export function md5PasswordMessage(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}
