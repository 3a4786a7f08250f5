// pgveil's own short conversations on an upstream connection no client is
// attached to: the pool's reset and check after a session, and its claim for
// the next one. Simple-protocol queries are sent in one write; the answer is
// read up to the last ReadyForQuery. Anything unexpected (an error, a FATAL,
// a close, a timeout, a message no such query answers with) rejects, and the
// caller closes the connection: a connection pgveil cannot account for is
// never handed to anybody.
import { Backend, MESSAGE_HEADER_BYTES } from '../protocol/codes.js';
import { FrameReader } from '../protocol/frame-reader.js';
import { readDataRowTexts, readErrorFields, readParameterStatus, readReadyForQuery } from '../protocol/backend-messages.js';
import { writeQuery } from '../protocol/frontend-messages.js';
import type { UpstreamConnection } from './connect.js';

export interface ExchangeResult {
  /** Every DataRow's columns as text (null → undefined), in order. */
  rows: Array<Array<string | undefined>>;
  /** The transaction status of each ReadyForQuery, one per query. */
  txStatus: number[];
}

export class ExchangeError extends Error {}

/**
 * Runs `queries` (each one Query message) on the idle connection and resolves
 * with their rows. `unanswered` earlier questions are still in flight (the
 * search_path probe a session sent just before it ended, the cycles of a
 * session that ended before their answers came): their answers, errors
 * included, come first and are read and dropped.
 */
export function exchange(conn: UpstreamConnection, queries: readonly string[], timeoutMs: number, unanswered = 0): Promise<ExchangeResult> {
  const { socket } = conn;
  return new Promise((resolve, reject) => {
    if (conn.leftover.length > 0) { reject(new ExchangeError('upstream sent data out of turn')); return; }
    const reader = new FrameReader(true, 1 << 20);
    const result: ExchangeResult = { rows: [], txStatus: [] };
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(result);
    };
    const onError = (e: Error) => finish(new ExchangeError(e.message));
    const onClose = () => finish(new ExchangeError('upstream closed the connection'));
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
        while (reader.next()) {
          const { buf, bodyStart, end } = reader;
          if (unanswered > 0 && reader.type !== Backend.ParameterStatus) { if (dropEarlierAnswer(reader.type)) unanswered--; continue; }
          switch (reader.type) {
            case Backend.ReadyForQuery:
              result.txStatus.push(readReadyForQuery(buf, bodyStart));
              if (result.txStatus.length === queries.length) {
                if (reader.pending > 0) throw new ExchangeError('upstream sent more than the answers asked for');
                finish();
                return;
              }
              break;
            case Backend.DataRow: result.rows.push(readDataRowTexts(buf, bodyStart, end)); break;
            case Backend.ParameterStatus: rememberParameterStatus(conn, Buffer.from(buf.subarray(reader.frameStart, end))); break;
            case Backend.ErrorResponse: {
              const fields = readErrorFields(buf, bodyStart, end);
              throw new ExchangeError(`upstream answered ${fields.get('C')} ${fields.get('M')}`);
            }
            case Backend.RowDescription: case Backend.CommandComplete: case Backend.NoticeResponse: case Backend.EmptyQueryResponse:
              break;
            default:
              throw new ExchangeError(`unexpected upstream message ${String.fromCharCode(reader.type)}`);
          }
        }
      } catch (err) {
        finish(err instanceof Error ? err : new ExchangeError(String(err)));
      }
    };
    const timer = setTimeout(() => finish(new ExchangeError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
    socket.write(Buffer.concat(queries.map(writeQuery)));
  });
}

/**
 * Reads past one message of an earlier question's answer; true at its
 * ReadyForQuery. A COPY FROM STDIN (CopyInResponse) would wait for data
 * nobody sends, so it is unexpected like any message no answer holds.
 */
function dropEarlierAnswer(type: number): boolean {
  switch (type) {
    case Backend.ReadyForQuery: return true;
    case Backend.RowDescription: case Backend.DataRow: case Backend.CommandComplete: case Backend.ErrorResponse:
    case Backend.NoticeResponse: case Backend.EmptyQueryResponse:
    // an extended-protocol cycle's (a client's, or pgveil's prepared run of a client's Query)
    case Backend.ParseComplete: case Backend.BindComplete: case Backend.CloseComplete: case Backend.NoData:
    case Backend.ParameterDescription: case Backend.PortalSuspended:
    // a COPY … TO STDOUT's rows, and a notification for a LISTEN of the session that ended (DISCARD ALL ends it)
    case Backend.CopyOutResponse: case Backend.CopyData: case Backend.CopyDone: case Backend.NotificationResponse:
      return false;
    default: throw new ExchangeError(`unexpected upstream message ${String.fromCharCode(type)}`);
  }
}

/** Keeps the connection's latest value of a reported setting: the next session is greeted with it. */
function rememberParameterStatus(conn: UpstreamConnection, message: Buffer): void {
  conn.parameterStatus.set(readParameterStatus(message, MESSAGE_HEADER_BYTES, message.length).name, message);
}
