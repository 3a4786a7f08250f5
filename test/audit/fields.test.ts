// The audit record's JSON text, field by field, against a reference made the
// obvious way: pick the event's typed fields in order, leave out undefined and
// non-plain values and what the statements mode withholds, JSON.stringify.
// The statement record has a path of its own (one is written per statement):
// random statement events in every mode must come out identical, also when a
// session's cached head is reused and when user or org change under one id.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventFieldsJson } from '../../src/audit/fields.js';
import type { AuditEvent } from '../../src/audit/record.js';
import { mulberry32 } from '../helpers/random.js';

const statementFields = ['session', 'user', 'org', 'fingerprint', 'text', 'relations', 'decision', 'code', 'reason', 'durationMs', 'rows'] as const;
type Mode = 'none' | 'fingerprint' | 'full';

function reference(event: Record<string, unknown>, mode: Mode): string {
  const out: Record<string, unknown> = { event: event.event };
  for (const key of statementFields) {
    if ((key === 'text' && mode !== 'full') || (key === 'fingerprint' && mode === 'none')) continue;
    const v = event[key];
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[key] = v;
    else if (Array.isArray(v)) out[key] = v.filter((x) => typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)));
  }
  return JSON.stringify(out).slice(1, -1);
}

test('statement records match the reference in every mode, with odd values, shared heads and changed identities', () => {
  const strings = ['0-1', '0-2', 'alice@acme.com', 'zoë "q"@acme.com', 'a\\b\n\t\u0001', '☃', '', 'acme'];
  const values: unknown[] = [...strings, undefined, 7, 1.25, Number.NaN, Number.POSITIVE_INFINITY, true, { o: 1 }, null];
  const frozen = Object.freeze(['public.t', 'sales."Q\\1"']);
  const decisions: unknown[] = ['forwarded', 'rewritten', 'refused', 'syntax_error', 'other', 3, undefined];
  for (let seed = 1; seed <= 3000; seed++) {
    const r = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
    const event: Record<string, unknown> = {
      event: 'statement', session: pick(['0-1', '0-2', '1-9', 5, undefined]), user: pick(values), org: pick(values),
      fingerprint: pick(values), text: pick(values), relations: pick([frozen, ['x', 1, { y: 2 }, Number.NaN], [], undefined, 'not a list']),
      decision: pick(decisions), code: pick(values), reason: pick(values), durationMs: pick(values), rows: pick(values),
    };
    for (const mode of ['none', 'fingerprint', 'full'] as const) {
      assert.is(eventFieldsJson(event as unknown as AuditEvent, mode), reference(event, mode), `seed ${seed}, mode ${mode}`);
    }
  }
});

test('durations as sessions round them read as JSON.stringify writes them', () => {
  const r = mulberry32(7);
  const samples = [0, 0.001, 0.01, 0.1, 0.005, 0.05, 0.12, 0.105, 1, 1.5, 999.999, 1000, 12345.678, 1073741.823, 1073741.824, 5e6 + 0.25, -0.001, 0.0005, 1e-7, 2 ** 53];
  for (let i = 0; i < 200000; i++) samples.push(Math.round(r() * 10 ** (1 + Math.floor(r() * 9))) / 1000);
  for (const durationMs of samples) {
    const e: AuditEvent = { event: 'statement', session: '0-1', user: 'u', relations: [], decision: 'forwarded', durationMs };
    assert.is(eventFieldsJson(e, 'fingerprint'), JSON.stringify(e).slice(1, -1), String(durationMs));
  }
});

test('other events keep the generic layout', () => {
  const e: AuditEvent = { event: 'auth', session: '0-1', user: 'bob', address: '127.0.0.1', outcome: 'failure', reason: 'wrong_password', method: 'scram-sha-256' };
  assert.is(eventFieldsJson(e, 'fingerprint'), JSON.stringify(e).slice(1, -1));
});

test.run();
