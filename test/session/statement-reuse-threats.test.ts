// Upstream statement reuse over the threat corpus: every SELECT or WITH
// statement the threat suites send (the string literals of
// test/threats/{a-reaching-rows,b-redacted-values,b-statistics-explain,c-identity}.test.ts,
// read from their sources) runs on the section-A threat schema and policy
// through two proxies, reuse off and on, as a user of each organization;
// the client must receive the same bytes from both (errors but for their
// position and source location, as documented). Statements whose answer
// changes by itself between two runs (sequences, clocks, random, backend
// ids) are left out: two proxies on one database could not agree on them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import type { Harness } from '../helpers/harness.js';
import { startReusePair, type ReusePair } from '../helpers/reuse-pair.js';
import { msg, comparableAnswer as comparable } from '../helpers/raw-client.js';
import { threatSchemaSql, threatPolicy } from '../threats/a-schema.js';
import type { ProxyHandle } from '../../src/session/server.js';

const sources = ['a-reaching-rows', 'b-redacted-values', 'b-statistics-explain', 'c-identity']
  .map((name) => readFileSync(new URL(`../../../test/threats/${name}.test.ts`, import.meta.url), 'utf8'));
const UNSTABLE = /nextval|setval|currval|random|now\(|clock_|timeofday|pg_backend_pid|txid|current_time|localtime|pg_sleep|statement_timestamp|gen_random|pg_stat|inet_|pg_postmaster|uptime|version\(/i;

/** The threat suites' SELECT and WITH statements, as written in their sources. */
function threatCorpus(): string[] {
  const found = new Set<string>();
  for (const src of sources) {
    for (const m of src.matchAll(/'((?:select|with)\b(?:[^'\\\n]|\\.)*)'|`((?:select|with)\b[^`$\\]*)`/gi)) {
      const sql = (m[1] ?? m[2]).replace(/\\'/g, '\'');
      if (!UNSTABLE.test(sql)) found.add(sql);
    }
  }
  return [...found];
}

let pair: ReusePair;
let h: Harness;
let inline: ProxyHandle;
let connect: ReusePair['connect'];

test.before(async () => {
  pair = await startReusePair({ extraSql: threatSchemaSql, policyYaml: threatPolicy });
  ({ h, inline, connect } = pair);
});
test.after(async () => { await pair?.close(); });

test('the threat suites\' statements answer byte for byte the same with reuse on as off, for a user of each organization', async () => {
  const corpus = threatCorpus();
  assert.ok(corpus.length >= 150, `the threat corpus is there (${corpus.length} statements)`);
  const prepared = async () => Object.fromEntries((await h.proxy.metrics.upstreamStatements.get()).values.map((v) => [String(v.labels.how), v.value]));
  const before = await prepared();
  const found: string[] = [];
  for (const user of ['alice@acme.com', 'bob@globex.com']) {
    const a = await connect(inline, user);
    const b = await connect(h.proxy, user);
    for (let round = 0; round < 2; round++) {
      for (const sql of corpus) {
        a.send(msg.query(sql));
        b.send(msg.query(sql));
        const [x, y] = [(await a.untilReady()).map(comparable), (await b.untilReady()).map(comparable)];
        if (x.join(' ') !== y.join(' ')) found.push(`${user} round ${round} ${JSON.stringify(sql)}:\n  inline ${x.join(' ')}\n  reused ${y.join(' ')}`);
      }
    }
  }
  assert.equal(found, []);
  const after = await prepared();
  assert.ok((after.reused ?? 0) > (before.reused ?? 0), `statements of the threat corpus ran as pgveil's prepared statements: ${JSON.stringify(after)}`);
});

test.run();
