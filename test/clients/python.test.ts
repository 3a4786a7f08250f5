// psycopg2 and SQLAlchemy through pgveil: what Superset and
// notebooks run — connect over TLS, server-side cursors, and the inspector
// calls that list tables, columns, keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, passwords, type Harness } from '../helpers/harness.js';
import { run } from '../helpers/run.js';
import { accountsPolicy, accountsSql } from './accounts-fixture.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({
    extraSql: accountsSql("INSERT INTO crm.accounts VALUES (10, 'acme', 1, 'Acme Account'), (20, 'globex', 2, 'Globex Account');"),
    policyYaml: accountsPolicy(),
  });
});
test.after(async () => { await h?.close(); });

async function python(code: string): Promise<unknown> {
  const file = join(h.dir, `client-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, code);
  const r = await run('/usr/bin/python3', [file], {
    env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(h.proxy.port), PGUSER: 'alice@acme.com', PGPASSWORD: passwords['alice@acme.com'], PGDATABASE: 'analytics', PGSSLMODE: 'verify-full', PGSSLROOTCERT: h.caFile },
    timeoutMs: 60_000,
  });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('psycopg2: TLS connection, masked rows, a server-side (named) cursor, parameters', async () => {
  const out = await python(`
import json, psycopg2
conn = psycopg2.connect('')
cur = conn.cursor()
cur.execute('select name, ssn from crm.employees where id = %s', (1,))
one = cur.fetchall()
named = conn.cursor(name='stream')
named.itersize = 1
named.execute('select name from crm.employees order by id')
streamed = [r[0] for r in named]
conn.rollback()
print(json.dumps({'one': one, 'streamed': streamed, 'ssl': conn.info.ssl_in_use}))
`);
  assert.equal(out, { one: [['Ann', 'XXXXXXX3333']], streamed: ['Ann'], ssl: true });
});

test('A2 psycopg2: default transactions commit and roll back, SET search_path inside one, an error then rollback, on this PostgreSQL version', async () => {
  const out = await python(`
import json, psycopg2
conn = psycopg2.connect('')
cur = conn.cursor()
cur.execute('set search_path = crm, public')
cur.execute('select name, ssn from employees order by id')
first = cur.fetchall()
conn.commit()
cur.execute('select count(*) from employees')
counted = cur.fetchone()[0]
conn.commit()
error = None
try:
    cur.execute('select 1/0')
except psycopg2.Error as e:
    error = e.pgcode
conn.rollback()
cur.execute('set local search_path = public')
try:
    cur.execute('select name from employees')
except psycopg2.Error as e:
    error = error + ',' + e.pgcode
conn.rollback()
cur.execute('select name from employees order by id')
after = cur.fetchall()
conn.commit()
print(json.dumps({'first': first, 'counted': counted, 'error': error, 'after': after}))
`);
  assert.equal(out, { first: [['Ann', 'XXXXXXX3333']], counted: 1, error: '22012,42P01', after: [['Ann']] });
});

test('SQLAlchemy inspector (what Superset calls) lists only what the user may query', async () => {
  const out = await python(`
import json
from sqlalchemy import create_engine, inspect
engine = create_engine('postgresql+psycopg2://')
insp = inspect(engine)
print(json.dumps({
  'crm': sorted(insp.get_table_names(schema='crm')),
  'public': sorted(insp.get_table_names(schema='public')),
  'columns': [c['name'] for c in insp.get_columns('employees', schema='crm')],
  'pk': insp.get_pk_constraint('accounts', schema='crm')['constrained_columns'],
  'fks': [(f['referred_table'], f['constrained_columns']) for f in insp.get_foreign_keys('accounts', schema='crm')],
}))
`);
  assert.equal(out, {
    crm: ['accounts', 'employees'],
    public: [],
    columns: ['id', 'org_id', 'name', 'ssn', 'salary'],
    pk: ['id'],
    fks: [['employees', ['owner_id']]],
  });
});

test.run();
