// Threat A11 in docs/threat-model.md (grammar drift): a text an older upstream reads differently
// from PostgreSQL 18's grammar is refused; one its grammar rejects gets that
// grammar's syntax error; ordinary client SQL passes on every major. No
// server needed: the grammars are @pgsql/parser's builds of each major.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, parseSync } from 'libpg-query';
import { grammarDrift, loadGrammar, majorOf } from '../../src/rewrite/grammar-drift.js';
import { checkServerVersion, serverVersionProblem } from '../../src/catalog/upstream-version.js';

const OLDER = [14, 15, 16, 17];

test.before(async () => {
  await loadModule();
  for (const m of OLDER) await loadGrammar(m);
});

function drift(sql: string, major: number) {
  return grammarDrift(sql, parseSync(sql).stmts ?? [], major);
}

function refusedOn(sql: string, majors: number[]) {
  for (const m of majors) {
    const e = drift(sql, m);
    assert.ok(e, `${sql} must be refused on PostgreSQL ${m}`);
    assert.is(e!.code, '42601', `${sql} on ${m}`);
  }
}

function passesOn(sql: string, majors: number[]) {
  for (const m of majors) assert.is(drift(sql, m)?.message, undefined, `${sql} must pass on PostgreSQL ${m}`);
}

test('A11 0x10 is refused on PostgreSQL 14 (it reads 0 AS x10)', () => {
  const e = drift('select 0x10', 14);
  assert.ok(e);
  assert.match(e!.message, /read differently by PostgreSQL 14 than by pgveil/);
  assert.match(e!.detail ?? '', /int 16.*int 0, name x10/);
  assert.match(e!.hint ?? '', /16, not 0x10/);
});

test('A11 0x10, 0o17, 0b101 and 1_000 are refused on PostgreSQL 14 and 15, read as numbers on 16 and 17', () => {
  for (const sql of ['select 0x10', 'select 0o17', 'select 0b101', 'select 1_000', 'select .5_0', 'select 0x10 from hr.employees', 'select 1_000 as n']) {
    refusedOn(sql, [14, 15]);
    passesOn(sql, [16, 17]);
  }
});

test('A11 0x10 where PostgreSQL 14 cannot parse it: answered with its syntax error and position', () => {
  const e = drift('select 1 from t where a = 0x10', 14);
  assert.ok(e);
  assert.is(e!.code, '42601');
  assert.is(e!.message, 'syntax error at or near "x10"');
  assert.is(e!.position, 'select 1 from t where a = 0'.length + 1);
});

test('A11 123abc and 1e are syntax errors to pgveil already (never reach the drift check)', () => {
  for (const sql of ['select 123abc', 'select 1e', 'select 0x']) assert.throws(() => parseSync(sql));
});

test('A11 keywords older majors read as columns (system_user on 14/15) are refused there', () => {
  refusedOn('select system_user from hr.employees', [14, 15]);
  passesOn('select system_user', [16, 17]);
});

test('A11 syntax newer than the upstream gets the upstream grammar\'s syntax error', () => {
  const e = drift('merge into t using u on t.a = u.a when matched then delete', 14);
  assert.is(e?.message, 'syntax error at or near "merge"');
  assert.is(e?.position, 1);
  passesOn('merge into t using u on t.a = u.a when matched then delete', [15, 16, 17]);
});

test('A11 PostgreSQL 18 and newer upstreams are not checked', () => {
  assert.is(grammarDrift('select 0x10', parseSync('select 0x10').stmts ?? [], 18), undefined);
  assert.is(majorOf(140011), 14);
  assert.is(majorOf(180004), 18);
});

test('A11 the spellings that differ only in layout between majors compare equal', () => {
  const sql = [
    "select extract(year from d), trim(both 'x' from s), substring(s from 2 for 3), position('a' in s), overlay(s placing 'x' from 2 for 1) from t",
    'select current_user, current_role, session_user, user, current_schema, current_catalog, current_date, localtimestamp(3)',
    "select interval '1 day', interval '1' year, cast(x as numeric(10,2)), x::varchar(10), timestamptz '2020-01-01' at time zone 'UTC', true, false, null, 0, -1, 1.5, 2147483648, B'101', X'ff'",
    'select sum(x) filter (where y > 0), percentile_cont(0.5) within group (order by x), row_number() over (partition by a order by b) from t group by grouping sets ((a), ()), cube(a, b), rollup(a)',
    "select coalesce(a, 0), nullif(a, 0), greatest(1, 2), array[1,2], row(1,2), a in (1,2), a = any(array[1]), case when a then 1 else 0 end, j->>'k' from only s.t as x(a, b)",
    'create table t (a json, b jsonb, c int)',
    "select 1 as \"0x10\", 2 z, 3 as \"select\", t.* from s.t",
  ];
  for (const s of sql) passesOn(s, OLDER);
});

function testStatements(): Set<string> {
  const out = new Set<string>(JSON.parse(readFileSync('test/corpus/client-statements.json', 'utf8')) as string[]);
  const files = (d: string): string[] => readdirSync(d).flatMap((f) => {
    const p = join(d, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
  // Every SQL-looking string literal of the test suite (threat tests included).
  for (const f of files('test')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`|"((?:[^"\\\n]|\\.)*)"/g)) {
      const s = (m[1] ?? m[2] ?? m[3]).replace(/\\'/g, "'").replace(/\\n/g, '\n');
      if (/^\s*(select|with|insert|update|delete|show|set|begin|values|table|explain|prepare|declare|fetch|copy|create|lock|call)\b/i.test(s) && !s.includes('${')) out.add(s);
    }
  }
  return out;
}

/** Statements of the suite that spell something the 16+ way or use syntax the older major lacks, on purpose. */
const DELIBERATE = /0x|0o|0b|\d_\d|\.\d+_|^\s*merge\b|system_user|merge_action|json_scalar|\bis json\b|json_object\(|\breturning with \(/i;

test('A11 ordinary corpus statements pass on 14–17', () => {
  let checked = 0;
  const flagged: string[] = [];
  for (const sql of testStatements()) {
    let stmts: unknown[];
    try { stmts = parseSync(sql).stmts ?? []; } catch { continue; }
    if (DELIBERATE.test(sql)) continue;
    checked++;
    for (const m of OLDER) {
      const e = grammarDrift(sql, stmts, m);
      if (e) flagged.push(`PostgreSQL ${m}: ${e.message} ${e.detail ?? ''}: ${sql.slice(0, 160)}`);
    }
  }
  assert.ok(checked > 500, `only ${checked} statements checked`);
  assert.equal(flagged, []);
});

test('an upstream older than 14 is refused with one line naming the version and the range', () => {
  const p = serverVersionProblem(130012, '13.12');
  assert.is(p, 'the upstream is PostgreSQL 13.12 (server_version_num 130012); pgveil supports PostgreSQL 14 to 18: upgrade the upstream server');
  assert.not.match(p!, /\n/);
  assert.throws(() => checkServerVersion(90624, '9.6.24'), (e: Error) => e.name === 'ConfigError' && /9\.6\.24.*14 to 18/.test(e.message));
  assert.ok(serverVersionProblem(Number.NaN));
  for (const v of [140000, 140011, 150005, 160001, 170004, 180004, 190000]) assert.is(serverVersionProblem(v), undefined, String(v));
});

test.run();
