// Property test of the rewriter: for random SELECT shapes over a
// small three-tenant schema — joins, subqueries, CTEs (recursive too),
// aggregates with GROUP BY/HAVING, window functions, DISTINCT, ORDER BY/LIMIT,
// predicates on masked and unmasked columns, set operations, LATERAL, and
// rarer forms (USING/NATURAL joins, column alias lists, ROLLUP/CUBE, WITH
// TIES, whole-row references, bare names under SET search_path), sent over
// the simple and the extended protocol — the rows a user gets through
// pgveil equal the rows the same SQL returns directly upstream, run as
// superuser, with every table name replaced by a reference view that applies
// the user's filter and masks written by hand.
// Compared as multisets, with column names and types. Bounded and seeded:
// PGVEIL_PROP_SEED and PGVEIL_PROP_CASES override the defaults
// (PGVEIL_PROP_VERBOSE=1 lists every statement); a failure prints the seed,
// the case number and the statement.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, type Harness } from '../helpers/harness.js';
import { scrambleInstallSql, scrambleKeyFromSecret } from '../../src/policy/scramble-sql.js';

const SEED = Number(process.env.PGVEIL_PROP_SEED ?? 20260417);
const CASES = Number(process.env.PGVEIL_PROP_CASES ?? 150);
const SCRAMBLE_SECRET = 'property test scramble key, long enough';

// ---------------------------------------------------------------------------
// Schema, data, policy and the hand-written reference views.

const ORGS = ['acme', 'globex', 'initech'];

const schemaSql = `
CREATE TABLE crm.depts (id int PRIMARY KEY, org_id text NOT NULL, name text NOT NULL, code text, region text, budget numeric(12,2));
INSERT INTO crm.depts
SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3], 'Dept ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'D' || lpad(g::text, 3, '0') END,
       (ARRAY['EU','US','APAC'])[1 + (g * 7) % 3], CASE WHEN g % 4 = 0 THEN NULL ELSE 100000 + g * 12345.67 END
FROM generate_series(1, 12) g;

CREATE TABLE crm.staff (id int PRIMARY KEY, org_id text NOT NULL, dept_id int, manager_id int, level int, name text NOT NULL,
                        email text, ssn text, salary numeric(10,2), hired date NOT NULL);
INSERT INTO crm.staff
SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3],
       -- Mostly a department of the same org; every 7th one of another org (the join then meets the filter).
       CASE WHEN g % 15 = 0 THEN NULL WHEN g % 7 = 0 THEN 1 + (g * 5) % 12
            ELSE 3 * ((g * 5) % 4) + CASE WHEN g % 3 = 0 THEN 3 ELSE g % 3 END END,
       CASE WHEN g <= 9 THEN NULL WHEN g % 11 = 0 THEN g - 1 ELSE g - 3 * (1 + (g * 7) % ((g - 1) / 3)) END,
       1 + g % 5,
       (ARRAY['Anna','Bruno','Chloe','Dmitri','Elif','Felix','Greta','Hugo','Ines','Jonas'])[1 + (g * 11) % 10] || ' ' ||
       (ARRAY['Keller','Moreau','Novak','Jansen','Rossi','Weber','Costa'])[1 + g % 7],
       CASE WHEN g % 10 = 7 THEN NULL WHEN g % 13 = 0 THEN 'no-at-sign'
            ELSE lower((ARRAY['Anna','Bruno','Chloe','Dmitri','Elif','Felix','Greta','Hugo','Ines','Jonas'])[1 + (g * 11) % 10]) || g || '@'
                 || (ARRAY['acme','globex','initech'])[1 + g % 3] || '.example' END,
       CASE WHEN g % 17 = 0 THEN NULL WHEN g % 19 = 0 THEN '12'
            ELSE '9' || lpad((g % 3)::text, 2, '0') || '-' || lpad((10 + g % 80)::text, 2, '0') || '-' || lpad((1000 + (g * 4733) % 9000)::text, 4, '0') END,
       CASE WHEN g % 11 = 0 THEN NULL ELSE 40000 + ((g * 7919) % 23) * 2500 + (g % 3) * 125.5 END,
       DATE '2014-03-03' + (g * 211) % 3650
FROM generate_series(1, 90) g;

CREATE TABLE crm.projects (id int PRIMARY KEY, org_id text NOT NULL, dept_id int, lead_id int, title text, status text NOT NULL,
                           cost numeric, started timestamptz);
INSERT INTO crm.projects
SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3],
       CASE WHEN g % 8 = 0 THEN 1 + (g * 7) % 12 ELSE 3 * ((g * 7) % 4) + CASE WHEN g % 3 = 0 THEN 3 ELSE g % 3 END END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE 3 * ((g * 13) % 30) + CASE WHEN g % 3 = 0 THEN 3 ELSE g % 3 END END,
       (ARRAY['Alpha','Beta','Gamma','Delta','Albatross','Betamax'])[1 + g % 6] || ' ' || g,
       (ARRAY['open','closed','deleted','open'])[1 + (g * 3) % 4],
       CASE WHEN g % 9 = 0 THEN NULL ELSE (g * 977) % 20000 + 0.25 * (g % 4) END,
       CASE WHEN g % 10 = 3 THEN NULL ELSE TIMESTAMPTZ '2020-01-06 08:00:00+00' + g * interval '5 days 7 hours' END
FROM generate_series(1, 60) g;
CREATE INDEX ON crm.projects (lead_id);

CREATE TABLE public.levels (level int PRIMARY KEY, label text NOT NULL);
INSERT INTO public.levels VALUES (1, 'junior'), (2, 'mid'), (3, 'senior'), (4, 'lead');

GRANT SELECT ON crm.depts, crm.staff, crm.projects, public.levels TO pgveil_service;
ANALYZE crm.depts, crm.staff, crm.projects, public.levels;
`;

