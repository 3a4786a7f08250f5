// `shadow:` in serve: real clients through a pgveil whose candidate policy
// tightens or loosens the active one. The client always gets the active
// policy's answer; the candidate's differences are only counted (and
// audited); its rewrites never reach upstream; a changed shadow file is
// swapped in alone, a bad one is rejected and the previous one stays.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { connectClient, passwords, policyDefaults, startHarness, type Harness } from '../helpers/harness.js';
import { UpstreamLog } from '../helpers/upstream-log.js';
import { pgveil } from '../helpers/run.js';
import { RawClient, msg } from '../helpers/raw-client.js';
import type { ProxyHandle } from '../../src/session/server.js';
import { activePolicy, differences, metricValue, settle, shadowConfig, startShadowProxy, tighterPolicy } from './shadow-proxy.js';

/** Loosens: lookup allowed to everyone, ssn shown. */
const looser = `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
  public.lookup: {}
`;

const upstream = new UpstreamLog();
let h: Harness;
let proxy: ProxyHandle;
let shadowFile: string;
let alice: pg.Client;
let bob: pg.Client;

test.before(async () => {
  h = await startHarness({ policyYaml: activePolicy, tlsMode: 'disable', postgresSettings: upstream.settings, onPostgresLog: upstream.onLog });
  shadowFile = join(h.dir, 'shadow.yaml');
  writeFileSync(shadowFile, tighterPolicy);
  proxy = await startShadowProxy(shadowConfig(h, shadowFile));
  alice = await connectClient(h, proxy.port, 'alice@acme.com');
  bob = await connectClient(h, proxy.port, 'bob@globex.com');
});
test.after(async () => {
  await alice?.end();
  await bob?.end();
  await proxy?.close();
  await h?.close();
});

const newlyRefused = () => differences(proxy, 'newly_refused');
const newlyAllowed = () => differences(proxy, 'newly_allowed');
const rewritten = () => differences(proxy, 'rewritten_differently');

test('a tightening shadow: the client gets the active answer, the candidate\'s refusal and rewrite are counted', async () => {
  assert.is(await metricValue(proxy.metrics.shadowGeneration), 1, 'the shadow policy is loaded');
  const lookup = await alice.query('SELECT code FROM public.lookup ORDER BY code');
  assert.equal(lookup.rows.map((r) => r.code), ['a', 'b'], 'the active policy allows lookup to acme');
  assert.is(await settle(newlyRefused, 1), 1, 'the candidate would have refused it');

  const salary = await alice.query('SELECT name, salary::int AS salary, ssn FROM crm.employees');
  assert.equal(salary.rows, [{ name: 'Ann', salary: 90000, ssn: 'XXXXXXX3333' }], 'salary is not nulled: the candidate is never enforced');
  assert.is(await settle(rewritten, 1), 1, 'the candidate would have nulled salary');

  // The extended protocol is shadowed too (a Parse is decided like a Query).
  const param = await alice.query('SELECT label FROM public.lookup WHERE code = $1', ['b']);
  assert.equal(param.rows, [{ label: 'Beta' }]);
  assert.is(await settle(newlyRefused, 2), 2);
});

test('statements decided alike under both policies are not counted', async () => {
  const refusedBoth = await bob.query('SELECT code FROM public.lookup').then(() => undefined, (e: { code?: string }) => e.code);
  assert.is(refusedBoth, '42501', 'the active policy denies lookup to globex');
  await bob.query('SELECT 1');
  // The candidate's queue is first in, first out: once this one is counted, the two above were decided.
  await alice.query('SELECT code FROM public.lookup');
  assert.is(await settle(newlyRefused, 3), 3);
  assert.is(await newlyAllowed(), 0);
  assert.is(await rewritten(), 1);
});

