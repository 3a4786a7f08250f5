// Opens pgveil's connection to the real server for one client session:
// TCP (+TLS as configured), StartupMessage as the service role,
// authentication (SCRAM, MD5 or cleartext), then everything up to the first
// ReadyForQuery. After that the socket carries the session's raw traffic.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { serialize } from 'pg-protocol';
import type { UpstreamConfig } from '../config/types.js';
import { PgError, SqlState } from '../errors.js';
import { AuthCode, Backend, SslAnswer } from '../protocol/codes.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { readAuthentication, readBackendKeyData, readDataRowFirstText, readErrorFields, readParameterStatus } from '../protocol/backend-messages.js';
import { writeCancelRequest } from '../protocol/frontend-messages.js';
import { searchPathProbe } from './search-path-probe.js';
import { ScramClientExchange, md5PasswordMessage } from '../auth/scram-client.js';

export interface UpstreamConnection {
  socket: net.Socket;
  processId: number;
  secretKey: Buffer;
  /** The latest raw ParameterStatus message of each reported setting, to greet the client with (kept current while pooled). */
  parameterStatus: Map<string, Buffer>;
  /** Bytes that arrived after the first ReadyForQuery (normally none). */
  leftover: Buffer;
  /** The session's search_path as upstream has it, whatever set it (see search-path-probe.ts). */
  searchPath: string;
  /** Upstream reports search_path changes as ParameterStatus (PostgreSQL 18+). */
  searchPathReported: boolean;
  /** Which sessions may reuse it after a reset: its startup parameters (set by pool.ts; none = never reused). */
  poolKey?: string;
  /** The database's and role's stored settings when it started (pool.ts: changed ones mean it is not reused). */
  storedSettings?: string;
}

/** Upstream failures the client sees: no upstream detail, which may name the service role. */
export function upstreamUnavailable(): PgError {
  return new PgError(SqlState.ConnectionFailure, 'could not connect to the upstream server', {
    severity: 'FATAL',
    hint: 'The database behind pgveil is unreachable or refused pgveil; try again later.',
  });
}

export class UpstreamError extends Error {
  constructor(message: string, readonly serverFields?: Map<string, string>) { super(message); }
}

