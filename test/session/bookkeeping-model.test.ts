// A generated model test of pgveil's bookkeeping of upstream prepared
// statements and portals (threats A8, C3 in docs/threat-model.md). Seeded sequences of protocol
// Parse/Bind/Execute/Close/Sync and SQL PREPARE/EXECUTE/DEALLOCATE/DECLARE
// [WITH HOLD]/FETCH/CLOSE/BEGIN/COMMIT/ROLLBACK, with failing statements
// (select 1/0) injected before drops, names longer than 63 bytes sharing
// their first 63 bytes (upstream truncates), and policy reloads between
// steps that toggle alice's access to crm.employees (each reload is a new
// policy generation).
//
// Every object a step creates carries a marker 'm<k>' in its select list,
// both as a value and as the column's name, and the test remembers the
// reload epoch each marker was created under. What a use returns (EXECUTE,
// FETCH, protocol Bind/Execute) tells which creation made the upstream
// object that ran. The oracle:
//   1. a marker of an older epoch must never come back (an object made under
//      an older policy ran), and nothing of crm.employees while alice is
//      denied, and never another org's row;
//   2. a prepared statement made under the current epoch, under a name no
//      other step ever touched, must run and return its own marker.
//
// Upstream's own state is read in a sweep, every 5 steps (at the first point
// outside a transaction) and at the end of every sequence. pg_prepared_statements
// and pg_cursors are per-backend and pgveil refuses them, but pgveil forwards
// protocol Describe unchecked: Describe 'S' / 'P' <name> + Sync for every
// name of the model (and the unnamed ones) answers with a RowDescription
// (whose marker column names the creation upstream holds) or with 26000 /
// 34000 when upstream has no such object. Every object upstream has is then
// used through pgveil (a statement: Bind to the unnamed portal + Execute; a
// portal, i.e. a WITH HOLD cursor: Execute), and must either be refused as
// made under an older policy (when its marker is of an older epoch) or run
// and return its own, current marker. pgveil answering "does not exist" for
// an object upstream has (it lost track), anything stale running, or a
// current object refused as stale (a wrong stamp: no step changes
// search_path, and after a Sync pgveil's stamps are exact) fails the seed;
// 42501 is accepted while alice is denied. A sweep only advances WITH HOLD
// cursors, which no oracle depends on. Sweeps add a few seconds (~38 s on
// 18, ~65 s on 14 and 16, in all).
// Seeds are fixed (MODEL_SEED overrides the first); a failure prints the seed
// and the steps so far.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { employeesPolicy, policyDefaults, startHarness, passwords, type Harness } from '../helpers/harness.js';
import { RawClient, cstr, frame, int32, msg, type BackendMessage } from '../helpers/raw-client.js';
import { mulberry32 } from '../helpers/random.js';
import { writeAndReload } from '../threats/ac-support.js';

const SEQUENCES = 30;
const STEPS = 25;
/** A sweep of upstream's objects after this many steps, at the first point outside a transaction. */
const SWEEP_EVERY = 5;
const FIRST_SEED = Number(process.env.MODEL_SEED ?? 20260501);

const extraSql = `INSERT INTO crm.employees VALUES (3, 'acme', 'Cat', '333-44-5555', 70000);`;
const basePolicy = policyDefaults + employeesPolicy;
const denyPolicy = basePolicy.replace('  crm.employees:\n', '  crm.employees:\n    access:\n      deny: { orgs: [acme] }\n');

const stem = 'q'.repeat(63);
/** Statement and cursor names: short ones, and long ones upstream truncates to the same 63 bytes. */
const NAMES = ['a', 'b', `${stem}1`, `${stem}2222222`, stem];

let h: Harness;
test.before(async () => {
  h = await startHarness({ extraSql, policyYaml: basePolicy, tlsMode: 'prefer' });
});
test.after(async () => { await h?.close(); });

