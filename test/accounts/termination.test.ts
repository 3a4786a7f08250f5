// Prompt termination, end to end with the audit log on: a user removed from
// users.yaml or disabled in it by a plain file edit (picked up by the file
// watch, no reload call or SIGHUP), and `pgveil sessions kill`, end that
// person's open sessions with 57P01, leave the others running, and leave a
// `disconnect` record (and, for the kill, an `admin` record) in the audit log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, type ProxyHandle } from '../../src/session/server.js';
import { seal } from '../../src/secrets/seal.js';
import { freePort } from '../../src/demo/embedded-postgres.js';
import { silentLogger } from '../../src/observe/log.js';
import { connectClient, startHarness, writeConfig, type Harness } from '../helpers/harness.js';
import { pgveil, waitFor } from '../helpers/run.js';
import { ofEvent, waitForAudit } from '../audit-wiring/audit-file.js';
import { newToken } from '../operations/ops-setup.js';

let h: Harness;
let proxy: ProxyHandle;
let usersFile: string;
let configFile: string;
let auditFile: string;
let auditDir: string;
const token = newToken();

test.before(async () => {
  h = await startHarness({ tlsMode: 'prefer' });
  usersFile = join(h.dir, 'users-termination.yaml');
  writeFileSync(usersFile, readFileSync(join(h.dir, 'users.yaml')));
  auditDir = mkdtempSync(join(tmpdir(), 'pgveil-termination-'));
  auditFile = join(auditDir, 'audit.jsonl');
  const masterKey = Buffer.from(readFileSync(join(h.dir, 'master.key'), 'utf8').trim(), 'base64');
  configFile = writeConfig(h, [
    'users: users-termination.yaml',
    `admin: { host: 127.0.0.1, port: ${await freePort()}, token: "${seal(token, masterKey)}" }`,
    `audit: { file: ${auditFile}, statements: none }`,
  ]);
  proxy = await startProxy({ configFile, logger: silentLogger, watch: true });
});

test.after(async () => {
  await proxy?.close();
  await h?.close();
  rmSync(auditDir, { recursive: true, force: true });
});

/** Edits users.yaml the way an editor saves it: the whole file written again. */
function editUsers(change: (text: string) => string): void {
  writeFileSync(usersFile, change(readFileSync(usersFile, 'utf8')));
}

test('pgveil sessions kill ends that session with 57P01 and leaves disconnect and admin records in the audit log', async () => {
  const bob = await connectClient(h, proxy.port, 'bob@globex.com');
  await bob.query('select 1');
  const listed = await pgveil(['sessions', '--config', configFile, '--json']);
  assert.is(listed.status, 0, listed.stderr);
  const sessions = JSON.parse(listed.stdout) as Array<{ id: string; user: string }>;
  const id = sessions.find((s) => s.user === 'bob@globex.com')!.id;
  const killed = await pgveil(['sessions', '--config', configFile, 'kill', id]);
  assert.is(killed.status, 0, killed.stderr);
  await waitFor('bob to be told', () => bob.lastError !== undefined);
  assert.is(bob.lastError!.code, '57P01');
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'disconnect', { session: id, reason: 'terminated' }).length === 1
    && ofEvent(r, 'admin', { action: 'terminate', target: id, outcome: 'ok' }).length === 1);
  assert.ok(records.length > 0);
});

test('disabling a user in users.yaml (a file edit) ends their open session with 57P01 and an audit disconnect record', async () => {
  const bob = await connectClient(h, proxy.port, 'bob@globex.com');
  editUsers((text) => text.replace(/(\n  bob@globex\.com:\n)/, '$1    disabled: true\n'));
  await waitFor('bob to be told', () => bob.lastError !== undefined);
  assert.is(bob.lastError!.code, '57P01');
  assert.match(bob.lastError!.message, /the user was disabled/);
  await waitForAudit(auditFile, (r) => ofEvent(r, 'disconnect', { user: 'bob@globex.com', reason: 'user_disabled' }).length === 1);
});

test('removing a user from users.yaml (a file edit, no reload call) ends their open session with 57P01 and an audit disconnect record', async () => {
  const carol = await connectClient(h, proxy.port, 'carol@acme.com');
  const alice = await connectClient(h, proxy.port, 'alice@acme.com');
  await carol.query('select 1');
  editUsers((text) => text.replace(/\n  carol@acme\.com:\n(?: {4}.*\n)*/, '\n'));
  assert.not.ok(readFileSync(usersFile, 'utf8').includes('carol@acme.com'), 'the edit removed carol');
  await waitFor('carol to be told', () => carol.lastError !== undefined);
  assert.is(carol.lastError!.code, '57P01');
  assert.match(carol.lastError!.message, /the user was removed/);
  const records = await waitForAudit(auditFile, (r) => ofEvent(r, 'disconnect', { user: 'carol@acme.com' }).length === 1);
  assert.is(ofEvent(records, 'disconnect', { user: 'carol@acme.com' })[0].reason, 'user_disabled');
  assert.is((await alice.query('select 1 as one')).rows[0].one, 1, 'other users go on');
  await alice.end();
});

test.run();