test('the candidate\'s rewrite never reaches upstream', async () => {
  upstream.clear();
  await alice.query('SELECT salary FROM crm.employees /* upstream-marker */');
  assert.is(await settle(rewritten, 2), 2);
  const sent = await upstream.last('upstream-marker');
  assert.match(sent, /pg_catalog\.right\(/, 'the active rewrite (ssn partially masked) went upstream');
  assert.not.match(sent, /NULL::/i, 'not the candidate\'s nulled salary');
  const statementsUpstream = (sent.match(/upstream-marker/g) ?? []).length;
  assert.is(statementsUpstream, 1);
});

test('a burst larger than the shadow queue: the rest is skipped and counted, every statement is still answered', async () => {
  const burst = 4000;
  const refusedBefore = await newlyRefused();
  const skippedBefore = await metricValue(proxy.metrics.shadowSkipped);
  const raw = await RawClient.connect(proxy.port);
  try {
    await raw.login('alice@acme.com', passwords['alice@acme.com']);
    // One write: the proxy decides the buffered queries one after another, faster than the shadow drains.
    raw.send(...Array.from({ length: burst }, () => msg.query('SELECT code FROM public.lookup')));
    let answered = 0;
    let rows = 0;
    while (answered < burst) {
      const m = await raw.message(30000);
      if (!m) throw new Error('the proxy closed the connection');
      if (m.type === 'D') rows++;
      if (m.type === 'E') throw new Error(`a statement was refused: ${m.body.toString()}`);
      if (m.type === 'Z') answered++;
    }
    assert.is(rows, burst * 2, 'every query got the active policy\'s rows');
  } finally {
    raw.close();
  }
  const shadowed = async () => (await newlyRefused()) - refusedBefore + (await metricValue(proxy.metrics.shadowSkipped)) - skippedBefore;
  assert.is(await settle(shadowed, burst), burst, 'each statement was either decided by the candidate or counted as skipped');
  assert.ok((await metricValue(proxy.metrics.shadowSkipped)) > skippedBefore, 'the queue bound was reached');
});

test('an edited shadow file is swapped in alone: the active policy keeps its generation, a loosening is counted', async () => {
  const activeGeneration = await metricValue(proxy.metrics.policyGeneration);
  writeFileSync(shadowFile, looser);
  assert.is(await settle(() => metricValue(proxy.metrics.shadowGeneration), 2), 2, 'the watcher loaded the new candidate');
  assert.is(await metricValue(proxy.metrics.policyGeneration), activeGeneration, 'the active policy was not reloaded');

  const refused = await bob.query('SELECT code FROM public.lookup').then(() => undefined, (e: { code?: string }) => e.code);
  assert.is(refused, '42501', 'bob is still refused: only the active policy is enforced');
  assert.is(await settle(newlyAllowed, 1), 1, 'the candidate would have let bob read lookup');

  const ssn = await alice.query('SELECT ssn FROM crm.employees');
  assert.equal(ssn.rows, [{ ssn: 'XXXXXXX3333' }], 'ssn stays masked for the client');
  assert.is(await settle(rewritten, 3), 3, 'the candidate would have shown ssn');
});

test('a bad shadow file is rejected: the previous candidate stays and keeps deciding', async () => {
  const failures = await metricValue(proxy.metrics.reloadFailures);
  writeFileSync(shadowFile, `${looser}  crm.nope: {}\n`); // no such table upstream
  assert.is(await settle(() => metricValue(proxy.metrics.reloadFailures), failures + 1), failures + 1, 'the load was rejected');
  assert.is(await metricValue(proxy.metrics.shadowGeneration), 2, 'the previous candidate stays');
  await bob.query('SELECT code FROM public.lookup').catch(() => undefined);
  assert.is(await settle(newlyAllowed, 2), 2, 'the looser candidate still decides');
});

test('a reload (SIGHUP) reloads the shadow with the active policy', async () => {
  writeFileSync(shadowFile, tighterPolicy);
  // The watcher may load it first; either way a reload then loads it once more.
  await settle(() => metricValue(proxy.metrics.shadowGeneration), 3);
  const before = await metricValue(proxy.metrics.shadowGeneration);
  const activeBefore = await metricValue(proxy.metrics.policyGeneration);
  assert.is(await proxy.reload(), true);
  assert.is(await metricValue(proxy.metrics.policyGeneration), activeBefore + 1);
  assert.is(await metricValue(proxy.metrics.shadowGeneration), before + 1, 'the shadow was loaded against the new active policy');
  const refusedBefore = await newlyRefused();
  await alice.query('SELECT code FROM public.lookup');
  assert.is(await settle(newlyRefused, refusedBefore + 1), refusedBefore + 1, 'the tighter candidate decides again');
});

test('pgveil serve refuses to start with a shadow policy that does not load, naming file:line:col (exit 2)', async () => {
  const serve = (configFile: string) => pgveil(['serve', '--config', configFile], { timeoutMs: 60000 });

  const invalidFile = join(h.dir, 'shadow-invalid.yaml');
  writeFileSync(invalidFile, looser.replace('unlistedRelations: allow', 'unlistedRelations: maybe'));
  const invalid = await serve(shadowConfig(h, invalidFile));
  assert.is(invalid.status, 2, invalid.stderr);
  assert.match(invalid.stderr, /shadow-invalid\.yaml:3:32: defaults\.unlistedRelations: /);

  const unknownTable = join(h.dir, 'shadow-unknown-table.yaml');
  writeFileSync(unknownTable, `${looser}  crm.nope: {}\n`);
  const unknown = await serve(shadowConfig(h, unknownTable));
  assert.is(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /shadow-unknown-table\.yaml:\d+:3: .*no such table upstream: crm\.nope/);
});

test.run();