const close = (kind: 'S' | 'P', name: string) => frame('C', Buffer.concat([Buffer.from(kind), cstr(name)]));
const executeRows = (portal: string, n: number) => frame('E', Buffer.concat([cstr(portal), int32(n)]));
/** A failing unnamed statement; its marker (a column name) lets a sweep tell which one upstream holds. */
const fail = (w: World) => [msg.parse('', `select 1/0 as ${marker(w)}`), msg.bind('', ''), msg.execute('')];

interface Step { label: string; frames: Buffer[] }

interface World {
  rnd: () => number;
  epoch: number;
  denied: boolean;
  inTx: boolean;
  seq: number;
  /** marker → epoch it was created under. */
  markers: Map<string, number>;
  log: string[];
  next: number;
}

function pick<T>(w: World, xs: readonly T[]): T { return xs[Math.floor(w.rnd() * xs.length)]; }

function marker(w: World): string {
  const m = `m${w.seq}_${w.next++}`;
  w.markers.set(m, w.epoch);
  return m;
}

function body(w: World): { marker: string; sql: string } {
  const m = marker(w);
  const sql = w.rnd() < 0.6
    ? `select '${m}'::text as ${m}, name from crm.employees order by id`
    : `select '${m}'::text as ${m}, label as name from public.lookup order by code`;
  return { marker: m, sql };
}

/** One generated step (everything up to and including a Sync or a simple Query). */
function generate(w: World): Step | 'reload' {
  const r = w.rnd();
  const name = pick(w, NAMES);
  const failFirst = w.rnd() < 0.4;
  if (r < 0.07) return 'reload';
  if (r < 0.17) { const b = body(w); return { label: `PREPARE ${name}`, frames: [msg.query(`PREPARE "${name}" AS ${b.sql}`)] }; }
  if (r < 0.27) { const b = body(w); return { label: `Parse ${name}`, frames: [msg.parse(name, b.sql), msg.sync()] }; }
  if (r < 0.35) {
    const b = body(w);
    const hold = !w.inTx || w.rnd() < 0.5;
    return { label: `DECLARE ${name}${hold ? ' WITH HOLD' : ''}`, frames: [msg.query(`DECLARE "${name}" SCROLL CURSOR${hold ? ' WITH HOLD' : ''} FOR ${b.sql}`)] };
  }
  if (r < 0.41) {
    // a named portal of a fresh unnamed statement (upstream refuses it when a cursor has the name: 42P03)
    const b = body(w);
    return { label: `Parse+Bind portal ${name}`, frames: [msg.parse('', b.sql), msg.bind(name, ''), executeRows(name, 1), msg.sync()] };
  }
  if (r < 0.47) return { label: `${failFirst ? '1/0; ' : ''}DEALLOCATE ${name}`, frames: [msg.query(`${failFirst ? 'select 1/0; ' : ''}DEALLOCATE "${name}"`)] };
  if (r < 0.52) return { label: `${failFirst ? 'fail, ' : ''}Close S ${name}`, frames: [...(failFirst ? fail(w) : []), close('S', name), msg.sync()] };
  if (r < 0.56) return { label: `${failFirst ? '1/0; ' : ''}CLOSE ${name}`, frames: [msg.query(`${failFirst ? 'select 1/0; ' : ''}CLOSE "${name}"`)] };
  if (r < 0.60) return { label: `${failFirst ? 'fail, ' : ''}Close P ${name}`, frames: [...(failFirst ? fail(w) : []), close('P', name), msg.sync()] };
  if (r < 0.68) return { label: `EXECUTE ${name}`, frames: [msg.query(`EXECUTE "${name}"`)] };
  if (r < 0.76) return { label: `Bind '' ${name}`, frames: [msg.bind('', name), msg.execute(''), msg.sync()] };
  if (r < 0.82) return { label: `FETCH ${name}`, frames: [msg.query(`FETCH FIRST FROM "${name}"`)] };
  if (r < 0.86) return { label: `Execute portal ${name}`, frames: [executeRows(name, 1), msg.sync()] };
  if (r < 0.91) return { label: 'BEGIN', frames: [msg.query('BEGIN')] };
  if (r < 0.95) return { label: 'COMMIT', frames: [msg.query('COMMIT')] };
  if (r < 0.98) return { label: 'ROLLBACK', frames: [msg.query('ROLLBACK')] };
  return { label: 'select 1/0', frames: [msg.query('select 1/0')] };
}