const policyYaml = `
layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow, writes: deny }
secrets: { scrambleKey: "${SCRAMBLE_SECRET}" }
tables:
  crm.staff:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      name: { mask: scramble }
      email: { mask: email }
      ssn: { mask: partial, keepLast: 4 }
      salary: { mask: round, step: 1000 }
      hired: { mask: truncate, to: month }
  crm.depts:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      name: { mask: full }
      code: { mask: hash }
      budget: { mask: "null" }
  crm.projects:
    ownership:
      - filter: "org_id = \${user.org}"
      - filter: "status <> 'deleted'"
    redaction:
      title: { mask: custom, expr: "left(\${column}, 4)" }
      cost: { mask: round, step: 50 }
      started: { mask: truncate, to: day }
`;

/** The policy's effect for one org, written by hand (not by pgveil's code) as views. */
function referenceViewsSql(org: string): string {
  const s = `ref_${org}`;
  return `
CREATE SCHEMA ${s};
CREATE VIEW ${s}.staff AS
SELECT id, org_id, dept_id, manager_id, level,
       pgveil.scramble(name)::text AS name,
       (CASE WHEN email IS NULL THEN NULL
             WHEN strpos(email, '@') > 0 THEN left(email, 1) || '***@' || substring(email FROM '@([^@]*)$')
             ELSE '***' END)::text AS email,
       (CASE WHEN ssn IS NULL THEN NULL
             WHEN char_length(ssn) <= 4 THEN repeat('X', char_length(ssn))
             ELSE repeat('X', char_length(ssn) - 4) || right(ssn, 4) END)::text AS ssn,
       (round(salary / 1000) * 1000)::numeric(10,2) AS salary,
       date_trunc('month', hired::timestamp)::date AS hired
FROM crm.staff WHERE org_id = '${org}';
CREATE VIEW ${s}.depts AS
SELECT id, org_id, 'XXXX'::text AS name, pgveil.hash(code)::text AS code, region, NULL::numeric(12,2) AS budget
FROM crm.depts WHERE org_id = '${org}';
CREATE VIEW ${s}.projects AS
SELECT id, org_id, dept_id, lead_id, left(title, 4)::text AS title, status,
       (round(cost / 50) * 50)::numeric AS cost,
       date_trunc('day', started, 'UTC')::timestamptz AS started
FROM crm.projects WHERE org_id = '${org}' AND status <> 'deleted';
`;
}

// ---------------------------------------------------------------------------
// A small seeded generator of SELECT statements. Table names are written as
// {staff}, {depts}, {projects}: crm.* for the proxy, ref_<org>.* upstream.

type Ty = 'int' | 'text' | 'num' | 'date' | 'ts' | 'big';
interface Col { name: string; ty: Ty }
type Table = 'staff' | 'depts' | 'projects';

const TABLES: Record<Table, Col[]> = {
  staff: [
    { name: 'id', ty: 'int' }, { name: 'org_id', ty: 'text' }, { name: 'dept_id', ty: 'int' }, { name: 'manager_id', ty: 'int' },
    { name: 'level', ty: 'int' }, { name: 'name', ty: 'text' }, { name: 'email', ty: 'text' }, { name: 'ssn', ty: 'text' },
    { name: 'salary', ty: 'num' }, { name: 'hired', ty: 'date' },
  ],
  depts: [
    { name: 'id', ty: 'int' }, { name: 'org_id', ty: 'text' }, { name: 'name', ty: 'text' }, { name: 'code', ty: 'text' },
    { name: 'region', ty: 'text' }, { name: 'budget', ty: 'num' },
  ],
  projects: [
    { name: 'id', ty: 'int' }, { name: 'org_id', ty: 'text' }, { name: 'dept_id', ty: 'int' }, { name: 'lead_id', ty: 'int' },
    { name: 'title', ty: 'text' }, { name: 'status', ty: 'text' }, { name: 'cost', ty: 'num' }, { name: 'started', ty: 'ts' },
  ],
};

/** Join edges between base tables: [left table, left column, right table, right column]. */
const EDGES: Array<[Table, string, Table, string]> = [
  ['staff', 'dept_id', 'depts', 'id'],
  ['projects', 'dept_id', 'depts', 'id'],
  ['projects', 'lead_id', 'staff', 'id'],
  ['staff', 'manager_id', 'staff', 'id'],
  ['staff', 'dept_id', 'projects', 'dept_id'],
];

/**
 * Predicates per base column (X is the column): on masked columns both the
 * masked form (matches) and the raw form (must match nothing); on unmasked
 * ones values that select a part of the rows.
 */
