// What a-reaching-rows.test.ts and c-identity.test.ts (docs/threat-model.md sections A
// and C) share: clients that record everything they receive, and the two
// oracles over it:
//   1. nothing the client receives (rows, column names, errors, notices)
//      matches a canary (a value of another organization);
//   2. probing a row of another organization answers exactly as probing a
//      row that does not exist.
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Harness } from '../helpers/harness.js';

/** A node-postgres client that keeps the notices and notifications it received. */
export type Client = pg.Client & { notices: string[]; notifications: string[] };

/** Connects a recording client and remembers it in `open` (closed after each test). */
export async function connectRecording(config: pg.ClientConfig, open: pg.Client[]): Promise<Client> {
  const c = new pg.Client(config) as Client;
  c.notices = [];
  c.notifications = [];
  c.on('notice', (n: { message?: string; detail?: string; hint?: string; where?: string }) => c.notices.push(JSON.stringify({ m: n.message, d: n.detail, h: n.hint, w: n.where })));
  c.on('notification', (n: { channel: string; payload?: string }) => c.notifications.push(`${n.channel}:${n.payload ?? ''}`));
  c.on('error', () => {});
  await c.connect();
  open.push(c);
  return c;
}

/** Everything a statement made the client receive. */
export interface Seen {
  results: Array<{ fields: string[]; rows: unknown[][] }>;
  error?: { code?: string; message: string; detail?: string; hint?: string; position?: string; where?: string };
  notices: string[];
}

export async function observe(c: Client, q: string | pg.QueryConfig): Promise<Seen> {
  const start = c.notices.length;
  const config: pg.QueryConfig = typeof q === 'string' ? { text: q } : q;
  try {
    const r = await c.query({ ...config, rowMode: 'array' } as pg.QueryArrayConfig);
    const list = (Array.isArray(r) ? r : [r]) as pg.QueryArrayResult[];
    return { results: list.map((x) => ({ fields: (x.fields ?? []).map((f) => f.name), rows: x.rows ?? [] })), notices: c.notices.slice(start) };
  } catch (e) {
    const err = e as pg.DatabaseError;
    return {
      results: [],
      error: { code: err.code, message: err.message, detail: err.detail, hint: err.hint, position: err.position, where: err.where },
      notices: c.notices.slice(start),
    };
  }
}

/** The first forbidden pattern in `text`, with the text around it. */
export function leakIn(text: string, forbidden: RegExp[]): string | undefined {
  for (const re of forbidden) {
    const m = re.exec(text);
    if (m) return `${re} matched …${text.slice(Math.max(0, m.index - 80), m.index + 80)}…`;
  }
  return undefined;
}

/** Rows of the last result set (undefined when the statement failed). */
export function rows(seen: Seen): unknown[][] | undefined {
  return seen.error ? undefined : seen.results[seen.results.length - 1]?.rows;
}

export function describe(seen: Seen): string {
  return seen.error ? `error ${seen.error.code} ${seen.error.message}` : JSON.stringify(seen.results.map((r) => r.rows));
}

const textOf = (q: string | pg.QueryConfig) => (typeof q === 'string' ? q : q.text);

/**
 * The oracles, with `canaries` as what must never reach the client unless a
 * call names other patterns, and `ids` (a row of another org, a missing
 * row; ids of equal length) as what probe() compares unless told otherwise.
 */
export function oracles(canaries: RegExp[], ids: [number, number]) {
  function assertClean(seen: Seen | string, label: string, forbidden = canaries): void {
    const text = typeof seen === 'string' ? seen : JSON.stringify(seen);
    const leak = leakIn(text, forbidden);
    assert.not.ok(leak, `LEAK: ${label}\n  ${leak}`);
  }

  /** Runs `q` and checks oracle 1 on everything the client received. */
  async function safe(c: Client, q: string | pg.QueryConfig, forbidden = canaries): Promise<Seen> {
    const seen = await observe(c, q);
    assertClean(seen, textOf(q), forbidden);
    return seen;
  }

  /** Expects the statement to fail (any SQLSTATE unless given) and to leak nothing. */
  async function refused(c: Client, q: string | pg.QueryConfig, code?: string): Promise<Seen> {
    const seen = await safe(c, q);
    const text = textOf(q);
    assert.ok(seen.error, `expected a refusal for: ${text}\n  got ${describe(seen)}`);
    if (code) assert.is(seen.error?.code, code, `SQLSTATE for: ${text} (${seen.error?.message})`);
    return seen;
  }

  /** Expects exactly these rows in the last result set. */
  async function expectRows(c: Client, q: string | pg.QueryConfig, expected: unknown[][], forbidden = canaries): Promise<void> {
    const seen = await safe(c, q, forbidden);
    const text = textOf(q);
    assert.ok(!seen.error, `${text}: unexpected error ${seen.error?.code} ${seen.error?.message}`);
    assert.equal(rows(seen), expected, text);
  }

  /** Oracle 2: a row of another org answers exactly as a row that does not exist. */
  async function probe(c: Client, make: (id: number) => string | pg.QueryConfig, label?: string, probeIds: [number, number] = ids): Promise<Seen> {
    const other = await safe(c, make(probeIds[0]));
    const missing = await safe(c, make(probeIds[1]));
    const text = label ?? String((make(probeIds[0]) as pg.QueryConfig).text ?? make(probeIds[0]));
    const norm = (s: Seen) => JSON.stringify({ results: s.results, code: s.error?.code, message: s.error?.message, notices: s.notices });
    assert.is(norm(other), norm(missing), `probe differs between another org's row and a missing row: ${text}`);
    return other;
  }

  return { assertClean, safe, refused, expectRows, probe };
}

/** A libpq connection string to the proxy over verified TLS. */
export function conninfo(h: Harness, user: string, extra = ''): string {
  return `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=${user} sslmode=verify-full sslrootcert=${h.caFile} ${extra}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes a config file of the harness and waits until every reload (explicit and the watcher's) has applied it. */
export async function writeAndReload(h: Harness, file: 'users.yaml' | 'policy.yaml', text: string, message: string): Promise<void> {
  writeFileSync(join(h.dir, file), text);
  await sleep(350); // the watcher's debounce fires its own reload
  assert.ok(await h.proxy.reload(), message);
}