const dump = (ms: BackendMessage[]) => ms.map((m) => `${m.type}:${m.body.toString('latin1').replace(/[\0-\x1f]/g, '|')}`).join(' ');

/** Oracle 1 on everything a step received. */
function check(w: World, replies: BackendMessage[], label: string): string[] {
  const found: string[] = [];
  const all = dump(replies);
  const where = () => `seed ${w.seq}, step "${label}"\n  steps: ${w.log.join(' ; ')}\n  replies: ${all}`;
  assert.not.match(all, /Gus|444-55-6666|111-22-3333|333-44-5555/, `LEAK of another org's row or a raw ssn: ${where()}`);
  for (const m of replies) {
    if (m.type !== 'D') continue;
    const text = m.body.toString('latin1');
    const marker = /m\d+_\d+/.exec(text)?.[0];
    if (!marker) continue;
    found.push(marker);
    const made = w.markers.get(marker);
    assert.ok(made !== undefined, `unknown marker ${marker}: ${where()}`);
    assert.ok(made === w.epoch, `STALE: object ${marker} made under epoch ${made} ran under epoch ${w.epoch}: ${where()}`);
    if (w.denied) assert.not.match(text, /Ann|Cat/, `LEAK: crm.employees rows while alice is denied: ${where()}`);
  }
  return found;
}

async function run(c: RawClient, w: World, step: Step): Promise<BackendMessage[]> {
  w.log.push(step.label);
  c.send(...step.frames);
  const replies = await c.untilReady();
  const z = replies.at(-1);
  if (z?.type === 'Z') w.inTx = z.body.toString() !== 'I';
  return replies;
}

let policyDenied = false;
async function reload(w: World): Promise<void> {
  policyDenied = !policyDenied;
  await writeAndReload(h, 'policy.yaml', policyDenied ? denyPolicy : basePolicy, 'policy reload accepted');
  w.epoch++;
  w.denied = policyDenied;
  w.log.push(`reload → ${policyDenied ? 'deny' : 'base'} (epoch ${w.epoch})`);
}

// ── the sweep: what upstream holds, read with Describe, and used through pgveil ──

const describe = (kind: 'S' | 'P', name: string) => frame('D', Buffer.concat([Buffer.from(kind), cstr(name)]));
const sqlstateOf = (m: BackendMessage) => /\0C([0-9A-Z]{5})\0/.exec(`\0${m.body.toString('latin1')}`)?.[1];
const messageOf = (m: BackendMessage) => /\0M([^\0]*)\0/.exec(`\0${m.body.toString('latin1')}`)?.[1] ?? '';

/** The column names of a RowDescription. */
function columns(m: BackendMessage): string[] {
  const out: string[] = [];
  let at = 2;
  for (let i = m.body.readInt16BE(0); i > 0; i--) {
    const end = m.body.indexOf(0, at);
    out.push(m.body.toString('utf8', at, end));
    at = end + 1 + 18;
  }
  return out;
}

/** Sweep counts: objects (distinct upstream keys per sweep), uses (one per name: the long names share an object), and how the uses ended. */
interface Tally { objects: number; uses: number; stale: number; current: number; exhausted: number; denied: number; failures: number }
const tally: Tally = { objects: 0, uses: 0, stale: 0, current: 0, exhausted: 0, denied: 0, failures: 0 };

/**
 * Reads which of the model's statements and portals upstream holds (Describe
 * is forwarded unchecked) and uses each through pgveil: refused as made
 * under an older policy exactly when its marker is of an older epoch, run
 * (with its own marker, if it returns rows) otherwise. Outside a transaction
 * only: a checkpoint ends one first.
 */
async function sweep(c: RawClient, w: World, why: string): Promise<void> {
  try {
    await sweepOnce(c, w, why);
  } catch (e) {
    tally.failures++;
    throw e;
  }
}

