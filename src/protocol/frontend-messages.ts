// Decoders for the frontend messages pgveil must look into. Everything else
// is forwarded as raw bytes. Each reader takes the frame's body bounds.
import { declaredParameterTypes } from './parameter-types.js';
import { PgError, SqlState } from '../errors.js';
import { CloseTarget, Frontend, StartupCode } from './codes.js';

function violation(message: string): PgError {
  return new PgError(SqlState.ProtocolViolation, message, { severity: 'FATAL' });
}

/** Index of the NUL that ends the C string starting at `pos`. */
function cstringEnd(buf: Buffer, pos: number, end: number): number {
  const nul = buf.indexOf(0, pos);
  if (nul === -1 || nul >= end) throw violation('invalid string in message');
  return nul;
}

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> };

/** Reads an untyped startup-phase packet (body = everything after the length). */
export function readStartupPacket(buf: Buffer, start: number, end: number): StartupPacket {
  const code = buf.readInt32BE(start);
  switch (code) {
    case StartupCode.SSLRequest: return { kind: 'ssl' };
    case StartupCode.GSSENCRequest: return { kind: 'gssenc' };
    case StartupCode.CancelRequest: {
      if (end - start < 12) throw violation('invalid length of cancel request');
      return { kind: 'cancel', processId: buf.readInt32BE(start + 4), secretKey: Buffer.from(buf.subarray(start + 8, end)) };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  const params = new Map<string, string>();
  if (major === 3) {
    let pos = start + 4;
    while (pos < end && buf[pos] !== 0) {
      const nameEnd = cstringEnd(buf, pos, end);
      const valueEnd = cstringEnd(buf, nameEnd + 1, end);
      params.set(buf.toString('utf8', pos, nameEnd), buf.toString('utf8', nameEnd + 1, valueEnd));
      pos = valueEnd + 1;
    }
    if (pos >= end) throw violation('invalid startup packet layout: expected terminator as last byte');
  }
  return { kind: 'startup', major, minor, params };
}

/** Query: the SQL text. */
export function readQuery(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start, cstringEnd(buf, start, end));
}

export interface ParseMessage {
  name: string;
  query: string;
  /** Offset where the parameter-type section starts (copied as-is when rewriting). */
  paramsOffset: number;
  /** The declared parameter types as the rewriter reads them ('' when none is declared; parameter-types.ts). */
  parameterTypes: string;
}

export function readParse(buf: Buffer, start: number, end: number): ParseMessage {
  const nameEnd = cstringEnd(buf, start, end);
  const queryEnd = cstringEnd(buf, nameEnd + 1, end);
  if (end - (queryEnd + 1) < 2) throw violation('invalid Parse message');
  const count = buf.readInt16BE(queryEnd + 1);
  if (count < 0 || queryEnd + 3 + count * 4 !== end) throw violation('invalid Parse message');
  return {
    name: buf.toString('utf8', start, nameEnd),
    query: buf.toString('utf8', nameEnd + 1, queryEnd),
    paramsOffset: queryEnd + 1,
    parameterTypes: declaredParameterTypes(buf, queryEnd + 1),
  };
}

/** Bind: the portal it creates and the prepared statement it binds (its first two C strings). */
export function readBindNames(buf: Buffer, start: number, end: number): { portal: string; statement: string } {
  const portalEnd = cstringEnd(buf, start, end);
  return { portal: buf.toString('utf8', start, portalEnd), statement: buf.toString('utf8', portalEnd + 1, cstringEnd(buf, portalEnd + 1, end)) };
}

/** Close: the prepared statement or portal it closes; undefined for another target byte (upstream answers that). */
export function readClose(buf: Buffer, start: number, end: number): { target: 'statement' | 'portal'; name: string } | undefined {
  const target = buf[start];
  if (target !== CloseTarget.Statement && target !== CloseTarget.Portal) return undefined;
  return { target: target === CloseTarget.Statement ? 'statement' : 'portal', name: readQuery(buf, start + 1, end) };
}

/** Execute: the portal it runs (its first C string). */
export function readExecutePortal(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start, cstringEnd(buf, start, end));
}

export interface SaslInitialResponse { mechanism: string; data: Buffer }

export function readSaslInitialResponse(buf: Buffer, start: number, end: number): SaslInitialResponse {
  const mechEnd = cstringEnd(buf, start, end);
  if (end - (mechEnd + 1) < 4) throw violation('invalid SASL initial response');
  const len = buf.readInt32BE(mechEnd + 1);
  const dataStart = mechEnd + 5;
  if (len === -1) return { mechanism: buf.toString('utf8', start, mechEnd), data: Buffer.alloc(0) };
  if (len < 0 || dataStart + len !== end) throw violation('invalid SASL initial response');
  return { mechanism: buf.toString('utf8', start, mechEnd), data: Buffer.from(buf.subarray(dataStart, end)) };
}

/**
 * PasswordMessage answering AuthenticationCleartextPassword: one C string
 * that fills the body. A SASL message sent instead does not fit that shape.
 */
export function readCleartextPassword(buf: Buffer, start: number, end: number): string {
  const nul = cstringEnd(buf, start, end);
  if (nul !== end - 1) throw violation('invalid password packet size');
  return buf.toString('utf8', start, nul);
}

/** SASLResponse: the whole body is the mechanism's data. */
export function readSaslResponse(buf: Buffer, start: number, end: number): Buffer {
  return Buffer.from(buf.subarray(start, end));
}

/** Builds a Parse message with a new query text, keeping the client's parameter types. */
export function writeParse(name: string, query: string, src: Buffer, paramsOffset: number, end: number): Buffer {
  const nameLen = Buffer.byteLength(name);
  const queryLen = Buffer.byteLength(query);
  const tail = end - paramsOffset;
  const out = Buffer.allocUnsafe(1 + 4 + nameLen + 1 + queryLen + 1 + tail);
  out[0] = 0x50; // P
  out.writeInt32BE(out.length - 1, 1);
  let pos = 5 + out.write(name, 5);
  out[pos++] = 0;
  pos += out.write(query, pos);
  out[pos++] = 0;
  src.copy(out, pos, paramsOffset, end);
  return out;
}

/** Builds a Parse message that declares no parameter types. */
export function writeParseText(name: string, query: string): Buffer {
  const nameLen = Buffer.byteLength(name);
  const queryLen = Buffer.byteLength(query);
  const out = Buffer.alloc(1 + 4 + nameLen + 1 + queryLen + 1 + 2); // zeroed: the NULs and the Int16 count 0
  out[0] = Frontend.Parse;
  out.writeInt32BE(out.length - 1, 1);
  out.write(name, 5);
  out.write(query, 5 + nameLen + 1);
  return out;
}

/** A CancelRequest (an untyped startup-phase packet) for a backend's process id and secret key. */
export function writeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  const out = Buffer.alloc(12 + secretKey.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(StartupCode.CancelRequest, 4);
  out.writeInt32BE(processId, 8);
  secretKey.copy(out, 12);
  return out;
}

/** Builds a simple Query message. */
export function writeQuery(query: string): Buffer {
  const len = Buffer.byteLength(query);
  const out = Buffer.allocUnsafe(len + 6);
  out[0] = 0x51; // Q
  out.writeInt32BE(len + 5, 1);
  out.write(query, 5);
  out[len + 5] = 0;
  return out;
}
