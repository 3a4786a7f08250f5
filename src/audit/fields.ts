// The fields each audit event may carry. The writer copies only these, so an
// object that happens to hold more (a session, a config, a secret) cannot leak
// into the audit file through a spread or a cast. The compiler checks that each
// list names every field of its event and nothing else: a new event or field in
// record.ts fails to compile here until it is listed.
import type { AuditEvent } from './record.js';

type EventName = AuditEvent['event'];
type FieldsOf<E extends EventName> = Exclude<keyof Extract<AuditEvent, { event: E }>, 'event'>;
/** The list type must name every field (no missing key) and only fields (element type). */
type Complete<E extends EventName, L extends readonly FieldsOf<E>[]> = [FieldsOf<E>] extends [L[number]] ? L : never;
type FieldLists = { [E in EventName]: readonly FieldsOf<E>[] };

function list<E extends EventName, L extends readonly FieldsOf<E>[]>(_event: E, fields: Complete<E, L>): L {
  return fields;
}

const eventFields = {
  connect: list('connect', ['session', 'address', 'tls'] as const),
  refused_connection: list('refused_connection', ['address', 'reason'] as const),
  auth: list('auth', ['session', 'user', 'address', 'outcome', 'reason', 'method', 'detail'] as const),
  lockout: list('lockout', ['scope', 'key', 'until'] as const),
  unlock: list('unlock', ['user', 'by'] as const),
  disconnect: list('disconnect', ['session', 'user', 'reason', 'statements', 'durationMs'] as const),
  statement: list('statement', ['session', 'user', 'org', 'fingerprint', 'text', 'relations', 'decision', 'code', 'reason', 'durationMs', 'rows'] as const),
  policy_reload: list('policy_reload', ['generation', 'outcome', 'loosened', 'error'] as const),
  shadow_difference: list('shadow_difference', ['session', 'user', 'fingerprint', 'text', 'active', 'candidate', 'kind', 'reason'] as const),
  admin: list('admin', ['action', 'by', 'target', 'outcome'] as const),
  password_change: list('password_change', ['user', 'via'] as const),
  password_reset: list('password_reset', ['user', 'step', 'via'] as const),
  sso_login: list('sso_login', ['user', 'org', 'via', 'outcome', 'reason', 'detail', 'address'] as const),
} satisfies FieldLists;

/**
 * The event's typed fields as JSON text without the braces (`"event":…,…`),
 * in a fixed order; undefined values and values that are not plain (an object
 * where a string was typed) are left out. A statement's `text` is written
 * only under `statements: full` and its `fingerprint` not under `none`: a
 * caller that passes them anyway (a text's literals may be secrets) still
 * gets them left out. Which statement records are written at all is the
 * session's decision (under `none`, refusals only).
 *
 * Built field by field, as JSON.stringify of an object of these fields would
 * lay them out, so no object is made and walked per record (one is written
 * per statement). A frozen list (a statement's relations, shared by every
 * record of a cached statement) is serialised once.
 */
export function eventFieldsJson(event: AuditEvent, statements: 'none' | 'fingerprint' | 'full'): string {
  if (event.event === 'statement') return statementFieldsJson(event, statements);
  let json = `"event":${JSON.stringify(event.event)}`;
  const fields: readonly string[] | undefined = (eventFields as Record<string, readonly string[]>)[event.event];
  if (!fields) return json;
  const source = event as unknown as Record<string, unknown>;
  for (const key of fields) {
    if ((key === 'text' && statements !== 'full') || (key === 'fingerprint' && statements === 'none')) continue;
    json += fieldJson(key, source[key]);
  }
  return json;
}

/** `,"key":value` for a plain value (string, finite number, boolean, list of those), '' for anything else. */
function fieldJson(key: string, value: unknown): string {
  if (typeof value === 'string') return `,"${key}":${JSON.stringify(value)}`;
  if (typeof value === 'number') return Number.isFinite(value) ? `,"${key}":${value}` : '';
  if (typeof value === 'boolean') return `,"${key}":${value}`;
  if (Array.isArray(value)) return `,"${key}":${listJson(value)}`;
  return '';
}

const frozenListJson = new WeakMap<readonly unknown[], string>();

function listJson(list: readonly unknown[]): string {
  if (!Object.isFrozen(list)) return JSON.stringify(plain(list));
  let json = frozenListJson.get(list);
  if (json === undefined) frozenListJson.set(list, json = JSON.stringify(plain(list)));
  return json;
}

