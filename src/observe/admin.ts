// The admin HTTP endpoint: GET /metrics (Prometheus text), /healthz (the
// process answers), /readyz (policy loaded, upstream reachable, and the
// audit log writable when `onFailure: block` would refuse statements).
import http from 'node:http';
import net from 'node:net';
import type { Registry } from 'prom-client';

export interface AdminOptions {
  host: string;
  port: number;
  /** The registry to expose (under `workers: N`, one aggregated from every worker at scrape time). */
  metrics: () => Promise<Registry>;
  upstream: { host: string; port: number; connectTimeoutMs: number };
  policyLoaded: () => boolean | Promise<boolean>;
  /** True while the audit log cannot be written and `onFailure: block` refuses statements. */
  auditBlocked?: () => boolean;
}

function upstreamReachable(target: AdminOptions['upstream']): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(Math.min(target.connectTimeoutMs, 2000), () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function startAdmin(opts: AdminOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') { res.writeHead(405).end(); return; }
    if (path === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'); return; }
    if (path === '/readyz') {
      if (opts.auditBlocked?.()) { res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: audit log cannot be written\n'); return; }
      void Promise.all([upstreamReachable(opts.upstream), Promise.resolve(opts.policyLoaded()).catch(() => false)]).then(([up, loaded]) => {
        const ready = up && loaded;
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(ready ? 'ready\n' : `not ready: ${up ? 'policy not loaded' : 'upstream unreachable'}\n`);
      });
      return;
    }
    if (path === '/metrics') {
      void opts.metrics().then(async (registry) => {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      }).catch(() => res.writeHead(500).end());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