const COLUMN_PREDICATES: Record<string, string[]> = {
  'staff.id': ['X > 40', 'X < 60', 'X % 2 = 0', 'X IN (3, 6, 9, 12, 30, 31, 45)'],
  'staff.org_id': ["X = 'acme'", "X = 'globex'", 'X IS NOT NULL'],
  'staff.dept_id': ['X IN (3, 6, 9, 4, 7)', 'X = 6', 'X IS NULL', 'X <> 3'],
  'staff.manager_id': ['X IS NULL', 'X IS NOT NULL', 'X > 20'],
  'staff.level': ['X > 2', 'X = 3', 'X IN (1, 2)'],
  'staff.name': ["X < '8'", "X LIKE 'a%'", "X LIKE '%0%'", "X = 'Anna Keller'", 'X IS NOT NULL', 'length(X) = 16'],
  'staff.email': ["X LIKE 'a***@%'", "X LIKE '%@acme.example'", "X = '***'", 'X IS NULL', "X LIKE 'f%'", "X = 'anna1@acme.example'", "X LIKE '%***%'"],
  'staff.ssn': ["X LIKE 'XXXXXXX%'", "X LIKE '%1'", "X = '900-10-1000'", "X = 'XX'", 'X IS NULL', "X > 'XXXXXXX5'"],
  'staff.salary': ['X > 50000', 'X = 50000', 'X < 60000', 'X BETWEEN 45000 AND 70000', 'X IS NULL', 'X = 50125.50'],
  'staff.hired': ["X >= DATE '2017-01-01'", 'extract(day FROM X) = 1', "X = DATE '2016-05-01'", "X < DATE '2019-01-01'"],
  'depts.id': ['X < 8', 'X IN (3, 6, 9, 12, 1, 4)', 'X % 3 = 0'],
  'depts.org_id': ["X = 'acme'", 'X IS NOT NULL'],
  'depts.name': ["X = 'XXXX'", "X LIKE 'Dept%'"],
  'depts.code': ["X < '8'", 'X IS NULL', "X = 'D003'", 'length(X) = 64'],
  'depts.region': ["X = 'EU'", "X IN ('US', 'APAC')"],
  'depts.budget': ['X IS NULL', 'X > 0'],
  'projects.id': ['X > 20', 'X % 2 = 1', 'X < 45'],
  'projects.dept_id': ['X IN (3, 6, 9, 4, 7)', 'X > 5'],
  'projects.lead_id': ['X IS NULL', 'X IS NOT NULL', 'X < 50'],
  'projects.title': ["X LIKE 'Alb%'", "X LIKE 'Al%'", "X = 'Beta'", "X LIKE 'Gamma 1%'", "X = 'Gamm'", 'length(X) = 4'],
  'projects.status': ["X = 'open'", "X <> 'closed'", "X = 'deleted'"],
  'projects.cost': ['X > 5000', 'X < 15000', 'X IS NULL', 'X = 9750', 'X % 100 = 0', 'X = 9770.25'],
  'projects.started': ["X >= TIMESTAMPTZ '2020-06-01 00:00:00+00'", "extract(hour FROM X AT TIME ZONE 'UTC') = 0", 'X IS NULL', "X < TIMESTAMPTZ '2020-09-01 00:00:00+00'"],
};

class Rng {
  constructor(private s: number) {}
  next(): number { // mulberry32
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  chance(p: number): boolean { return this.next() < p; }
  some<T>(xs: readonly T[], min: number, max: number): T[] {
    const pool = [...xs];
    const n = Math.min(pool.length, min + this.int(max - min + 1));
    const out: T[] = [];
    while (out.length < n) out.push(pool.splice(this.int(pool.length), 1)[0]);
    return out;
  }
}

/** A column reachable in a FROM clause, as an SQL reference. */
interface Ref { sql: string; ty: Ty; table?: Table; column?: string }
interface Source { from: string; refs: Ref[]; bases: Array<{ alias: string; table: Table }> }
interface Query { sql: string; cols: Ty[] }
/** The WITH list of one statement: nested queries hoist their CTEs here, in dependency order. */
interface Ctes { items: string[]; recursive: boolean }

class Generator {
  private aliasNo = 0;
  private cteNo = 0;
  constructor(private readonly r: Rng) {}

  private alias(t: string): string { return `${t[0]}${++this.aliasNo}`; }

  private baseRefs(alias: string, table: Table): Ref[] {
    return TABLES[table].map((c) => ({ sql: `${alias}.${c.name}`, ty: c.ty, table, column: c.name }));
  }

  private base(table: Table): Source {
    const alias = this.alias(table);
    return { from: `{${table}} ${alias}`, refs: this.baseRefs(alias, table), bases: [{ alias, table }] };
  }

