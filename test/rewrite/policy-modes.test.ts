// Allowlist mode, layer switches and exemptions, end to end through a real
// client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';
import { psql } from '../helpers/run.js';

let h: Harness;
const allowlist = `
defaults: { unlistedRelations: deny, writes: deny }
tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
        except: { users: [carol@acme.com] }
    redaction:
      ssn: { mask: partial, keepLast: 4 }
`;
test.before(async () => { h = await startHarness({ policyYaml: allowlist }); });
test.after(async () => { await h?.close(); });

async function query(user: string, sql: string): Promise<{ rows?: Array<Record<string, unknown>>; code?: string }> {
  const c = new pg.Client(clientConfig(h, user));
  await c.connect();
  try {
    return { rows: (await c.query(sql)).rows };
  } catch (e) {
    return { code: (e as { code?: string }).code };
  } finally {
    await c.end();
  }
}

test('allowlist mode: unlisted user tables are refused, listed ones served, catalogs stay readable', async () => {
  assert.is((await query('alice@acme.com', 'select * from public.lookup')).code, '42501');
  assert.equal((await query('alice@acme.com', 'select name, ssn from crm.employees')).rows, [{ name: 'Ann', ssn: 'XXXXXXX3333' }]);
  const ns = await query('alice@acme.com', "select count(*)::int as n from pg_catalog.pg_namespace where nspname = 'crm'");
  assert.equal(ns.rows, [{ n: 1 }]);
  const tables = await query('alice@acme.com', "select count(*)::int as n from information_schema.tables where table_schema = 'crm'");
  assert.ok((tables.rows?.[0].n as number) >= 1);
  const dt = await psql(`host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`, '\\dt crm.*', passwords['alice@acme.com']);
  assert.is(dt.stderr, '');
  assert.match(dt.stdout, /employees/);
});

test('the catalog a user browses matches what they may query: unlisted relations are hidden in allowlist mode', async () => {
  const count = async (sql: string) => Number((await query('alice@acme.com', sql)).rows?.[0].n);
  assert.is(await count("select count(*) as n from pg_catalog.pg_class where relname = 'lookup'"), 0);
  assert.is(await count("select count(*) as n from pg_catalog.pg_class where relname = 'employees'"), 1);
  assert.is(await count("select count(*) as n from information_schema.tables where table_name = 'lookup'"), 0);
  assert.is(await count("select count(*) as n from information_schema.columns where table_name = 'lookup'"), 0);
  assert.is(await count("select count(*) as n from pg_catalog.pg_tables where tablename = 'lookup'"), 0);
  assert.ok(await count("select count(*) as n from information_schema.columns where table_name = 'employees'") >= 5);
  assert.ok(await count("select count(*) as n from pg_catalog.pg_class where relname = 'pg_class'") === 1, 'system catalogs stay listed');
  const info = `host=127.0.0.1 port=${h.proxy.port} dbname=analytics user=alice@acme.com sslmode=require`;
  const dt = await psql(info, '\\dt public.*', passwords['alice@acme.com']);
  assert.not.match(dt.stdout + dt.stderr, /lookup/);
  const d = await psql(info, '\\d public.lookup', passwords['alice@acme.com']);
  assert.match(d.stderr, /Did not find any relation/);
});

test('except: an exempt user is not filtered by that rule, but still masked', async () => {
  const carol = await query('carol@acme.com', 'select name, ssn from crm.employees order by id');
  assert.equal(carol.rows, [{ name: 'Ann', ssn: 'XXXXXXX3333' }, { name: 'Gus', ssn: 'XXXXXXX6666' }]);
});

test('layers: switching ownership off shows every row, redaction still applies; switching redaction off shows raw values', async () => {
  const file = join(h.dir, 'policy.yaml');
  writeFileSync(file, `layers: { ownership: false }\n${readFileSync(file, 'utf8')}`);
  assert.ok(await h.proxy.reload());
  assert.equal((await query('alice@acme.com', 'select ssn from crm.employees order by id')).rows, [{ ssn: 'XXXXXXX3333' }, { ssn: 'XXXXXXX6666' }]);
  writeFileSync(file, allowlist.replace('defaults:', 'layers: { redaction: false }\ndefaults:'));
  assert.ok(await h.proxy.reload());
  assert.equal((await query('alice@acme.com', 'select ssn from crm.employees')).rows, [{ ssn: '111-22-3333' }]);
  writeFileSync(file, allowlist);
  assert.ok(await h.proxy.reload());
});

test.run();
