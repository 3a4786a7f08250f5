// What a client gets once its session's upstream connection is open (new or
// pooled): upstream's settings as ParameterStatus — the shared service role
// shown as the client's own pgveil user — the cancel key pgveil issued for
// the session (never upstream's), and ReadyForQuery.
import { MESSAGE_HEADER_BYTES, TxStatus } from '../protocol/codes.js';
import { readParameterStatus, readyForQuery, writeBackendKeyData, writeParameterStatus } from '../protocol/backend-messages.js';

/** The greeting's bytes; `onSetting` is told each setting (the statement gate starts from them). */
export function greeting(
  parameterStatus: Iterable<Buffer>, user: string, cancelKey: { processId: number; secretKey: Buffer }, onSetting: (name: string, value: string) => void,
): Buffer {
  const out: Buffer[] = [];
  for (const status of parameterStatus) {
    const { name, value } = readParameterStatus(status, MESSAGE_HEADER_BYTES, status.length);
    onSetting(name, value);
    out.push(name === 'session_authorization' ? writeParameterStatus(name, user) : status);
  }
  out.push(writeBackendKeyData(cancelKey.processId, cancelKey.secretKey.readInt32BE(0)));
  out.push(readyForQuery[TxStatus.Idle]);
  return Buffer.concat(out);
}
