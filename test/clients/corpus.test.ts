// The catalog statements real clients send (psql meta-commands, pgjdbc
// DatabaseMetaData, SQLAlchemy's inspector), recorded from PostgreSQL's log
// by bench/collect-corpus.ts, replayed through the rewriter for a user the
// way `pgveil explain` does: none may be refused, and none rewritten unless
// it reads a protected table or a guarded catalog relation — beyond the
// schema pgveil writes before every relation named without one. A parser or
// rewriter change that would break a client shows up here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { loadAll } from '../../src/config/load.js';
import { DecisionEngine } from '../../src/engine/engine.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import { silentLogger } from '../../src/observe/log.js';
import { startHarness, employeesPolicy, type Harness } from '../helpers/harness.js';

const corpus = JSON.parse(readFileSync(new URL('../../../test/corpus/client-statements.json', import.meta.url), 'utf8')) as string[];

let h: Harness;
test.before(async () => {
  h = await startHarness({
    policyYaml: employeesPolicy,
  });
});
test.after(async () => { await h?.close(); });

test(`the recorded client corpus (${corpus.length} statements) is neither refused nor needlessly rewritten`, async () => {
  assert.ok(corpus.length >= 20, 'the corpus is there');
  const { config, users, policy } = loadAll(h.configFile);
  const active = new DecisionEngine(config, h.servicePassword, silentLogger);
  await active.load(users, policy);
  const profile = active.profileFor(users.users.get('alice@acme.com')!)!;
  const problems: string[] = [];
  let rewritten = 0;
  for (const sql of corpus) {
    const outcome = rewriteSql(sql, { profile, catalog: active.current!.catalog, searchPath: ['"$user"', 'public'], searchPathKnown: true });
    if (outcome.kind === 'refuse') problems.push(`refused (${outcome.error.message}): ${sql.slice(0, 160)}`);
    if (outcome.kind === 'rewrite') {
      rewritten++;
      const unqualified = (text: string) => text.replace(/"?\b(pg_catalog|information_schema|public)\b"?\./g, '');
      if (!/\bemployees\b|\bpg_class\b/.test(sql) && unqualified(outcome.sql) !== unqualified(sql)) {
        problems.push(`rewritten beyond schema qualification without reading a protected or guarded relation: ${sql.slice(0, 160)} → ${outcome.sql.slice(0, 200)}`);
      }
    }
  }
  assert.equal(problems, []);
  assert.ok(rewritten > 0, 'catalog reads of pg_class are guarded (reltuples hidden)');
});

test.run();