  /** One FROM clause: a table, a join of two or three, a derived table, a CTE, LATERAL or the recursive chain. */
  source(depth: number, ctes: Ctes): Source {
    const kind = this.r.pick(['table', 'table', 'join', 'join', 'join3', 'derived', 'cte', 'lateral', 'chain', 'levels'] as const);
    if (kind === 'table' || (depth > 1 && (kind === 'derived' || kind === 'cte'))) return this.base(this.r.pick(['staff', 'depts', 'projects'] as const));
    if (kind === 'join' || kind === 'join3') {
      const [lt, lc, rt, rc] = this.r.pick(EDGES);
      const left = this.base(lt);
      const right = this.base(rt);
      const type = this.r.pick(['JOIN', 'LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN', 'JOIN'] as const);
      let src: Source = {
        from: `${left.from} ${type} ${right.from} ON ${left.bases[0].alias}.${lc} = ${right.bases[0].alias}.${rc}`,
        refs: [...left.refs, ...right.refs],
        bases: [...left.bases, ...right.bases],
      };
      if (kind === 'join3') {
        const known = src.bases;
        const edge = EDGES.find(([a, , b]) => known.some((k) => k.table === a) && b !== a && !known.some((k) => k.table === b))
          ?? EDGES.find(([a]) => known.some((k) => k.table === a))!;
        const [at, ac, bt, bc] = edge;
        const anchor = known.find((k) => k.table === at)!;
        const third = this.base(bt);
        src = {
          from: `${src.from} ${this.r.pick(['JOIN', 'LEFT JOIN'])} ${third.from} ON ${anchor.alias}.${ac} = ${third.bases[0].alias}.${bc}`,
          refs: [...src.refs, ...third.refs],
          bases: [...src.bases, ...third.bases],
        };
      }
      return src;
    }
    if (kind === 'levels') {
      const s = this.base('staff');
      const l = this.alias('levels');
      return {
        from: `${s.from} LEFT JOIN public.levels ${l} ON ${l}.level = ${s.bases[0].alias}.level`,
        refs: [...s.refs, { sql: `${l}.label`, ty: 'text' }],
        bases: s.bases,
      };
    }
    if (kind === 'derived' || kind === 'cte') {
      const inner = this.query(depth + 1, ctes);
      const alias = this.alias('q');
      const refs = inner.cols.map((ty, i) => ({ sql: `${alias}.c${i + 1}`, ty }));
      if (kind === 'derived') return { from: `(${inner.sql}) ${alias}`, refs, bases: [] };
      const name = `cte${++this.cteNo}`;
      ctes.items.push(`${name} AS (${inner.sql})`);
      return { from: `${name} ${alias}`, refs, bases: [] };
    }
    if (kind === 'lateral') {
      const d = this.base(this.r.pick(['depts', 'staff'] as const));
      const dAlias = d.bases[0].alias;
      const key = d.bases[0].table === 'depts' ? 'id' : 'dept_id';
      const x = this.alias('x');
      const p = this.alias('projects');
      if (this.r.chance(0.5)) {
        const inner = `SELECT count(*) AS n, max(${p}.cost) AS top, min(${p}.title) AS first_title FROM {projects} ${p} WHERE ${p}.dept_id = ${dAlias}.${key}`;
        return {
          from: `${d.from} CROSS JOIN LATERAL (${inner}) ${x}`,
          refs: [...d.refs, { sql: `${x}.n`, ty: 'big' }, { sql: `${x}.top`, ty: 'num' }, { sql: `${x}.first_title`, ty: 'text' }],
          bases: d.bases,
        };
      }
      // ORDER BY every output column: the LIMIT keeps a well-defined multiset.
      const inner = `SELECT ${p}.title, ${p}.cost, ${p}.started FROM {projects} ${p} WHERE ${p}.dept_id = ${dAlias}.${key} ORDER BY 1, 2, 3 LIMIT 2`;
      return {
        from: `${d.from} LEFT JOIN LATERAL (${inner}) ${x} ON true`,
        refs: [...d.refs, { sql: `${x}.title`, ty: 'text' }, { sql: `${x}.cost`, ty: 'num' }, { sql: `${x}.started`, ty: 'ts' }],
        bases: d.bases,
      };
    }
    // The management chain: a recursive CTE over masked and unmasked columns.
    const name = `chain${++this.cteNo}`;
    const a = this.alias('staff');
    const b = this.alias('staff');
    const anchorPred = this.r.chance(0.5) ? ` AND ${this.predicate(this.baseRefs(a, 'staff'))}` : '';
    ctes.recursive = true;
    ctes.items.push(`${name}(id, root, depth, email, salary) AS (`
      + `SELECT ${a}.id, ${a}.id, 0, ${a}.email, ${a}.salary FROM {staff} ${a} WHERE ${a}.manager_id IS NULL${anchorPred} `
      + `UNION ALL SELECT ${b}.id, c.root, c.depth + 1, ${b}.email, ${b}.salary FROM {staff} ${b} JOIN ${name} c ON ${b}.manager_id = c.id WHERE c.depth < 4)`);
    const alias = this.alias('ch');
    return {
      from: `${name} ${alias}`,
      refs: [{ sql: `${alias}.id`, ty: 'int' }, { sql: `${alias}.root`, ty: 'int' }, { sql: `${alias}.depth`, ty: 'int' },
        { sql: `${alias}.email`, ty: 'text' }, { sql: `${alias}.salary`, ty: 'num' }],
      bases: [],
    };
  }

  /** A predicate on one column; values chosen to hit masked forms, raw (hidden) forms and plain ones. */
  predicate(refs: Ref[]): string {
    const ref = this.r.pick(refs);
    const x = ref.sql;
    const known = ref.table && ref.column ? COLUMN_PREDICATES[`${ref.table}.${ref.column}`] : undefined;
    if (known && this.r.chance(0.75)) return this.r.pick(known).replace(/\bX\b/g, x);
    switch (ref.ty) {
      case 'int': case 'big':
        return this.r.pick([
          `${x} > ${this.r.int(20)}`, `${x} = ${1 + this.r.int(12)}`, `${x} IN (${1 + this.r.int(6)}, ${2 + this.r.int(10)}, ${3 + this.r.int(30)})`,
          `${x} IS NULL`, `${x} IS NOT NULL`, `${x} % 2 = 0`, `${x} BETWEEN ${this.r.int(5)} AND ${5 + this.r.int(40)}`,
        ]);
      case 'text':
        return this.r.pick([
          `${x} LIKE '${this.r.pick(['a', 'X', 'XXX', '1', 'e', 'A', 'Al', 'Be', 'a***', 'D0', '9', 'op', 'E', 'c'])}%'`,
          `${x} IS NOT NULL`, `length(${x}) > ${this.r.int(6)}`, `${x} < '${this.r.pick(['5', 'c', 'm', 'X', 'D'])}'`,
          `${x} = '${this.r.pick(['901-10-1000', 'anna1@acme.example', 'open', 'EU', 'Alph', 'XXXX', 'D003', '12', 'XX'])}'`,
          `${x} LIKE '%${this.r.pick(['@acme.example', '@globex.example', '0', 'a', '1'])}'`,
        ]);
      case 'num':
        return this.r.pick([
          `${x} > ${this.r.pick([0, 30000, 50000, 5000, 12000, 1000000])}`, `${x} IS NULL`, `${x} IS NOT NULL`,
          `${x} = ${this.r.pick([50000, 61000, 41000, 50, 9750, 63500.5])}`, `${x} BETWEEN 20000 AND 60000`,
        ]);
      case 'date':
        return this.r.pick([
          `${x} >= DATE '${this.r.pick(['2016-01-01', '2018-06-15', '2020-02-01'])}'`,
          `${x} = DATE '${this.r.pick(['2017-03-01', '2014-03-01', '2019-10-01', '2014-03-03'])}'`,
          `extract(month FROM ${x}) > ${this.r.int(12)}`, `extract(day FROM ${x}) = 1`,
        ]);
      case 'ts':
        return this.r.pick([
          `${x} >= TIMESTAMPTZ '${this.r.pick(['2020-06-01 00:00:00+00', '2021-01-01 00:00:00+00', '2020-01-11 00:00:00+00'])}'`,
          `${x} IS NULL`, `extract(hour FROM ${x} AT TIME ZONE 'UTC') = 0`, `${x} < TIMESTAMPTZ '2020-09-01 00:00:00+00'`,
        ]);
    }
  }