export function connectUpstream(cfg: UpstreamConfig, password: string | undefined, params: Record<string, string>): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket = net.connect({ host: cfg.host, port: cfg.port });
    socket.setNoDelay(true);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new UpstreamError(`connect timeout after ${cfg.connectTimeoutMs} ms`)), cfg.connectTimeoutMs);
    socket.on('error', (e) => fail(new UpstreamError(e.message)));
    socket.on('close', () => fail(new UpstreamError('upstream closed the connection during startup')));

    const startup = () => {
      const reader = new FrameReader(true, 1 << 24);
      let scram: ScramClientExchange | undefined;
      let processId = 0;
      let secretKey: Buffer = Buffer.alloc(0);
      const parameterStatus = new Map<string, Buffer>();
      let reportedPath: string | undefined;
      let probedPath: string | undefined;
      let probing = false;
      const serverCert = socket instanceof tls.TLSSocket ? socket.getPeerCertificate()?.raw : undefined;
      socket.write(serialize.startup({ user: cfg.user, database: cfg.database, ...params }));
      const onData = (chunk: Buffer) => {
        try {
          reader.push(chunk);
          while (reader.next()) {
            const { buf, bodyStart, end } = reader;
            switch (reader.type) {
              case Backend.Authentication: {
                const { code, data } = readAuthentication(buf, bodyStart, end);
                if (code === AuthCode.Ok) break;
                if (password === undefined) throw new UpstreamError('upstream asks for a password but upstream.password is not set');
                if (code === AuthCode.CleartextPassword) socket.write(serialize.password(password));
                else if (code === AuthCode.MD5Password) socket.write(serialize.password(md5PasswordMessage(cfg.user, password, Buffer.from(data))));
                else if (code === AuthCode.SASL) {
                  const mechanisms = data.toString('utf8').split('\0').filter(Boolean);
                  scram = new ScramClientExchange(password, { mechanisms, serverCertificate: serverCert });
                  socket.write(serialize.sendSASLInitialResponseMessage(scram.mechanism, scram.clientFirst().toString('utf8')));
                } else if (code === AuthCode.SASLContinue && scram) {
                  socket.write(serialize.sendSCRAMClientFinalMessage(scram.serverFirst(Buffer.from(data)).toString('utf8')));
                } else if (code === AuthCode.SASLFinal && scram) {
                  scram.serverFinal(Buffer.from(data));
                } else throw new UpstreamError(`unsupported upstream authentication request ${code}`);
                break;
              }
              case Backend.ErrorResponse: {
                const fields = readErrorFields(buf, bodyStart, end);
                throw new UpstreamError(`upstream refused the connection: ${fields.get('C')} ${fields.get('M')}`, fields);
              }
              case Backend.BackendKeyData:
                ({ processId, secretKey } = readBackendKeyData(buf, bodyStart, end));
                break;
              case Backend.ParameterStatus: {
                const status = readParameterStatus(buf, bodyStart, end);
                parameterStatus.set(status.name, Buffer.from(buf.subarray(reader.frameStart, end)));
                if (status.name === 'search_path') reportedPath = status.value;
                break;
              }
              case Backend.RowDescription:
              case Backend.CommandComplete:
                if (!probing) throw new UpstreamError(`unexpected upstream message ${String.fromCharCode(reader.type)} during startup`);
                break;
              case Backend.DataRow:
                if (!probing) throw new UpstreamError('unexpected upstream message D during startup');
                probedPath = readDataRowFirstText(buf, bodyStart, end);
                break;
              case Backend.NoticeResponse:
              case Backend.NegotiateProtocolVersion:
                break;
              case Backend.ReadyForQuery: {
                if (reportedPath === undefined && !probing) {
                  // PostgreSQL 14–17 do not report search_path: ask before the session starts.
                  probing = true;
                  socket.write(searchPathProbe);
                  break;
                }
                const searchPath = reportedPath ?? probedPath;
                if (searchPath === undefined) throw new UpstreamError('upstream did not say its search_path');
                socket.off('data', onData);
                socket.removeAllListeners('error');
                socket.removeAllListeners('close');
                settled = true;
                clearTimeout(timer);
                resolve({ socket, processId, secretKey, parameterStatus, leftover: Buffer.from(reader.takeRest()), searchPath, searchPathReported: reportedPath !== undefined });
                return;
              }
              default:
                throw new UpstreamError(`unexpected upstream message ${String.fromCharCode(reader.type)} during startup`);
            }
          }
        } catch (err) {
          fail(err instanceof Error ? err : new UpstreamError(String(err)));
        }
      };
      socket.on('data', onData);
    };

    socket.once('connect', () => {
      if (cfg.tls.mode === 'disable') { startup(); return; }
      socket.write(serialize.requestSsl());
      socket.once('data', (answer: Buffer) => {
        if (answer[0] !== SslAnswer.Accepted) { fail(new UpstreamError('upstream does not support TLS but upstream.tls.mode requires it')); return; }
        const verify = cfg.tls.mode === 'verify-ca' || cfg.tls.mode === 'verify-full';
        const secure = tls.connect({
          socket,
          servername: net.isIP(cfg.host) ? undefined : cfg.host,
          ca: cfg.tls.ca ? readFileSync(cfg.tls.ca) : undefined,
          rejectUnauthorized: verify,
          checkServerIdentity: cfg.tls.mode === 'verify-full' ? (_name, cert) => tls.checkServerIdentity(cfg.host, cert) : () => undefined,
          minVersion: 'TLSv1.2',
        });
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket = secure;
        secure.on('error', (e) => fail(new UpstreamError(`upstream TLS: ${e.message}`)));
        secure.on('close', () => fail(new UpstreamError('upstream closed the connection during startup')));
        secure.once('secureConnect', startup);
      });
    });
  });
}

/** Forwards a CancelRequest to the upstream backend that runs the session's query. */
export function sendUpstreamCancel(cfg: UpstreamConfig, processId: number, secretKey: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: cfg.host, port: cfg.port });
    const msg = writeCancelRequest(processId, secretKey);
    const done = () => { socket.destroy(); resolve(); };
    socket.setTimeout(cfg.connectTimeoutMs, done);
    socket.on('error', done);
    socket.on('close', done);
    socket.once('connect', () => socket.end(msg));
  });
}
