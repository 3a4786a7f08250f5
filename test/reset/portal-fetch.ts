// Node's own fetch with a dispatcher that trusts the portal's test
// certificate (the bundled undici's Agent, reached through the global one).
import type { TestCert } from '../auth/test-certs.js';

type Dispatcher = object;

export async function trustingFetch(cert: TestCert): Promise<(url: string, init?: RequestInit) => Promise<Response>> {
  await fetch('data:,').catch(() => {}); // makes Node create its global dispatcher
  const global = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')] as { constructor: new (opts: unknown) => Dispatcher };
  const dispatcher = new global.constructor({ connect: { ca: cert.certPem } });
  return (url, init = {}) => fetch(url, { ...init, redirect: 'manual', dispatcher } as RequestInit);
}

/** POSTs a form as a browser does. */
export function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}