  /** WHERE: plain predicates, AND/OR, and subqueries (IN, EXISTS, NOT EXISTS) correlated with a base table. */
  where(src: Source, depth: number): string {
    const parts: string[] = [];
    const n = this.r.pick([0, 0, 1, 1, 1, 2, 2, 3]);
    for (let i = 0; i < n; i++) parts.push(this.r.chance(0.2) ? `(${this.predicate(src.refs)} OR ${this.predicate(src.refs)})` : this.predicate(src.refs));
    if (depth < 2 && src.bases.length && this.r.chance(0.35)) parts.push(this.subqueryPredicate(this.r.pick(src.bases)));
    return parts.length ? ` WHERE ${parts.join(' AND ')}` : '';
  }

  private subqueryPredicate(base: { alias: string; table: Table }): string {
    const a = base.alias;
    const inner = (t: Table) => {
      const al = this.alias(t);
      return { al, refs: this.baseRefs(al, t) };
    };
    switch (base.table) {
      case 'staff': {
        if (this.r.chance(0.5)) {
          const d = inner('depts');
          return `${a}.dept_id IN (SELECT ${d.al}.id FROM {depts} ${d.al} WHERE ${this.predicate(d.refs)})`;
        }
        const p = inner('projects');
        return `${this.r.pick(['EXISTS', 'NOT EXISTS'])} (SELECT 1 FROM {projects} ${p.al} WHERE ${p.al}.lead_id = ${a}.id AND ${this.predicate(p.refs)})`;
      }
      case 'depts': {
        const s = inner('staff');
        return `${this.r.pick(['EXISTS', 'NOT EXISTS'])} (SELECT 1 FROM {staff} ${s.al} WHERE ${s.al}.dept_id = ${a}.id AND ${this.predicate(s.refs)})`;
      }
      case 'projects': {
        const s = inner('staff');
        return this.r.chance(0.5)
          ? `${a}.lead_id IN (SELECT ${s.al}.id FROM {staff} ${s.al} WHERE ${this.predicate(s.refs)})`
          : `${a}.cost > (SELECT coalesce(min(${s.al}.salary), 0) / 10 FROM {staff} ${s.al} WHERE ${s.al}.dept_id = ${a}.dept_id)`;
      }
    }
  }

  /** A projected expression of a column, keeping track of its type. */
  private expr(ref: Ref): { sql: string; ty: Ty } {
    const x = ref.sql;
    if (this.r.chance(0.6)) return { sql: x, ty: ref.ty };
    switch (ref.ty) {
      case 'int': case 'big': return this.r.pick([{ sql: `${x} + 1`, ty: ref.ty }, { sql: `${x} * 2`, ty: ref.ty }]);
      case 'text': return this.r.pick([
        { sql: `upper(${x})`, ty: 'text' as Ty }, { sql: `left(${x}, 2)`, ty: 'text' as Ty }, { sql: `length(${x})`, ty: 'int' as Ty },
        { sql: `coalesce(${x}, '-')`, ty: 'text' as Ty }, { sql: `${x} || '!'`, ty: 'text' as Ty },
      ]);
      case 'num': return this.r.pick([{ sql: `${x} + 1`, ty: 'num' as Ty }, { sql: `round(${x}, -3)`, ty: 'num' as Ty }, { sql: `${x} * 2`, ty: 'num' as Ty }]);
      case 'date': return this.r.pick([{ sql: `extract(year FROM ${x})`, ty: 'num' as Ty }, { sql: `${x} + 1`, ty: 'date' as Ty }]);
      case 'ts': return { sql: `date_trunc('month', ${x} AT TIME ZONE 'UTC')::date`, ty: 'date' };
    }
  }

  private aggregate(ref: Ref): { sql: string; ty: Ty } {
    const x = ref.sql;
    const numeric = ref.ty === 'int' || ref.ty === 'num' || ref.ty === 'big';
    const options: Array<{ sql: string; ty: Ty }> = [
      { sql: 'count(*)', ty: 'big' }, { sql: `count(${x})`, ty: 'big' }, { sql: `count(DISTINCT ${x})`, ty: 'big' },
      { sql: `min(${x})`, ty: ref.ty }, { sql: `max(${x})`, ty: ref.ty },
    ];
    if (numeric) options.push({ sql: `sum(${x})`, ty: 'num' }, { sql: `avg(${x})`, ty: 'num' });
    if (ref.ty === 'text') options.push({ sql: `string_agg(${x}, ',' ORDER BY ${x})`, ty: 'text' });
    return this.r.pick(options);
  }

