// Turning queued records into chained lines: the CPU part of writing a batch
// (serialising each record, hashing each line), free of I/O. It stays on the
// event loop: a format thread was tried and cost more CPU per statement
// (a structured clone each way and a thread wake-up per batch) than it took
// off the loop, which on a machine as busy as its cores lowers throughput.
import type { ChainHead } from './active-file.js';
import { formatLine, lineHash } from './chain.js';
import { eventFieldsJson } from './fields.js';
import type { AuditEvent } from './record.js';

export interface Queued { ts: number; event: AuditEvent }

export interface FormatRequest {
  records: readonly Queued[];
  /** The line before the first record (its seq and hash). */
  head: ChainHead;
  statements: 'none' | 'fingerprint' | 'full';
  /** Stop taking records once the batch text is this long (the rest wait for the next batch). */
  maxChars: number;
  /** Return each line too (for the syslog copy). */
  wantLines: boolean;
}

export interface CopiedLine { text: string; event: string; ts: number }

export interface FormattedBatch {
  /** The lines, each ending in a newline. */
  text: string;
  /** The last line's seq and hash: where the chain stands once `text` is written. */
  head: ChainHead;
  /** How many of the records `text` holds (from the front). */
  taken: number;
  lines: CopiedLine[] | null;
}

export function formatBatch(req: FormatRequest): FormattedBatch {
  let { seq, hash } = req.head;
  let text = '';
  let taken = 0;
  const lines: CopiedLine[] | null = req.wantLines ? [] : null;
  while (taken < req.records.length && text.length < req.maxChars) {
    const { ts, event } = req.records[taken++];
    const line = formatLine(ts, ++seq, eventFieldsJson(event, req.statements), hash);
    hash = lineHash(line);
    text += line + '\n';
    lines?.push({ text: line, event: event.event, ts });
  }
  return { text, head: { seq, hash }, taken, lines };
}
