// A fetch for openid-client that trusts one CA bundle (an identity provider
// behind a private CA). Node's own fetch has no per-request CA option, so the
// requests go through node:https, which has. Bodies are what openid-client
// sends: a form (URLSearchParams), text or bytes; no streams.
import { request } from 'node:https';
import type { CustomFetchOptions } from 'openid-client';

/** Largest answer read from the identity provider (discovery, keys, tokens, userinfo are small). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export type OidcFetch = (url: string, options: CustomFetchOptions) => Promise<Response>;

export function fetchTrusting(ca: string | Buffer): OidcFetch {
  return (url, options) => new Promise<Response>((resolve, reject) => {
    const body = bodyBytes(options.body);
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    const req = request(url, { method: options.method, headers, ca, minVersion: 'TLSv1.2', signal: options.signal }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) { res.destroy(); reject(new Error('identity provider answer too large')); return; }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (typeof value === 'string') responseHeaders.set(name, value);
          else if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
        }
        const status = res.statusCode ?? 502;
        // A Response cannot carry a body with these statuses.
        const empty = status === 204 || status === 304;
        resolve(new Response(empty ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function bodyBytes(body: CustomFetchOptions['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof URLSearchParams) return Buffer.from(body.toString(), 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(new Uint8Array(body));
  throw new Error('streamed request bodies are not supported');
}