  /** A SELECT whose output columns are named c1…cn; `types` forces the output types (for set operations). */
  query(depth: number, outer?: Ctes, types?: Ty[]): Query {
    const ctes: Ctes = outer ?? { items: [], recursive: false };
    const src = this.source(depth, ctes);
    const where = this.where(src, depth);
    const items: Array<{ sql: string; ty: Ty }> = [];
    let tail = '';
    const grouped = !types && this.r.chance(0.35);
    if (types) {
      for (const ty of types) {
        const fits = src.refs.filter((r) => r.ty === ty);
        items.push(fits.length ? { sql: this.r.pick(fits).sql, ty } : { sql: `NULL::${sqlType(ty)}`, ty });
      }
    } else if (grouped) {
      const keys = this.r.some(src.refs, 1, 2);
      for (const k of keys) items.push(this.expr(k));
      const nAgg = 1 + this.r.int(3);
      for (let i = 0; i < nAgg; i++) items.push(this.aggregate(this.r.pick(src.refs)));
      tail += ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')}`;
      if (this.r.chance(0.3)) tail += ` HAVING count(*) ${this.r.pick(['>= 2', '> 1', '< 5', '>= 1'])}`;
    } else {
      for (const r of this.r.some(src.refs, 1, 5)) items.push(this.expr(r));
      if (this.r.chance(0.25)) {
        // Window functions whose value does not depend on how ties are broken.
        const part = this.r.pick(src.refs).sql;
        const ord = this.r.pick(src.refs).sql;
        items.push(this.r.pick([
          { sql: `rank() OVER (PARTITION BY ${part} ORDER BY ${ord})`, ty: 'big' as Ty },
          { sql: `dense_rank() OVER (ORDER BY ${ord})`, ty: 'big' as Ty },
          { sql: `count(*) OVER (PARTITION BY ${part})`, ty: 'big' as Ty },
          { sql: `count(${ord}) OVER (PARTITION BY ${part} ORDER BY ${ord})`, ty: 'big' as Ty },
        ]));
      }
    }
    const distinct = !grouped && this.r.chance(0.15) ? 'DISTINCT ' : '';
    if (this.r.chance(0.3)) {
      // LIMIT only under an ORDER BY of every output column: the kept multiset is then well defined.
      tail += ` ORDER BY ${items.map((_, i) => `${i + 1}${this.r.chance(0.3) ? ' DESC' : ''}`).join(', ')} LIMIT ${1 + this.r.int(8)}`;
      if (this.r.chance(0.3)) tail += ` OFFSET ${this.r.int(3)}`;
    } else if (this.r.chance(0.3)) {
      tail += ` ORDER BY ${items.map((_, i) => i + 1).join(', ')}`;
    }
    const body = `SELECT ${distinct}${items.map((it, i) => `${it.sql} AS c${i + 1}`).join(', ')} FROM ${src.from}${where}${tail}`;
    const sql = outer ? body : withClause(ctes) + body;
    return { sql, cols: items.map((it) => it.ty) };
  }

  /** A top-level statement: a query, a set operation of two, or a single-table form with every way to name it. */
  statement(): string {
    const kind = this.r.int(11);
    if (kind < 2) {
      const ctes: Ctes = { items: [], recursive: false };
      const types = this.r.pick<Ty[]>([['text'], ['int', 'text'], ['text', 'num'], ['int'], ['date', 'text']]);
      const a = this.query(1, ctes, types);
      const b = this.query(1, ctes, types);
      const op = this.r.pick(['UNION', 'UNION ALL', 'INTERSECT', 'EXCEPT', 'UNION']);
      return `${withClause(ctes)}(${a.sql}) ${op} (${b.sql})`;
    }
    if (kind < 4) return this.singleTable();
    if (kind < 5) return this.special();
    return this.query(0).sql;
  }

