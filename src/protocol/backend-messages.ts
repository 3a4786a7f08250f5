// Encoders for the backend messages pgveil itself sends to clients, and the
// one backend decoder it needs (error/notice fields). Fixed messages are
// built once.
import { PgError, SqlState } from '../errors.js';
import { AuthCode, Backend, TxStatus } from './codes.js';

function message(type: number, bodyLength: number): Buffer {
  const out = Buffer.allocUnsafe(5 + bodyLength);
  out[0] = type;
  out.writeInt32BE(4 + bodyLength, 1);
  return out;
}

export const sslAccepted = Buffer.from('S');
export const sslRefused = Buffer.from('N');

function authMessage(code: AuthCode, data?: Buffer): Buffer {
  const out = message(Backend.Authentication, 4 + (data?.length ?? 0));
  out.writeInt32BE(code, 5);
  data?.copy(out, 9);
  return out;
}

export const authenticationOk = authMessage(AuthCode.Ok);

export function writeAuthenticationSasl(mechanisms: string[]): Buffer {
  const list = Buffer.from(mechanisms.map((m) => m + '\0').join('') + '\0');
  return authMessage(AuthCode.SASL, list);
}

/** AuthenticationCleartextPassword: pgveil sends it only over TLS. */
export const authenticationCleartextPassword = authMessage(AuthCode.CleartextPassword);

export function writeAuthenticationSaslContinue(data: Buffer): Buffer {
  return authMessage(AuthCode.SASLContinue, data);
}

export function writeAuthenticationSaslFinal(data: Buffer): Buffer {
  return authMessage(AuthCode.SASLFinal, data);
}

export function writeBackendKeyData(processId: number, secretKey: number): Buffer {
  const out = message(Backend.BackendKeyData, 8);
  out.writeInt32BE(processId, 5);
  out.writeInt32BE(secretKey, 9);
  return out;
}

export function writeParameterStatus(name: string, value: string): Buffer {
  const body = Buffer.from(`${name}\0${value}\0`);
  const out = message(Backend.ParameterStatus, body.length);
  body.copy(out, 5);
  return out;
}

export const readyForQuery = {
  [TxStatus.Idle]: Buffer.from([Backend.ReadyForQuery, 0, 0, 0, 5, TxStatus.Idle]),
  [TxStatus.InBlock]: Buffer.from([Backend.ReadyForQuery, 0, 0, 0, 5, TxStatus.InBlock]),
  [TxStatus.Failed]: Buffer.from([Backend.ReadyForQuery, 0, 0, 0, 5, TxStatus.Failed]),
} as const;

export function writeNegotiateProtocolVersion(minor: number, unrecognised: string[]): Buffer {
  const names = Buffer.from(unrecognised.map((n) => n + '\0').join(''));
  const out = message(Backend.NegotiateProtocolVersion, 8 + names.length);
  out.writeInt32BE(minor, 5);
  out.writeInt32BE(unrecognised.length, 9);
  names.copy(out, 13);
  return out;
}

function fieldsMessage(type: number, err: PgError): Buffer {
  const parts: string[] = [];
  const add = (code: string, value: string | number | undefined) => {
    if (value !== undefined && value !== '') parts.push(code + String(value).replace(/\0/g, '') + '\0');
  };
  add('S', err.severity);
  add('V', err.severity);
  add('C', err.code);
  add('M', err.message);
  add('D', err.detail);
  add('H', err.hint);
  add('P', err.position);
  const body = Buffer.from(parts.join('') + '\0');
  const out = message(type, body.length);
  body.copy(out, 5);
  return out;
}

export function writeErrorResponse(err: PgError): Buffer {
  return fieldsMessage(Backend.ErrorResponse, err);
}

export function writeNoticeResponse(err: PgError): Buffer {
  return fieldsMessage(Backend.NoticeResponse, err);
}

/** Decodes the fields of an ErrorResponse/NoticeResponse body into code → value. */
export function readErrorFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = start;
  while (pos < end && buf[pos] !== 0) {
    const code = String.fromCharCode(buf[pos]);
    const nul = buf.indexOf(0, pos + 1);
    if (nul === -1 || nul >= end) break;
    fields.set(code, buf.toString('utf8', pos + 1, nul));
    pos = nul + 1;
  }
  return fields;
}

/** The first column of a DataRow as text (null → undefined). */
export function readDataRowFirstText(buf: Buffer, start: number, end: number): string | undefined {
  if (end - start < 6 || buf.readInt16BE(start) < 1) return undefined;
  const length = buf.readInt32BE(start + 2);
  if (length < 0 || start + 6 + length > end) return undefined;
  return buf.toString('utf8', start + 6, start + 6 + length);
}

/** A DataRow's columns as text. */
export function readDataRowTexts(buf: Buffer, start: number, end: number): Array<string | undefined> {
  const count = buf.readInt16BE(start);
  const columns: Array<string | undefined> = [];
  let pos = start + 2;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > end) throw new PgError(SqlState.ProtocolViolation, 'truncated DataRow');
    const length = buf.readInt32BE(pos);
    pos += 4;
    if (length < 0) { columns.push(undefined); continue; }
    if (pos + length > end) throw new PgError(SqlState.ProtocolViolation, 'truncated DataRow');
    columns.push(buf.toString('utf8', pos, pos + length));
    pos += length;
  }
  return columns;
}

/** An Authentication request: its code and the data after it. */
export function readAuthentication(buf: Buffer, start: number, end: number): { code: number; data: Buffer } {
  return { code: buf.readInt32BE(start), data: buf.subarray(start + 4, end) };
}

/** BackendKeyData: the backend's process id and its secret key (copied: the frame's buffer is reused). */
export function readBackendKeyData(buf: Buffer, start: number, end: number): { processId: number; secretKey: Buffer } {
  return { processId: buf.readInt32BE(start), secretKey: Buffer.from(buf.subarray(start + 4, end)) };
}

/** ReadyForQuery: the transaction status byte (TxStatus). */
export function readReadyForQuery(buf: Buffer, start: number): number {
  return buf[start];
}

/** A ParameterStatus body: the setting's name and value. */
export function readParameterStatus(buf: Buffer, start: number, end: number): { name: string; value: string } {
  const nameEnd = buf.indexOf(0, start);
  return { name: buf.toString('utf8', start, nameEnd), value: buf.toString('utf8', nameEnd + 1, end - 1) };
}

/** The row count a CommandComplete tag ends with (`SELECT 5`, `INSERT 0 5`, `COPY 10`); undefined for tags without one (`CREATE TABLE`). */
export function readCommandRows(buf: Buffer, start: number, end: number): number | undefined {
  let i = end - 1;
  if (i >= start && buf[i] === 0) i--; // the tag's NUL terminator
  let rows = 0;
  let scale = 1;
  const last = i;
  for (; i >= start && buf[i] >= 0x30 && buf[i] <= 0x39; i--) {
    rows += (buf[i] - 0x30) * scale;
    scale *= 10;
  }
  return i < last && i >= start && buf[i] === 0x20 ? rows : undefined;
}
