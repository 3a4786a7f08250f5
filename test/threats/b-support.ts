// What b-redacted-values.test.ts and b-statistics-explain.test.ts (docs/threat-model.md
// section B) share: the hr.staff fixture rows, the leak scanner (oracle 1),
// and the client wrapper that runs it on every answer a client receives.
import * as assert from 'uvu/assert';
import pg from 'pg';
import type { Harness } from '../helpers/harness.js';

// ── fixture ──────────────────────────────────────────────────────────────────

/**
 * Inserts the 600 rows of hr.staff: even ids are acme, odd ids globex
 * (interleaved, so a leaky plan meets other orgs' rows first). Each row is
 * (id, org, name, ssn, salary, emp_no, email, …`moreColumns`), computed from
 * i (the id), o (the org) and n (the name).
 */
export function staffInsertSql(moreColumns: string): string {
  return `INSERT INTO hr.staff
SELECT i, o, n,
  CASE WHEN o = 'acme' THEN '900' ELSE '901' END || '-' || lpad((i % 97)::text, 2, '0') || '-' || (1000 + (i * 37) % 50)::text,
  40000 + (i * 7919) % 60000 + 0.37,
  50000 + i,
  lower(n) || '.x@' || CASE WHEN o = 'acme' THEN 'acme-corp.example' ELSE 'globex-inc.example' END,
${moreColumns}
FROM (SELECT i, CASE WHEN i % 2 = 0 THEN 'acme' ELSE 'globex' END AS o,
             CASE WHEN i % 2 = 0 THEN 'AcmeName' ELSE 'GlobexCanary' END || lpad(i::text, 4, '0') AS n
      FROM generate_series(1, 600) i) g;`;
}

// ── forbidden values ─────────────────────────────────────────────────────────

/** Per user: raw values (lower case) and patterns that user must never see. */
export interface Forbidden { exact: Set<string>; patterns: RegExp[] }

export function hexWindows(hex: string, width = 16): string[] {
  const out: string[] = [];
  for (let i = 0; i + width <= hex.length; i++) out.push(hex.slice(i, i + width));
  return out;
}

/** The HMAC inner and outer pads of the key. */
export function keyPads(key: Buffer): Buffer[] {
  const k = Buffer.alloc(64);
  key.copy(k);
  return [Buffer.from(k.map((b) => b ^ 0x36)), Buffer.from(k.map((b) => b ^ 0x5c))];
}

/**
 * Oracle 1: finds, in what a client received, values of the user's
 * `forbidden` set (matched through `shapes`, the value shapes to look for)
 * and the scramble key in any encoding (secret, key and HMAC pads; hex
 * slices, base64).
 */
export class LeakScanner {
  readonly forbidden = new Map<string, Forbidden>();
  private readonly keyHexWindows: Set<string>;
  private readonly keyStrings: string[];

  constructor(secret: string, key: Buffer, private readonly shapes: RegExp[]) {
    this.keyHexWindows = new Set([key, ...keyPads(key)].flatMap((b) => hexWindows(b.toString('hex'))));
    this.keyStrings = [secret, key.toString('base64'), key.toString('base64url')];
  }

  /** What in `text` the viewer must never see. Values the statement itself contains are echoes, not leaks. */
  readonly leaksIn = (user: string, sql: string, text: string): string[] => {
    const f = this.forbidden.get(user);
    if (!f) throw new Error(`no forbidden set for ${user}`);
    const found = new Set<string>();
    const lowerSql = sql.toLowerCase();
    for (const shape of this.shapes) {
      for (const m of text.matchAll(shape)) {
        const v = m[0].toLowerCase();
        if (f.exact.has(v) && !lowerSql.includes(v)) found.add(`raw value ${m[0]}`);
      }
    }
    for (const p of f.patterns) {
      const m = text.match(p);
      if (m && !sql.match(p)) found.add(`pattern ${p} (${m[0]})`);
    }
    for (const m of text.matchAll(/[0-9a-fA-F]{16,}/g)) {
      if (hexWindows(m[0].toLowerCase()).some((w) => this.keyHexWindows.has(w))) found.add('the scramble key (hex)');
    }
    for (const s of this.keyStrings) if (text.includes(s)) found.add('the scramble key');
    return [...found];
  };
}

