// When a session ends, its upstream connection goes back to the pool only
// if pgveil can account for every byte upstream will still send (threat
// C4): only whole cycles in flight (none half-sent without its Sync, none
// left unsent in the batch), no FATAL from upstream, no cancel that could
// still land on the next session's statement, and upstream's answers read
// to a message boundary. Cycles still being answered (a client that ends
// right after an error, before its ReadyForQuery, or in the middle of a
// query) and, on 14–17, pgveil's search_path question are answered first
// and their answers dropped by the pool. Anything else closes it.
import type { ProxyContext } from './context.js';
import type { UpstreamConnection } from '../upstream/connect.js';
import { closeUpstream } from '../upstream/pool.js';

/** Where the session left its upstream connection. */
export interface SessionEnd {
  /** Client bytes were still batched, unsent (dropped with the session). */
  unsent: boolean;
  /** An extended-protocol cycle went without its Sync. */
  unsynced: boolean;
  upstreamSentFatal: boolean;
  cancelSent: boolean;
  /** Upstream's answers were read to a message boundary. */
  atBoundary: boolean;
  /** Cycles sent whose ReadyForQuery has not come back. */
  pendingSyncs: number;
  /** pgveil's own search_path question is in flight. */
  probe: boolean;
  /** The last ReadyForQuery's transaction status. */
  txStatus: number;
}

export function handBackUpstream(ctx: ProxyContext, upstream: UpstreamConnection, end: SessionEnd, user: string): void {
  const inStep = !end.unsent && !end.unsynced && !end.upstreamSentFatal && !end.cancelSent && end.atBoundary && !upstream.socket.destroyed;
  if (!inStep) {
    ctx.logger.debug('upstream connection closed with the session: not in step', { user });
    closeUpstream(upstream);
    return;
  }
  ctx.upstreamPool.release(upstream, end.txStatus, end.pendingSyncs + (end.probe ? 1 : 0), end.pendingSyncs > 0);
}
