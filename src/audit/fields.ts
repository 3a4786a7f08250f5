// The fields each audit event may carry. The writer copies only these, so an
// object that happens to hold more (a session, a config, a secret) cannot leak
// into the audit file through a spread or a cast. The compiler checks that each
// list names every field of its event and nothing else: a new event or field in
// record.ts fails to compile here until it is listed.
import type { AuditEvent } from './record.js';
import type { ChainFields } from './chain.js';

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
  auth: list('auth', ['session', 'user', 'address', 'outcome', 'reason', 'method'] as const),
  lockout: list('lockout', ['scope', 'key', 'until'] as const),
  unlock: list('unlock', ['user', 'by'] as const),
  disconnect: list('disconnect', ['session', 'user', 'reason', 'statements', 'durationMs'] as const),
  statement: list('statement', ['session', 'user', 'org', 'fingerprint', 'text', 'relations', 'decision', 'code', 'reason', 'durationMs', 'rows'] as const),
  policy_reload: list('policy_reload', ['generation', 'outcome', 'loosened', 'error'] as const),
  shadow_difference: list('shadow_difference', ['session', 'user', 'fingerprint', 'text', 'active', 'candidate', 'kind', 'reason'] as const),
  admin: list('admin', ['action', 'by', 'target', 'outcome'] as const),
  password_change: list('password_change', ['user', 'via'] as const),
  password_reset: list('password_reset', ['user', 'step'] as const),
} satisfies FieldLists;

/**
 * The event's typed fields only, in a fixed order; undefined values are left out.
 * A statement's `text` is written only under `statements: full` and its
 * `fingerprint` not under `none`: a caller that passes them anyway (a text's
 * literals may be secrets) still gets them left out. Which statement records
 * are written at all is the session's decision (under `none`, refusals only).
 */
export function pickEventFields(event: AuditEvent, statements: 'none' | 'fingerprint' | 'full'): ChainFields {
  const out: ChainFields = { event: event.event };
  const fields: readonly string[] | undefined = (eventFields as Record<string, readonly string[]>)[event.event];
  if (!fields) return out; // an untyped event name (a cast at the caller): its fields are unknown, so none are written
  const source = event as unknown as Record<string, unknown>;
  for (const key of fields) {
    if ((key === 'text' && statements !== 'full') || (key === 'fingerprint' && statements === 'none')) continue;
    const value = plain(source[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Strings, finite numbers, booleans and lists of them; anything else (an object where a string was typed) is left out. */
function plain(value: unknown): unknown {
  if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return value;
  if (Array.isArray(value)) return value.filter((v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)));
  return undefined;
}
