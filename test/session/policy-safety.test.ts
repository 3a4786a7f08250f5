// A policy mistake never opens data (E4), through a running pgveil: a reload
// of an empty, truncated or misspelled policy is rejected at `error` and the
// old policy keeps filtering; a reload that loosens is applied and logged at
// `warn`; a misspelled table stops serve at startup with exit code 2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startHarness, clientConfig, policyDefaults, type Harness } from '../helpers/harness.js';
import type { Logger } from '../../src/observe/log.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Entry { level: string; msg: string; fields?: Record<string, unknown> }
const logged: Entry[] = [];
const logger: Logger = {
  debug: () => {},
  info: (msg, fields) => { logged.push({ level: 'info', msg, fields }); },
  warn: (msg, fields) => { logged.push({ level: 'warn', msg, fields }); },
  error: (msg, fields) => { logged.push({ level: 'error', msg, fields }); },
};

const policy = `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
    redaction:
      ssn: { mask: partial, keepLast: 4 }
`;

let h: Harness;
let policyFile: string;
test.before(async () => {
  h = await startHarness({ policyYaml: policy, logger });
  policyFile = join(h.dir, 'policy.yaml');
});
test.after(async () => { await h?.close(); });

async function aliceRows(): Promise<Array<{ name: string; ssn: string }>> {
  const c = new pg.Client(clientConfig(h, 'alice@acme.com'));
  await c.connect();
  try {
    return (await c.query('select name, ssn from crm.employees order by id')).rows;
  } finally {
    await c.end();
  }
}

const aliceSees = [{ name: 'Ann', ssn: 'XXXXXXX3333' }];

/** Writes policy.yaml, reloads, and returns the result with what every reload (explicit and the watcher's) logged. */
async function reloadWith(text: string): Promise<{ ok: boolean; entries: Entry[] }> {
  const from = logged.length;
  writeFileSync(policyFile, text);
  await new Promise((r) => setTimeout(r, 350)); // let the watcher's debounced reload run first, whichever applies it
  const ok = await h.proxy.reload();
  return { ok, entries: logged.slice(from) };
}

/** Puts the good policy back (the watcher's own reloads of the bad file are rejected the same way). */
async function restore(): Promise<void> {
  writeFileSync(policyFile, policy);
  assert.ok(await h.proxy.reload(), 'the good policy reloads');
}

function rejectedWith(r: { ok: boolean; entries: Entry[] }, text: string): void {
  assert.is(r.ok, false);
  const error = r.entries.find((e) => e.level === 'error');
  assert.ok(error, JSON.stringify(r.entries));
  assert.is(error.msg, 'reload rejected; keeping the previous users and policy');
  assert.ok(String(error.fields?.error).includes(text), String(error.fields?.error));
}

test('E4 an empty policy reload is rejected at error, the old policy stays: alice still sees only her rows', async () => {
  assert.equal(await aliceRows(), aliceSees);
  rejectedWith(await reloadWith(''), 'the policy file is empty');
  assert.equal(await aliceRows(), aliceSees);
  await restore();
});

test('E4 a truncated policy reload (defaults.unlistedRelations cut off) is rejected, the old policy stays', async () => {
  rejectedWith(await reloadWith(policy.split('\n').slice(0, 2).join('\n') + '\n'), 'defaults.unlistedRelations must be stated');
  assert.equal(await aliceRows(), aliceSees);
  await restore();
});

test('E4 a misspelled table on reload is rejected at error naming it, the old policy stays', async () => {
  rejectedWith(await reloadWith(policy.replace('crm.employees:', 'crm.employes:')), 'tables."crm.employes": no such table upstream: crm.employes');
  assert.equal(await aliceRows(), aliceSees);
  await restore();
});

test('E4 a misspelled redaction column on reload is rejected at error naming it, the old policy stays', async () => {
  rejectedWith(await reloadWith(policy.replace('ssn:', 'ssnn:')), 'tables."crm.employees".redaction.ssnn: no such column upstream: crm.employees.ssnn');
  assert.equal(await aliceRows(), aliceSees);
  await restore();
});

test('E4 a filter serve cannot parse is rejected on reload like check rejects it', async () => {
  rejectedWith(await reloadWith(policy.replace('"org_id = ${user.org}"', '"org_id = ${user.org}) OR (true"')), 'unbalanced ")"');
  assert.equal(await aliceRows(), aliceSees);
  await restore();
});

test('E4 a reload that loosens is applied and logged at warn with what loosened', async () => {
  const r = await reloadWith(policy.replace('    redaction:\n      ssn: { mask: partial, keepLast: 4 }\n', ''));
  assert.is(r.ok, true);
  const warn = r.entries.find((e) => e.level === 'warn');
  assert.ok(warn, JSON.stringify(r.entries));
  assert.is(r.entries.filter((e) => e.level === 'warn').length, 1, 'only the reload that loosened warns');
  assert.is(warn.msg, 'policy reload loosened the policy');
  assert.equal(warn.fields?.loosened, ['crm.employees.ssn: mask partial removed']);
  assert.equal(await aliceRows(), [{ name: 'Ann', ssn: '111-22-3333' }]);
  // Tightening back is an ordinary reload.
  const back = await reloadWith(policy);
  assert.is(back.ok, true);
  // (the watcher may reload the same file once more: also not a loosening)
  assert.ok(back.entries.length >= 1 && back.entries.every((e) => `${e.level} ${e.msg}` === 'info configuration reloaded'), JSON.stringify(back.entries));
  assert.equal(await aliceRows(), aliceSees);
});

test('E4 a misspelled table at startup: serve does not start, exit 2, one line naming the table', async () => {
  const bad = join(h.dir, 'policy-misspelled.yaml');
  writeFileSync(bad, policy.replace('crm.employees:', 'crm.employes:'));
  const config = join(h.dir, 'pgveil-misspelled.yaml');
  writeFileSync(config, readFileSync(h.configFile, 'utf8').replace('policy: policy.yaml', 'policy: policy-misspelled.yaml'));
  const child = spawn(process.execPath, [join(repo, 'bin/pgveil.js'), 'serve', '--config', config], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((done) => child.on('exit', done));
  assert.is(code, 2, stderr);
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
  assert.equal(lines, [`${bad}:5:3: tables."crm.employes": no such table upstream: crm.employes (a misspelled key would leave the real table unprotected)`]);
});

test.run();
