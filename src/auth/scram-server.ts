// Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677,
// channel binding tls-server-end-point per RFC 5929), with PostgreSQL's
// choices (auth-scram.c): the SCRAM user name is ignored (the startup
// packet's user is authoritative), authzid and the m= extension are refused,
// and every error is FATAL with the SQLSTATE PostgreSQL uses.
//
// Messages are handled as latin1 strings so that every byte survives as is
// into the AuthMessage, whatever encoding the client used.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { PgError, SqlState } from '../errors.js';
import { supportsChannelBinding, tlsServerEndPointHash, TLS_SERVER_END_POINT } from './channel-binding.js';
import { decodeBase64, hmac, isFakeVerifier, sha256, SCRAM_KEY_LEN, xor, type ScramVerifier } from './scram-verifier.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

/** Same length as PostgreSQL's server nonce (18 random bytes, base64). */
const NONCE_BYTES = 18;

/**
 * The SASL mechanisms to offer, best first. -PLUS only over TLS, and (when
 * the certificate is given) only if channel binding can be computed for it.
 */
export function scramMechanisms(tls: boolean, serverCertificate?: Buffer): string[] {
  const plus = tls && (serverCertificate === undefined || supportsChannelBinding(serverCertificate));
  return plus ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256];
}

export interface ScramServerOptions {
  /** The user name from the startup packet, for the error message. */
  user: string;
  verifier: ScramVerifier;
  /** The server's DER certificate: present iff the client connection is TLS. */
  serverCertificate?: Buffer;
}

function fatal(code: string, message: string, detail?: string): PgError {
  return new PgError(code, message, { detail, severity: 'FATAL' });
}

function malformed(detail: string): PgError {
  return fatal(SqlState.ProtocolViolation, 'malformed SCRAM message', detail);
}

// Client-controlled text in details is shown the way PostgreSQL does:
// printable ASCII as is, anything else as a hex byte or '?'.
function showChar(ch: string | undefined): string {
  if (ch === undefined) return 'end of string';
  const c = ch.charCodeAt(0);
  return c >= 0x21 && c <= 0x7e ? `"${ch}"` : `"0x${c.toString(16).padStart(2, '0')}"`;
}

function showStr(s: string): string {
  return s.slice(0, 30).replace(/[^\x20-\x7e]/g, '?');
}

/** A cursor over one SCRAM message: comma-separated `a=value` attributes. */
class AttrReader {
  pos = 0;
  constructor(readonly text: string) {}

  get atEnd(): boolean { return this.pos >= this.text.length; }
  peek(): string | undefined { return this.text[this.pos]; }

  private value(): string {
    const comma = this.text.indexOf(',', this.pos);
    const end = comma === -1 ? this.text.length : comma;
    const value = this.text.slice(this.pos, end);
    this.pos = comma === -1 ? end : end + 1;
    if (comma !== -1 && this.atEnd) throw malformed('Unexpected comma at the end of the message.');
    return value;
  }

  /** Reads `attr=value`, which must come next. */
  attr(attr: string): string {
    const found = this.peek();
    if (found !== attr) throw malformed(`Expected attribute "${attr}" but found ${showChar(found)}.`);
    if (this.text[this.pos + 1] !== '=') throw malformed(`Expected character "=" for attribute "${attr}".`);
    this.pos += 2;
    return this.value();
  }

  /** Reads any `x=value` (x a letter). */
  any(): { attr: string; value: string } {
    const attr = this.peek();
    if (attr === undefined) throw malformed('Attribute expected, but found end of string.');
    if (!/[A-Za-z]/.test(attr)) throw malformed(`Attribute expected, but found invalid character ${showChar(attr)}.`);
    if (this.text[this.pos + 1] !== '=') throw malformed(`Expected character "=" for attribute "${attr}".`);
    this.pos += 2;
    return { attr, value: this.value() };
  }
}

/** RFC 5802 printable: %x21-2B / %x2D-7E, at least one. */
function isPrintableNonce(s: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]+$/.test(s);
}

function messageText(data: Buffer): string {
  if (data.length === 0) throw malformed('The message is empty.');
  if (data.includes(0)) throw malformed('Message length does not match input length.');
  return data.toString('latin1');
}

type State = 'initial' | 'continue' | 'done' | 'failed';

export class ScramServerExchange {
  private state: State = 'initial';
  private plus = false;
  private cbindFlag = '';
  private clientNonce = '';
  private serverNonce = '';
  private clientFirstBare = '';
  private serverFirst = '';

  constructor(private readonly opts: ScramServerOptions) {}

  /** Handles SASLInitialResponse; returns the server-first-message. */
  start(mechanism: string, clientFirst: Buffer): Buffer {
    if (this.state !== 'initial') throw fatal(SqlState.ProtocolViolation, 'SCRAM exchange already started');
    return this.guard(() => {
      const offered = scramMechanisms(this.opts.serverCertificate !== undefined, this.opts.serverCertificate);
      if (!offered.includes(mechanism)) {
        throw fatal(SqlState.ProtocolViolation, 'client selected an invalid SASL authentication mechanism');
      }
      this.plus = mechanism === SCRAM_SHA_256_PLUS;
      this.readClientFirst(messageText(clientFirst));
      this.serverNonce = randomBytes(NONCE_BYTES).toString('base64');
      const { salt, iterations } = this.opts.verifier;
      this.serverFirst = `r=${this.clientNonce}${this.serverNonce},s=${salt.toString('base64')},i=${iterations}`;
      this.state = 'continue';
      return Buffer.from(this.serverFirst, 'latin1');
    });
  }

