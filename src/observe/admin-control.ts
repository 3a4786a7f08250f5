// The admin control API, served beside /metrics only when `admin.token` is
// set: list open sessions, end one, lift a user's lockout. Every request must
// carry `Authorization: Bearer <token>`; a missing or wrong token is answered
// 401, logged with the client address (never the token) and audited, as is
// every action.
//
//   GET    /sessions        200 {"sessions":[SessionInfo…]}
//   DELETE /sessions/<id>   200 {"terminated":"<id>"} | 404 {"error":…}
//   POST   /unlock          body {"user":"<name>"} → 200 {"user":…,"wasLocked":bool}
import type http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { AuditSink } from '../audit/record.js';
import type { Logger } from './log.js';
import type { SessionInfo } from '../session/session-info.js';

/** What the control API acts on: one proxy, or under `workers: N` the primary asking its workers. */
export interface ControlTarget {
  sessions(): Promise<SessionInfo[]>;
  /** Ends the session with 57P01; false when no session has this id. */
  terminate(id: string): Promise<boolean>;
  /** Lifts the user's lockout and forgets its failures; true when the user was locked. */
  unlock(user: string): Promise<boolean>;
}

export interface ControlOptions extends ControlTarget {
  /** The opened admin.token (never logged). */
  token: string;
  audit: AuditSink;
  logger: Logger;
  actions: Counter<'action' | 'outcome'>;
}

type Action = 'sessions' | 'terminate' | 'unlock';

const MAX_BODY_BYTES = 4096;

/** True for the paths the control API owns (404 when it is off). */
export function isControlPath(path: string): boolean {
  return path === '/sessions' || path.startsWith('/sessions/') || path === '/unlock';
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compares digests, so neither the token's content nor its length leaks through timing. */
function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return timingSafeEqual(digest(m ? m[1] : ''), expected) && m !== null;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body) + '\n');
}

function actionOf(method: string | undefined, path: string): Action | undefined {
  if (path === '/sessions') return method === 'GET' ? 'sessions' : undefined;
  if (path === '/unlock') return method === 'POST' ? 'unlock' : undefined;
  return method === 'DELETE' && /^\/sessions\/[^/]+$/.test(path) ? 'terminate' : undefined;
}

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) { resolve(undefined); req.destroy(); return; }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

function userOf(body: string | undefined): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body ?? '');
    const user = (parsed as { user?: unknown } | null)?.user;
    return typeof user === 'string' && user.length > 0 ? user : undefined;
  } catch {
    return undefined;
  }
}

/** Builds the handler of the control paths. */
export function controlHandler(opts: ControlOptions): (req: http.IncomingMessage, res: http.ServerResponse, path: string) => void {
  const expected = digest(opts.token);
  return (req, res, path) => {
    const address = req.socket.remoteAddress ?? '';
    const by = `admin:${address}`;
    const action = actionOf(req.method, path) ?? 'unknown';
    const done = (outcome: 'ok' | 'refused' | 'not_found', target?: string) => {
      opts.actions.inc({ action, outcome });
      opts.audit.record({ event: 'admin', action, by, target, outcome });
    };
    if (!tokenMatches(req.headers.authorization, expected)) {
      done('refused');
      opts.logger.warn('admin request refused', { address, action, reason: req.headers.authorization ? 'wrong token' : 'no token' });
      res.setHeader('www-authenticate', 'Bearer');
      send(res, 401, { error: 'a valid admin token is required (Authorization: Bearer <token>)' });
      return;
    }
    const failed = (err: unknown) => {
      opts.logger.error('admin action failed', { action, error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) send(res, 500, { error: 'the action failed; the pgveil log has the details' });
    };
    switch (action) {
      case 'sessions':
        opts.sessions().then((sessions) => { done('ok'); send(res, 200, { sessions }); }, failed);
        return;
      case 'terminate': {
        let id: string;
        try { id = decodeURIComponent(path.slice('/sessions/'.length)); } catch { send(res, 400, { error: 'malformed session id' }); return; }
        opts.terminate(id).then((found) => {
          done(found ? 'ok' : 'not_found', id);
          opts.logger.info('admin action', { action, target: id, outcome: found ? 'ok' : 'not_found', address });
          if (found) send(res, 200, { terminated: id });
          else send(res, 404, { error: `no open session ${id}` });
        }, failed);
        return;
      }
      case 'unlock':
        void readBody(req).then((body) => {
          const user = userOf(body);
          if (user === undefined) { send(res, 400, { error: 'the body must be JSON {"user": "<name>"}' }); return; }
          return opts.unlock(user).then((wasLocked) => {
            done('ok', user);
            opts.audit.record({ event: 'unlock', user, by });
            opts.logger.info('admin action', { action, target: user, outcome: 'ok', wasLocked, address });
            send(res, 200, { user, wasLocked });
          });
        }).catch(failed);
        return;
      default:
        send(res, 405, { error: 'method not allowed' });
    }
  };
}
