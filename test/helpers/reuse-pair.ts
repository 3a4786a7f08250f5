// The two proxies the differential tests of upstream statement reuse
// compare: the harness's own (reuse on, the default) and a second one on the
// same database and files with upstream.statements.maxPerConnection 0
// (every statement inline); raw clients logged in to either, closed with them.
import { startHarness, startProxyVariant, clientConfig, type Harness, type HarnessOptions } from './harness.js';
import { RawClient } from './raw-client.js';
import type { ProxyHandle } from '../../src/session/server.js';

export interface ReusePair {
  h: Harness;
  /** The proxy with reuse off. */
  inline: ProxyHandle;
  /** A raw client logged in to `proxy` as `user`. */
  connect(proxy: ProxyHandle, user: string): Promise<RawClient>;
  close(): Promise<void>;
}

export async function startReusePair(options: HarnessOptions): Promise<ReusePair> {
  const h = await startHarness({ ...options, tlsMode: 'prefer' }); // the raw client logs in without TLS
  const inline = await startProxyVariant(h, { upstreamStatements: 0 }).catch(async (err: unknown) => { await h.close(); throw err; });
  const open: RawClient[] = [];
  return {
    h,
    inline,
    async connect(proxy, user) {
      const c = await RawClient.connect(proxy.port);
      open.push(c);
      await c.login(user, clientConfig(h, user).password!);
      return c;
    },
    async close() {
      for (const c of open) c.close();
      await inline.close();
      await h.close();
    },
  };
}