  /** Handles the SASLResponse with the client-final-message; returns the server-final-message. */
  finish(clientFinal: Buffer): Buffer {
    if (this.state !== 'continue') throw fatal(SqlState.ProtocolViolation, 'unexpected SCRAM message');
    return this.guard(() => {
      const text = messageText(clientFinal);
      const { withoutProof, nonce, proof } = this.readClientFinal(text);
      if (nonce !== this.clientNonce + this.serverNonce) {
        throw fatal(SqlState.ProtocolViolation, 'invalid SCRAM response', 'Nonce does not match.');
      }
      const { storedKey, serverKey } = this.opts.verifier;
      const authMessage = Buffer.from(`${this.clientFirstBare},${this.serverFirst},${withoutProof}`, 'latin1');
      const clientKey = xor(proof, hmac(storedKey, authMessage));
      const proofOk = timingSafeEqual(sha256(clientKey), storedKey);
      if (!proofOk || isFakeVerifier(this.opts.verifier)) {
        throw fatal(SqlState.InvalidPassword, `password authentication failed for user "${this.opts.user}"`);
      }
      this.state = 'done';
      return Buffer.from(`v=${hmac(serverKey, authMessage).toString('base64')}`, 'latin1');
    });
  }

  /** True once the client has proved it knows the password. */
  get succeeded(): boolean { return this.state === 'done'; }

  private guard<T>(step: () => T): T {
    try {
      return step();
    } catch (err) {
      this.state = 'failed';
      throw err;
    }
  }

  // gs2-header client-first-message-bare (RFC 5802 §7).
  private readClientFirst(text: string): void {
    const r = new AttrReader(text);
    this.cbindFlag = r.peek() ?? '';
    switch (this.cbindFlag) {
      case 'n':
      case 'y':
        if (this.plus) {
          throw malformed('The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data.');
        }
        // 'y': the client could bind but thinks we cannot. Over TLS we can,
        // so someone removed -PLUS from our offer: a downgrade.
        if (this.cbindFlag === 'y' && this.opts.serverCertificate !== undefined) {
          throw fatal(SqlState.InvalidAuthorizationSpecification, 'SCRAM channel binding negotiation error',
            'The client supports SCRAM channel binding but thinks the server does not.  However, this server does support channel binding.');
        }
        r.pos++;
        if (r.peek() !== ',') throw malformed(`Comma expected, but found character ${showChar(r.peek())}.`);
        r.pos++;
        break;
      case 'p': {
        if (!this.plus) {
          throw malformed('The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.');
        }
        const type = r.attr('p');
        if (type !== TLS_SERVER_END_POINT) {
          throw fatal(SqlState.ProtocolViolation, `unsupported SCRAM channel-binding type "${showStr(type)}"`);
        }
        break;
      }
      default:
        throw malformed(`Unexpected channel-binding flag ${showChar(r.peek())}.`);
    }
    if (r.peek() === 'a') {
      throw fatal(SqlState.FeatureNotSupported, 'client uses authorization identity, but it is not supported');
    }
    if (r.peek() !== ',') throw malformed(`Unexpected attribute ${showChar(r.peek())} in client-first-message.`);
    r.pos++;

    this.clientFirstBare = text.slice(r.pos);
    if (r.peek() === 'm') throw fatal(SqlState.FeatureNotSupported, 'client requires an unsupported SCRAM extension');
    r.attr('n'); // ignored: the startup packet names the user
    const nonce = r.attr('r');
    if (!isPrintableNonce(nonce)) throw malformed('client nonce contains invalid characters');
    this.clientNonce = nonce;
    while (!r.atEnd) r.any(); // extensions are ignored (RFC 5802 §7)
  }

  // channel-binding "," nonce ["," extensions] "," proof
  private readClientFinal(text: string): { withoutProof: string; nonce: string; proof: Buffer } {
    const r = new AttrReader(text);
    const binding = r.attr('c');
    if (this.plus) {
      const cert = this.opts.serverCertificate!;
      const expected = Buffer.concat([Buffer.from(`p=${TLS_SERVER_END_POINT},,`), tlsServerEndPointHash(cert)]).toString('base64');
      if (binding !== expected) throw fatal(SqlState.InvalidAuthorizationSpecification, 'SCRAM channel binding check failed');
    } else if (!(binding === 'biws' && this.cbindFlag === 'n') && !(binding === 'eSws' && this.cbindFlag === 'y')) {
      // "biws" / "eSws" are base64 of "n,," / "y,,": they must repeat the first message's flag.
      throw fatal(SqlState.ProtocolViolation, 'unexpected SCRAM channel-binding attribute in client-final-message');
    }
    const nonce = r.attr('r');
    let proofAt: number;
    let attr: { attr: string; value: string };
    do {
      proofAt = r.pos - 1;
      attr = r.any();
    } while (attr.attr !== 'p');
    const proof = decodeBase64(attr.value);
    if (!proof || proof.length !== SCRAM_KEY_LEN) throw malformed('Malformed proof in client-final-message.');
    if (!r.atEnd) throw malformed('Garbage found at the end of client-final-message.');
    return { withoutProof: text.slice(0, proofAt), nonce, proof };
  }
}
