// The CLI's side of the admin control API (`pgveil sessions`, `pgveil unlock`):
// where the running pgveil's admin endpoint is and its token, both read from
// the same pgveil.yaml (the token opened with the master key), and one request.
import type { Config } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { adminToken } from '../observe/admin-token.js';
import { loadMasterKey } from '../secrets/master-key.js';

const TIMEOUT_MS = 10_000;

/** A problem with the config or the usage: exit 2. */
export class AdminSetupError extends Error {}

/** A refused, failed or unreachable request: exit 1. */
export class AdminRequestError extends Error {}

export interface AdminClient {
  /** `http://host:port`, for messages. */
  readonly base: string;
  request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
}

/** A wildcard admin address is reached through loopback. */
function hostOf(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function adminClient(configFile: string): AdminClient {
  const config: Config = loadConfig(configFile);
  if (!config.admin) throw new AdminSetupError(`${configFile} has no admin: section, so pgveil serves no admin API (set admin.host, admin.port and admin.token)`);
  let token: string | undefined;
  try {
    token = adminToken(config, () => loadMasterKey(config.secrets));
  } catch (err) { // no master key, a seal that does not open, a token too short
    throw new AdminSetupError(err instanceof Error ? err.message : String(err));
  }
  if (token === undefined) throw new AdminSetupError(`${configFile} sets no admin.token, so pgveil serves no control API (set one: \`pgveil keygen | pgveil seal --config ${configFile}\`)`);
  if (config.admin.port === 0) throw new AdminSetupError('admin.port is 0 (any free port): set a fixed port to reach the admin API');
  const base = `http://${hostOf(config.admin.host)}:${config.admin.port}`;
  return {
    base,
    async request(method, path, body) {
      let res: Response;
      try {
        res = await fetch(base + path, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new AdminRequestError(`cannot reach the admin API at ${base}: ${cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))}`);
      }
      const text = await res.text();
      let parsed: Record<string, unknown> = {};
      try { parsed = JSON.parse(text) as Record<string, unknown>; } catch { /* a non-JSON answer: judged by its status */ }
      if (res.status === 401) throw new AdminRequestError(`the admin API at ${base} refused the token (is the running pgveil using this config's admin.token?)`);
      if (res.status === 404 && Object.keys(parsed).length === 0) {
        throw new AdminRequestError(`the admin API at ${base} has no control API (the running pgveil was started without admin.token)`);
      }
      if (res.status >= 500) throw new AdminRequestError(`the admin API at ${base} answered ${res.status}: ${String(parsed.error ?? text.trim())}`);
      return { status: res.status, body: parsed };
    },
  };
}

/** Runs a command body, mapping setup problems to exit 2 and request problems to exit 1. */
export async function withAdmin(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof AdminRequestError) { console.error(`pgveil ${name}: ${err.message}`); return 1; }
    if (err instanceof AdminSetupError) { console.error(`pgveil ${name}: ${err.message}`); return 2; }
    throw err;
  }
}