async function sweepOnce(c: RawClient, w: World, why: string): Promise<void> {
  assert.not.ok(w.inTx, 'a sweep runs outside a transaction');
  w.log.push(`sweep (${why})`);
  const seen = new Set<string>();
  for (const kind of ['S', 'P'] as const) {
    for (const name of [...NAMES, '']) {
      const what = `${kind === 'S' ? 'statement' : 'portal'} "${name.length > 12 ? `${name.slice(0, 4)}…(${name.length})` : name}"`;
      const where = (replies: BackendMessage[]) => `seed ${w.seq}, sweep (${why}), ${what} under epoch ${w.epoch}${w.denied ? ' (denied)' : ''}\n  steps: ${w.log.join(' ; ')}\n  replies: ${dump(replies)}`;
      c.send(describe(kind, name), msg.sync());
      const described = await c.untilReady();
      const error = described.find((m) => m.type === 'E');
      if (error) {
        // upstream has no such object
        assert.is(sqlstateOf(error), kind === 'S' ? '26000' : '34000', `Describe failed unexpectedly: ${where(described)}`);
        continue;
      }
      const row = described.find((m) => m.type === 'T');
      const made = row ? columns(row).find((col) => /^m\d+_\d+$/.test(col)) : undefined;
      assert.ok(made && w.markers.has(made), `upstream holds an object without a known marker: ${where(described)}`);
      const epoch = w.markers.get(made as string) as number;
      const key = `${kind}:${name.slice(0, 63)}`;
      if (!seen.has(key)) { seen.add(key); tally.objects++; }
      tally.uses++;

      const label = `sweep ${kind === 'S' ? `Bind '' ${name}` : `Execute portal ${name}`} (upstream: ${made}, epoch ${epoch})`;
      const replies = await run(c, w, { label, frames: kind === 'S' ? [msg.bind('', name), msg.execute(''), msg.sync()] : [msg.execute(name), msg.sync()] });
      const markers = check(w, replies, label); // oracle 1: never a stale marker, a leak, another org's row
      const refusal = replies.find((m) => m.type === 'E');
      const text = refusal ? messageOf(refusal) : '';
      if (refusal && /does not exist/.test(text)) {
        assert.unreachable(`LOST: upstream holds ${what} (${made}, epoch ${epoch}) but pgveil says ${sqlstateOf(refusal)} "${text}": ${where(replies)}`);
      }
      const staleRefusal = refusal && sqlstateOf(refusal) === '26000' && /made under (an older policy|another search_path)/.test(text);
      if (epoch !== w.epoch) {
        // made under an older policy: must be refused, whatever it would have returned
        assert.ok(staleRefusal, `STALE: upstream's ${what} was made under epoch ${epoch} (${made}) and was not refused as stale under epoch ${w.epoch}: ${where(replies)}`);
        tally.stale++;
        continue;
      }
      // current: it must run, returning its own marker if anything
      assert.not.ok(staleRefusal, `MIS-STAMPED: upstream's ${what} was made under the current epoch ${epoch} (${made}) yet refused as stale: ${where(replies)}`);
      if (refusal) {
        const ok = sqlstateOf(refusal) === '22012' || (w.denied && sqlstateOf(refusal) === '42501');
        assert.ok(ok, `unexpected error using upstream's current ${what} (${made}): ${where(replies)}`);
      }
      assert.ok(markers.every((m) => m === made), `rows of another object than upstream described (${made}): ${where(replies)}`);
      if (refusal && sqlstateOf(refusal) === '42501') tally.denied++;
      else if (markers.length || refusal) tally.current++; // its rows, or the division by zero of a failing statement
      else {
        assert.is(kind, 'P', `upstream's current ${what} (${made}) ran and returned no rows: ${where(replies)}`);
        tally.exhausted++; // a cursor already read to its end
      }
    }
  }
}