// ── clients ──────────────────────────────────────────────────────────────────

/** Every value as the text PostgreSQL sent. */
export const rawTypes = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
export type Cell = string | null;
export interface Field { name: string; dataTypeID: number; dataTypeModifier: number }
export interface DbError { code?: string; message: string; detail?: string; hint?: string; [k: string]: unknown }
/** One answer; `F` is how a column is described (its name alone, or a Field). */
export interface Res<F = Field> { rows: Cell[][]; fields: F[]; rowCount: number | null; error?: DbError; notices: string[]; count: number }
export type FieldOf<F> = (f: pg.FieldDef) => F;
export const fieldInfo: FieldOf<Field> = (f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier });
export const fieldName: FieldOf<string> = (f) => f.name;

/** The string-valued own properties of an error or notice (all its fields), without the stack. */
export function strings(o: unknown): string[] {
  if (!o || typeof o !== 'object') return [];
  return Object.getOwnPropertyNames(o).filter((k) => k !== 'stack').map((k) => (o as Record<string, unknown>)[k])
    .filter((v): v is string => typeof v === 'string');
}

/** The last result set of a query (or its error) as a Res. */
export function toRes<F>(res: unknown, error: unknown, notices: string[], field: FieldOf<F>): Res<F> {
  const results = (res ? (Array.isArray(res) ? res : [res]) : []) as pg.QueryResult[];
  const last = results[results.length - 1];
  return {
    rows: (last?.rows ?? []) as unknown as Cell[][],
    fields: (last?.fields ?? []).map(field),
    rowCount: last?.rowCount ?? null,
    error: error ? (error as DbError) : undefined,
    notices,
    count: results.length,
  };
}

/** Everything the client received: column names, cells, every field of the error, notices. */
export function resText(r: Res<Field | string>): string {
  return [
    ...r.fields.map((f) => (typeof f === 'string' ? f : f.name)),
    ...r.rows.flat().map((c) => c ?? ''),
    ...(r.error ? strings(r.error) : []),
    ...r.notices,
  ].join('\n');
}

export function errorSummary(r: Res<unknown>): string | undefined {
  return r.error ? `${r.error.code ?? '?'} ${r.error.message}${r.error.detail ? ` DETAIL ${r.error.detail}` : ''}` : undefined;
}

/** A client of `user`: every statement's answer is scanned for leaks. */
export class Conn<F extends Field | string = Field> {
  private notices: string[] = [];
  constructor(readonly user: string, readonly client: pg.Client, private readonly scanner: LeakScanner, private readonly field: FieldOf<F>) {
    client.on('notice', (n) => { this.notices.push(strings(n).join('\n')); });
    client.on('error', () => { /* reported by the next query */ });
  }
  /** Runs a statement through pgveil and fails the test if anything received leaks. */
  async q(sql: string, values?: unknown[]): Promise<Res<F>> {
    this.notices = [];
    let res: unknown;
    let error: unknown;
    try {
      res = await this.client.query({ text: sql, values, rowMode: 'array' } as pg.QueryConfig);
    } catch (e) { error = e; }
    const r = toRes(res, error, this.notices, this.field);
    const leaks = this.scanner.leaksIn(this.user, sql, resText(r));
    assert.equal(leaks, [], `LEAK to ${this.user} from: ${sql}\n${resText(r).slice(0, 2000)}`);
    return r;
  }
  text(r: Res<F>): string { return r.rows.map((x) => x.join(' ')).join('\n'); }
}

/** Connects a client and remembers it in `open` (closed after each test). */
export async function openClient(config: pg.ClientConfig, open: pg.Client[]): Promise<pg.Client> {
  const client = new pg.Client(config);
  await client.connect();
  open.push(client);
  return client;
}

/** The upstream superuser on `analytics`, values as text: the reference side of the oracles. */
export async function superuser(h: Harness): Promise<pg.Client> {
  const su = new pg.Client({ host: '127.0.0.1', port: h.pg.port, user: h.pg.user, password: h.pg.password, database: 'analytics', types: rawTypes });
  await su.connect();
  return su;
}

export async function closeAll(open: pg.Client[]): Promise<void> {
  await Promise.all(open.splice(0).map((c) => c.end().catch(() => undefined)));
}