/** The plain elements of a list: strings, finite numbers, booleans. */
function plain(list: readonly unknown[]): unknown[] {
  return list.filter((v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)));
}

type StatementEvent = Extract<AuditEvent, { event: 'statement' }>;

/**
 * The statement record, the one written per statement: the same text the
 * generic loop makes (the writer test compares both with JSON.stringify),
 * without a keyed lookup per field. Everything before the duration is kept
 * per session and reused while the session repeats a statement with the
 * same outcome (a dashboard's refresh, a driver's poll): then only the
 * duration and row count are made.
 */
function statementFieldsJson(e: StatementEvent, statements: 'none' | 'fingerprint' | 'full'): string {
  return statementHead(e, statements) + durationJson(e.durationMs) + fieldJson('rows', e.rows);
}

/** The record of a session's last statement, up to its duration (the fields the JSON was made from, and the JSON). */
interface StatementHead {
  user: unknown; org: unknown; fingerprint: unknown; text: unknown; relations: unknown; decision: unknown; code: unknown; reason: unknown;
  statements: string;
  json: string;
}

/** Per session id; cleared when it grows past this many sessions (a reconnecting client gets a new id). */
const statementHeads = new Map<unknown, StatementHead>();
const MAX_SESSION_HEADS = 4096;

function statementHead(e: StatementEvent, statements: 'none' | 'fingerprint' | 'full'): string {
  const last = statementHeads.get(e.session);
  // A list is reused only when frozen: the same list then has the same elements.
  if (last && last.user === e.user && last.org === e.org && last.fingerprint === e.fingerprint && last.text === e.text
    && last.relations === e.relations && Object.isFrozen(e.relations) && last.decision === e.decision && last.code === e.code
    && last.reason === e.reason && last.statements === statements) return last.json;
  let json = `"event":"statement"${fieldJson('session', e.session)}${fieldJson('user', e.user)}${fieldJson('org', e.org)}`;
  if (statements !== 'none') json += fieldJson('fingerprint', e.fingerprint);
  if (statements === 'full') json += fieldJson('text', e.text);
  json += fieldJson('relations', e.relations);
  json += decisionJson[e.decision] ?? fieldJson('decision', e.decision);
  if (e.code !== undefined) json += fieldJson('code', e.code);
  if (e.reason !== undefined) json += fieldJson('reason', e.reason);
  if (last) {
    Object.assign(last, { user: e.user, org: e.org, fingerprint: e.fingerprint, text: e.text, relations: e.relations, decision: e.decision, code: e.code, reason: e.reason, statements, json });
  } else {
    if (statementHeads.size >= MAX_SESSION_HEADS) statementHeads.clear();
    statementHeads.set(e.session, { user: e.user, org: e.org, fingerprint: e.fingerprint, text: e.text, relations: e.relations, decision: e.decision, code: e.code, reason: e.reason, statements, json });
  }
  return json;
}

/**
 * `,"durationMs":…` as fieldJson writes it. A session's duration is whole
 * microseconds (ms rounded to three decimals): its text is made from the
 * integer, because a double's shortest text (`0.123`) cost as much as the
 * line's SHA-256. Any other number takes fieldJson's path.
 */
function durationJson(ms: unknown): string {
  if (typeof ms !== 'number') return fieldJson('durationMs', ms);
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us <= 0x3fffffff && us / 1000 === ms)) return fieldJson('durationMs', ms);
  const whole = Math.floor(us / 1000);
  const frac = us - whole * 1000;
  if (frac === 0) return `,"durationMs":${whole}`;
  // The fraction's digits without trailing zeros: k/1000 reads back as exactly this decimal.
  const digits = frac % 100 === 0 ? `${frac / 100}` : frac % 10 === 0 ? `${frac < 100 ? '0' : ''}${frac / 10}` : `${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
  return `,"durationMs":${whole}.${digits}`;
}

/** The decision field of the four decisions, made once (an own-property map: no inherited keys). */
const decisionJson: Record<string, string | undefined> = Object.assign(Object.create(null) as Record<string, string>, {
  forwarded: ',"decision":"forwarded"', rewritten: ',"decision":"rewritten"', refused: ',"decision":"refused"', syntax_error: ',"decision":"syntax_error"',
});