test('A8 C3 generated sequences: an object made under an older policy never runs; a current one does', async () => {
  const started = Date.now();
  let uses = 0;
  let staleRefusals = 0;
  const failures: string[] = [];
  for (let s = 0; s < SEQUENCES; s++) {
    const seed = FIRST_SEED + s;
    const w: World = { rnd: mulberry32(seed), epoch: 0, denied: policyDenied, inTx: false, seq: seed, markers: new Map(), log: [], next: 0 };
    const c = await RawClient.connect(h.proxy.port);
    await c.login('alice@acme.com', passwords['alice@acme.com']);
    try {
      let sinceSweep = 0;
      for (let i = 0; i < STEPS; i++) {
        const step = generate(w);
        sinceSweep++;
        if (step === 'reload') { await reload(w); continue; }
        const replies = await run(c, w, step);
        if (check(w, replies, step.label).length) uses++;
        if (replies.some((m) => m.type === 'E' && /was made under|older policy|cannot be used/.test(m.body.toString()))) staleRefusals++;
        if (sinceSweep >= SWEEP_EVERY && !w.inTx) { await sweep(c, w, `after step ${i + 1}`); sinceSweep = 0; }
      }
      // checkpoint: end any transaction, then use every name both ways
      if (w.inTx) await run(c, w, { label: 'ROLLBACK (checkpoint)', frames: [msg.query('ROLLBACK')] });
      if (w.rnd() < 0.5) await reload(w);
      for (const name of NAMES) {
        for (const step of [
          { label: `checkpoint EXECUTE ${name}`, frames: [msg.query(`EXECUTE "${name}"`)] },
          { label: `checkpoint Bind '' ${name}`, frames: [msg.bind('', name), msg.execute(''), msg.sync()] },
          { label: `checkpoint FETCH ${name}`, frames: [msg.query(`FETCH FIRST FROM "${name}"`)] },
          { label: `checkpoint Execute portal ${name}`, frames: [executeRows(name, 1), msg.sync()] },
        ]) check(w, await run(c, w, step), step.label);
      }
      await sweep(c, w, 'end of sequence');
      // oracle 2: a fresh statement under the current epoch works, by SQL and by protocol
      const fresh = `fresh_${seed}`;
      const b = body(w);
      const readable = !w.denied || b.sql.includes('public.lookup');
      const made = await run(c, w, { label: `PREPARE ${fresh}`, frames: [msg.query(`PREPARE ${fresh} AS ${b.sql}`)] });
      if (readable) {
        assert.not.ok(made.some((m) => m.type === 'E'), `PREPARE of a fresh name failed: seed ${seed}: ${dump(made)}\n  steps: ${w.log.join(' ; ')}`);
        for (const step of [
          { label: `EXECUTE ${fresh}`, frames: [msg.query(`EXECUTE ${fresh}`)] },
          { label: `Bind '' ${fresh}`, frames: [msg.bind('', fresh), msg.execute(''), msg.sync()] },
        ]) {
          const got = check(w, await run(c, w, step), step.label);
          assert.ok(got.includes(b.marker), `a current statement must run: seed ${seed}, ${step.label}\n  steps: ${w.log.join(' ; ')}`);
        }
      }
    } catch (e) {
      // every failing seed is reported; the policy is put back for the next sequence
      failures.push(`seed ${seed} (MODEL_SEED=${seed} replays it first): ${(e as Error).message}`);
    } finally {
      c.close();
    }
  }
  if (policyDenied) await reload({ epoch: 0, log: [] } as unknown as World);
  console.log(`bookkeeping model: ${SEQUENCES} sequences × ${STEPS} steps, ${uses} uses returned rows, ${staleRefusals} stale refusals, ${failures.length} failing seeds; `
    + `sweeps: ${tally.objects} upstream objects swept by ${tally.uses} uses: ${tally.stale} refused as stale, ${tally.current} ran current, `
    + `${tally.exhausted} ran current on an exhausted cursor, ${tally.denied} refused while denied, ${tally.failures} failures; ${Date.now() - started} ms`);
  for (const f of failures) console.error(`  ${f.split('\n')[0].slice(0, 400)}`);
  assert.is(failures.length, 0, `${failures.length} of ${SEQUENCES} sequences failed; the first:\n\n${failures.slice(0, 3).join('\n\n')}`);
});

test.run();
