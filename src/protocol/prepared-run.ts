// The extended-protocol messages pgveil writes itself to run a statement as
// a prepared statement of its own (upstream statement reuse): one buffer
// each, sized up front, no intermediate objects.
import { CloseTarget, Frontend } from './codes.js';

/** Parse of a named statement with declared parameter types. */
export function writeTypedParse(name: string, query: string, types: Int32Array): Buffer {
  const nameLen = Buffer.byteLength(name);
  const queryLen = Buffer.byteLength(query);
  const out = Buffer.allocUnsafe(1 + 4 + nameLen + 1 + queryLen + 1 + 2 + 4 * types.length);
  out[0] = Frontend.Parse;
  out.writeInt32BE(out.length - 1, 1);
  let pos = 5 + out.write(name, 5);
  out[pos++] = 0;
  pos += out.write(query, pos);
  out[pos++] = 0;
  pos = out.writeInt16BE(types.length, pos);
  for (let k = 0; k < types.length; k++) pos = out.writeInt32BE(types[k], pos);
  return out;
}

/** Close of a prepared statement (`''`: the unnamed one; closing one that does not exist is no error). */
export function writeCloseStatement(name: string): Buffer {
  const nameLen = Buffer.byteLength(name);
  const out = Buffer.allocUnsafe(1 + 4 + 1 + nameLen + 1);
  out[0] = Frontend.Close;
  out.writeInt32BE(out.length - 1, 1);
  out[5] = CloseTarget.Statement;
  out.write(name, 6);
  out[out.length - 1] = 0;
  return out;
}

const CLOSE_UNNAMED = writeCloseStatement('');
// Describe the unnamed portal, Execute it for all rows, Sync.
const DESCRIBE_EXECUTE_SYNC = Buffer.from([
  Frontend.Describe, 0, 0, 0, 6, CloseTarget.Portal, 0,
  Frontend.Execute, 0, 0, 0, 9, 0, 0, 0, 0, 0,
  Frontend.Sync, 0, 0, 0, 4,
]);

/**
 * What a simple Query of one statement does, as extended-protocol messages
 * on the prepared statement `name`: Close the unnamed statement (a Query
 * destroys it too), Bind the unnamed portal with `values` (the texts
 * `sql[constants[2j] … constants[2j+1]]` for each j of `order`, in text
 * format, all ASCII: numbers), Describe it (the Query's RowDescription),
 * Execute it to the end, Sync (the Query's ReadyForQuery). `prefix` (a Parse,
 * Closes of evicted statements) goes first.
 */
export function writePreparedRun(prefix: Buffer | undefined, name: string, sql: string, constants: Int32Array, order: Int32Array): Buffer {
  const nameLen = Buffer.byteLength(name);
  let valuesLen = 0;
  for (let k = 0; k < order.length; k++) valuesLen += 4 + constants[2 * order[k] + 1] - constants[2 * order[k]];
  const bindLen = 4 + 1 + nameLen + 1 + 2 + 2 + valuesLen + 2;
  const prefixLen = prefix ? prefix.length : 0;
  const out = Buffer.allocUnsafe(prefixLen + CLOSE_UNNAMED.length + 1 + bindLen + DESCRIBE_EXECUTE_SYNC.length);
  let pos = 0;
  if (prefix) pos += prefix.copy(out, 0);
  pos += CLOSE_UNNAMED.copy(out, pos);
  out[pos++] = Frontend.Bind;
  pos = out.writeInt32BE(bindLen, pos);
  out[pos++] = 0; // the unnamed portal
  pos += out.write(name, pos);
  out[pos++] = 0;
  pos = out.writeInt16BE(0, pos); // no format codes: every parameter in text
  pos = out.writeInt16BE(order.length, pos);
  for (let k = 0; k < order.length; k++) {
    const start = constants[2 * order[k]];
    const end = constants[2 * order[k] + 1];
    pos = out.writeInt32BE(end - start, pos);
    pos += out.write(sql.slice(start, end), pos, 'latin1');
  }
  pos = out.writeInt16BE(0, pos); // no result format codes: every column in text, as a Query sends them
  DESCRIBE_EXECUTE_SYNC.copy(out, pos);
  return out;
}

/** The client's Bind (body at [bodyStart, end) of `buf`) with its statement name replaced by `statement`; the rest as sent. */
export function writeBindOf(buf: Buffer, bodyStart: number, end: number, statement: string): Buffer {
  const portalEnd = buf.indexOf(0, bodyStart);
  const statementEnd = buf.indexOf(0, portalEnd + 1);
  if (portalEnd < 0 || statementEnd < 0 || statementEnd >= end) throw new RangeError('Bind without its names');
  const nameLen = Buffer.byteLength(statement);
  const out = Buffer.allocUnsafe(1 + 4 + (portalEnd + 1 - bodyStart) + nameLen + (end - statementEnd));
  out[0] = Frontend.Bind;
  out.writeInt32BE(out.length - 1, 1);
  let pos = 5 + buf.copy(out, 5, bodyStart, portalEnd + 1);
  pos += out.write(statement, pos);
  buf.copy(out, pos, statementEnd, end);
  return out;
}

/** Describe of a prepared statement. */
export function writeDescribeStatement(name: string): Buffer {
  const out = writeCloseStatement(name);
  out[0] = Frontend.Describe;
  return out;
}
