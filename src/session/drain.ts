// Graceful shutdown of one process's sessions: idle ones end at once, a
// session running a statement ends right after the ReadyForQuery that
// finishes it, and whatever still runs when the timeout passes is ended.
// Every one of them gets 57P01, as from a PostgreSQL shutting down.
import type { Logger } from '../observe/log.js';
import type { LiveSession } from './session-info.js';
import { ADMIN_TERMINATION } from './connection.js';

const POLL_MS = 50;

/** Resolves once every session has ended (those left at `timeoutMs` are ended then). */
export async function drainSessions(sessions: Set<LiveSession>, timeoutMs: number, logger: Logger): Promise<void> {
  if (sessions.size > 0) logger.info('draining sessions', { sessions: sessions.size, timeoutSeconds: timeoutMs / 1000 });
  for (const session of [...sessions]) session.endWhenQuiet();
  const deadline = Date.now() + timeoutMs;
  while (sessions.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  if (sessions.size > 0) {
    logger.warn('shutdown timeout passed; ending the sessions still running a statement', { sessions: sessions.size });
    for (const session of [...sessions]) session.terminate(ADMIN_TERMINATION, 'shutdown');
  }
}