  /** Forms the composable generator does not make: qualified names in joins, USING/NATURAL, column alias lists, ROLLUP, WITH TIES … */
  private special(): string {
    const s = this.baseRefs('s', 'staff');
    const d = this.baseRefs('d', 'depts');
    const p = this.baseRefs('p', 'projects');
    const ps = (refs: Ref[]) => this.predicate(refs);
    const qualified = TABLES.staff.map((c) => ({ sql: `{staff}.${c.name}`, ty: c.ty, table: 'staff' as Table, column: c.name }));
    return this.r.pick([
      () => `SELECT {staff}.email, {depts}.region, {staff}.salary, {depts}.name FROM {staff} JOIN {depts} ON {staff}.dept_id = {depts}.id WHERE ${ps(qualified)}`,
      () => `SELECT s.email, d.region, org_id FROM {staff} s JOIN {depts} d USING (org_id) WHERE ${ps(s)}`,
      () => `SELECT count(*), min(id), max(salary) FROM {staff} NATURAL JOIN {projects}`,
      () => `SELECT count(*) FROM {staff} s NATURAL JOIN {depts} d`,
      () => `SELECT s.*, d.name AS dept_name FROM {staff} s LEFT JOIN {depts} d ON d.id = s.dept_id WHERE ${ps(s)}`,
      () => `SELECT s.level, date_trunc('year', s.hired) AS y, count(*), sum(s.salary), string_agg(s.ssn, ',' ORDER BY s.ssn) FROM {staff} s GROUP BY ROLLUP (s.level, date_trunc('year', s.hired))`,
      () => `SELECT p.status, d.region, count(*), max(p.title) FROM {projects} p JOIN {depts} d ON d.id = p.dept_id GROUP BY CUBE (p.status, d.region)`,
      () => `WITH m AS MATERIALIZED (SELECT p.lead_id, p.cost, p.title FROM {projects} p WHERE ${ps(p)}) SELECT m.title, s.email, m.cost FROM m JOIN {staff} s ON s.id = m.lead_id`,
      () => `WITH m AS NOT MATERIALIZED (SELECT * FROM {staff} WHERE ${ps(TABLES.staff.map((c) => ({ sql: c.name, ty: c.ty, table: 'staff' as Table, column: c.name })))}) SELECT m.ssn, m.email FROM m`,
      () => `SELECT v.k, s.email, s.hired FROM (VALUES (1), (3), (5)) v(k) JOIN {staff} s ON s.level = v.k WHERE ${ps(s)}`,
      () => `SELECT q.a, q.b, q.e FROM {depts} AS q(a, b, c, d, e) WHERE q.a < 9`,
      () => `SELECT s.id, s.ssn FROM {staff} s WHERE s.dept_id = ANY (ARRAY(SELECT d.id FROM {depts} d WHERE ${ps(d)}))`,
      () => `SELECT d.id, d.code, (SELECT count(*) FROM {staff} s WHERE s.dept_id = d.id), (SELECT max(s.email) FROM {staff} s WHERE s.dept_id = d.id) FROM {depts} d`,
      () => `SELECT s.email, s.salary FROM {staff} s ORDER BY s.salary DESC NULLS LAST FETCH FIRST ${1 + this.r.int(5)} ROWS WITH TIES`,
      () => `SELECT s.id, part FROM {staff} s CROSS JOIN LATERAL unnest(string_to_array(s.email, '@')) AS part WHERE ${ps(s)}`,
      () => `SELECT row_to_json(s)::text FROM {staff} s WHERE ${ps(s)}`,
      () => `SELECT json_agg(p.title ORDER BY p.title)::text, p.status FROM {projects} p GROUP BY p.status`,
      () => `SELECT (s.email, s.level) IS NOT DISTINCT FROM (m.email, m.level) AS same, s.id FROM {staff} s JOIN {staff} m ON m.id = s.manager_id`,
      () => `SELECT s.id, s.salary, s.salary - lag(s.salary) OVER (ORDER BY s.id) AS delta, first_value(s.email) OVER w, sum(s.salary) OVER w FROM {staff} s WINDOW w AS (PARTITION BY s.dept_id ORDER BY s.id)`,
      () => `SELECT DISTINCT ON (s.dept_id) s.dept_id, s.id, s.hired FROM {staff} s ORDER BY s.dept_id, s.id`,
      () => `SELECT p.title FROM {projects} p WHERE p.title IN (SELECT left(x.title, 4) FROM {projects} x WHERE ${ps(this.baseRefs('x', 'projects'))})`,
      () => `SELECT s.email, CASE WHEN s.salary > 50000 THEN 'high' ELSE 'low' END, coalesce(s.ssn, s.email, 'none') FROM {staff} s WHERE ${ps(s)}`,
    ])();
  }

