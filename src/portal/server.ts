// The portal: an HTTPS server for people (password reset, browser SSO).
// Pages are plain server-rendered HTML forms, no script. Each route is one
// entry of a small table; every answer carries strict security headers
// (nothing cached, nothing framed, no script, forms post only here).
import https from 'node:https';
import type http from 'node:http';
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/log.js';

/** Largest request body read by default, in bytes; a form holds a name or two passwords. */
export const MAX_BODY_BYTES = 8192;

export interface PortalRequest {
  method: string;
  path: string;
  /** What the route's pattern captured. */
  params: string[];
  /** Decoded form fields of a POST (application/x-www-form-urlencoded). */
  form: URLSearchParams;
  /** The query string's fields. */
  query: URLSearchParams;
  /** The request's cookies by name (the first of a repeated name). */
  cookies: Map<string, string>;
  /** The client's address, for rate limits. */
  address: string;
}

/** A page, or (with `headers.location` and a 3xx status) a redirect; `headers` may also set cookies or another content-type. */
export interface PortalResponse { status: number; html: string; headers?: Record<string, string | string[]> }

export interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  /** Largest body this route reads (default MAX_BODY_BYTES); a SAML response is larger than a form. */
  maxBodyBytes?: number;
  handle(req: PortalRequest): Promise<PortalResponse> | PortalResponse;
}

/** A redirect that carries no page of its own. */
export function redirect(location: string, headers: Record<string, string | string[]> = {}): PortalResponse {
  return { status: 303, html: '', headers: { ...headers, location } };
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000',
};

export interface PortalHandle { port: number; close(): Promise<void> }

export async function startPortal(config: NonNullable<Config['portal']>, routes: Route[], logger: Logger): Promise<PortalHandle> {
  const server = https.createServer({
    cert: readFileSync(config.tls.cert),
    key: readFileSync(config.tls.key),
    minVersion: 'TLSv1.2',
  }, (req, res) => { void serve(req, res, routes, logger); });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => { server.off('error', reject); resolve(); });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeIdleConnections(); }),
  };
}

function send(res: http.ServerResponse, status: number, html: string, headers?: Record<string, string | string[]>): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers, ...SECURITY_HEADERS }).end(html);
}

async function serve(req: http.IncomingMessage, res: http.ServerResponse, routes: Route[], logger: Logger): Promise<void> {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  const method = req.method ?? 'GET';
  let params: string[] | undefined;
  const route = routes.find((r) => r.method === method && (params = r.pattern.exec(path)?.slice(1)) !== undefined);
  if (!route) {
    const known = routes.some((r) => r.pattern.test(path));
    send(res, known ? 405 : 404, known ? 'method not allowed' : 'not found');
    return;
  }
  try {
    let form = new URLSearchParams();
    if (method === 'POST') {
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') { send(res, 415, 'send the form as application/x-www-form-urlencoded'); req.resume(); return; }
      const body = await readBody(req, route.maxBodyBytes ?? MAX_BODY_BYTES);
      if (body === undefined) { send(res, 413, 'request too large'); res.once('finish', () => req.destroy()); return; }
      form = new URLSearchParams(body);
    }
    const query = new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1));
    const answer = await route.handle({
      method, path, params: params ?? [], form, query, cookies: parseCookies(req.headers.cookie), address: req.socket.remoteAddress ?? '',
    });
    send(res, answer.status, answer.html, answer.headers);
  } catch (err) {
    logger.error('portal request failed', { path: route.pattern.source, error: err instanceof Error ? err.message : String(err) });
    send(res, 500, 'something went wrong; try again later');
  }
}

/** Cookie header pairs; a value that is not valid percent-encoding is kept as sent. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (cookies.has(name)) continue;
    let value = pair.slice(eq + 1).trim();
    try { value = decodeURIComponent(value); } catch { /* kept as sent */ }
    cookies.set(name, value);
  }
  return cookies;
}

/** The body as text, or undefined past `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) { resolve(undefined); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) { req.removeAllListeners('data'); req.resume(); resolve(undefined); return; }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