  /** One table, named as `t`, `{t} alias`, `{t}` with `{t}.col` or `t.col` qualification, `SELECT *`, `TABLE t`, or whole rows of `ONLY t`. */
  private singleTable(): string {
    const table = this.r.pick(['staff', 'depts', 'projects'] as const);
    const special = this.r.int(8);
    if (special === 0) return `TABLE {${table}}`;
    if (special === 1) return `SELECT t::text FROM ONLY {${table}} t${this.r.chance(0.5) ? ` WHERE ${this.predicate(this.baseRefs('t', table))}` : ''}`;
    const style = this.r.int(4);
    const [from, qual] = style === 0 ? [`{${table}} t`, 't.'] : style === 1 ? [`{${table}}`, `{${table}}.`] : style === 2 ? [`{${table}}`, `${table}.`] : [`{${table}}`, ''];
    const refs = TABLES[table].map((c) => ({ sql: `${qual}${c.name}`, ty: c.ty }));
    const where = this.r.int(3) === 0 ? '' : ` WHERE ${this.predicate(refs)}${this.r.chance(0.5) ? ` AND ${this.predicate(refs)}` : ''}`;
    const cols = this.r.chance(0.3) ? '*' : this.r.some(refs, 1, 4).map((r) => r.sql).join(', ');
    return `SELECT ${cols} FROM ${from}${where}`;
  }
}

function withClause(ctes: Ctes): string {
  if (!ctes.items.length) return '';
  return `WITH ${ctes.recursive ? 'RECURSIVE ' : ''}${ctes.items.join(', ')} `;
}

function sqlType(ty: Ty): string {
  return { int: 'int', big: 'bigint', text: 'text', num: 'numeric', date: 'date', ts: 'timestamptz' }[ty];
}

/** With `unqualified`, bare table names, resolved through the session's search_path. */
function forProxy(sql: string, unqualified = false): string {
  return sql.replace(/\{(staff|depts|projects)\}/g, unqualified ? '$1' : 'crm.$1');
}

function forReference(sql: string, org: string, unqualified = false): string {
  return sql.replace(/\{(staff|depts|projects)\}/g, unqualified ? '$1' : `ref_${org}.$1`);
}

// ---------------------------------------------------------------------------

interface Result { fields: string[]; rows: string[] }

function normalise(r: pg.QueryResult<unknown[]>): Result {
  return {
    fields: r.fields.map((f) => `${f.name}:${f.dataTypeID}`),
    rows: r.rows.map((row) => JSON.stringify(row)).sort(),
  };
}

function diff(a: string[], b: string[]): string {
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const ca = count(a);
  const cb = count(b);
  const lines: string[] = [];
  for (const [k, n] of ca) if ((cb.get(k) ?? 0) < n) lines.push(`  only through pgveil: ${k} ×${n - (cb.get(k) ?? 0)}`);
  for (const [k, n] of cb) if ((ca.get(k) ?? 0) < n) lines.push(`  only in the reference: ${k} ×${n - (ca.get(k) ?? 0)}`);
  return lines.slice(0, 12).join('\n');
}

let h: Harness;
let upstream: pg.Client;
const users = [{ name: 'alice@acme.com', org: 'acme' }, { name: 'bob@globex.com', org: 'globex' }];
const clients = new Map<string, pg.Client>();

test.before(async () => {
  const install = scrambleInstallSql(scrambleKeyFromSecret(SCRAMBLE_SECRET), { serviceRole: 'pgveil_service' });
  h = await startHarness({ extraSql: schemaSql + install, policyYaml });
  upstream = await h.pg.connect('analytics');
  for (const org of ORGS.slice(0, 2)) await upstream.query(referenceViewsSql(org));
  for (const u of users) {
    const c = new pg.Client(clientConfig(h, u.name));
    c.on('error', () => {});
    await c.connect();
    clients.set(u.name, c);
  }
});

test.after(async () => {
  for (const c of clients.values()) await c.end().catch(() => {});
  await upstream?.end().catch(() => {});
  await h?.close();
});

test('the reference views differ from the raw tables (the masks and filters do something)', async () => {
  const raw = await upstream.query('SELECT count(*)::int AS n FROM crm.staff');
  const ref = await upstream.query('SELECT count(*)::int AS n, count(*) FILTER (WHERE ssn LIKE \'XXX%\')::int AS masked FROM ref_acme.staff');
  assert.is(raw.rows[0].n, 90);
  assert.is(ref.rows[0].n, 30);
  assert.ok(ref.rows[0].masked > 20);
  const through = await clients.get('alice@acme.com')!.query('SELECT count(*)::int AS n FROM crm.staff');
  assert.is(through.rows[0].n, 30);
});

test(`property: ${CASES} random SELECTs through pgveil equal the hand-written reference (seed ${SEED})`, async () => {
  const rng = new Rng(SEED);
  const failures: string[] = [];
  let nonEmpty = 0;
  for (let i = 0; i < CASES; i++) {
    const gen = new Generator(rng);
    const template = gen.statement();
    const user = users[i % users.length];
    const client = clients.get(user.name)!;
    const extended = i % 3 === 2;
    // Every fifth case names the tables bare, under SET search_path (crm for pgveil, the reference schema upstream).
    const unqualified = i % 5 === 4;
    const proxySql = forProxy(template, unqualified);
    const refSql = forReference(template, user.org, unqualified);
    const header = `case ${i} (seed ${SEED}, PGVEIL_PROP_SEED=${SEED} PGVEIL_PROP_CASES=${i + 1} to replay), user ${user.name}, `
      + `${extended ? 'extended' : 'simple'} protocol${unqualified ? ', search_path crm, public' : ''}`;
    let expected: Result;
    try {
      if (unqualified) await upstream.query(`SET search_path = ref_${user.org}, public`);
      expected = normalise(await upstream.query<unknown[]>({ text: refSql, rowMode: 'array' }));
    } catch (err) {
      failures.push(`${header}\n  the reference query failed (a generator bug): ${(err as Error).message}\n  ${refSql}`);
      continue;
    } finally {
      if (unqualified) await upstream.query('RESET search_path');
    }
    let actual: Result;
    try {
      if (unqualified) await client.query('SET search_path = crm, public');
      actual = normalise(await client.query<unknown[]>(extended
        ? { text: proxySql, rowMode: 'array', name: `prop_${i}` }
        : { text: proxySql, rowMode: 'array' }));
    } catch (err) {
      const e = err as { code?: string; message: string };
      failures.push(`${header}\n  through pgveil it failed: ${e.code} ${e.message}\n  statement: ${proxySql}`);
      continue;
    } finally {
      if (unqualified) await client.query('RESET search_path').catch(() => {});
    }
    if (expected.rows.length) nonEmpty++;
    if (process.env.PGVEIL_PROP_VERBOSE) console.log(`${i}: ${expected.rows.length} rows: ${proxySql}`);
    if (JSON.stringify(actual.fields) !== JSON.stringify(expected.fields)) {
      failures.push(`${header}\n  columns differ: pgveil ${actual.fields.join(', ')} vs reference ${expected.fields.join(', ')}\n  statement: ${proxySql}`);
    } else if (JSON.stringify(actual.rows) !== JSON.stringify(expected.rows)) {
      failures.push(`${header}\n  rows differ (${actual.rows.length} through pgveil, ${expected.rows.length} in the reference):\n${diff(actual.rows, expected.rows)}\n  statement: ${proxySql}`);
    }
  }
  if (failures.length) {
    console.error(`\n${failures.length} of ${CASES} cases failed (seed ${SEED}):\n\n${failures.join('\n\n')}\n`);
  }
  assert.is(failures.length, 0, `${failures.length} of ${CASES} cases failed (seed ${SEED}); see above`);
  assert.ok(nonEmpty > CASES / 3, `only ${nonEmpty} of ${CASES} cases returned rows: the generator is too narrow`);
});

test.run();
