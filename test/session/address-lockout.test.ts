// Threat E3 in docs/threat-model.md (connection floods): after too many failed logins from one
// client address, whatever the user names, new connections from it are
// refused at accept until the block runs out. A successful login does not
// reset the count, so one valid account cannot launder a guessing run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startHarness, clientConfig, passwords, type Harness } from '../helpers/harness.js';

let h: Harness;
test.before(async () => {
  h = await startHarness({ addressLockout: { maxFailures: 3, windowSeconds: 60, lockSeconds: 2 } });
});
test.after(async () => { await h?.close(); });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function login(user: string, password: string): Promise<{ code?: string; message?: string } | undefined> {
  const c = new pg.Client(clientConfig(h, user, { password }));
  c.on('error', () => {});
  try {
    await c.connect();
    await c.end();
    return undefined;
  } catch (e) {
    return e as { code?: string; message?: string };
  }
}

const refusedForAddress = async () => (await h.proxy.metrics.connectionsRefused.get()).values.find((v) => v.labels.reason === 'address_blocked')?.value ?? 0;

test('E3 an address is blocked after too many failed logins under any names, and the block runs out', async () => {
  assert.is((await login('nobody@nowhere.example', 'wrong-password-1'))?.code, '28P01');
  assert.is((await login('alice@acme.com', 'wrong-password-2'))?.code, '28P01');
  assert.is((await login('bob@globex.com', 'wrong-password-3'))?.code, '28P01');
  const blocked = await login('carol@acme.com', passwords['carol@acme.com']);
  assert.is(blocked?.code, '28000', 'even a right password is refused from this address');
  assert.match(blocked?.message ?? '', /too many failed logins from this address/);
  assert.is(await refusedForAddress(), 1);
  await sleep(2100);
  assert.is(await login('carol@acme.com', passwords['carol@acme.com']), undefined, 'the block ran out');
  assert.is(await login('alice@acme.com', passwords['alice@acme.com']), undefined, 'one failure each: no user was locked');
});

test('E3 a successful login in between does not reset the address count', async () => {
  await sleep(2100); // the block of the test above has run out, and with it the count
  assert.is((await login('dave@nowhere.example', 'wrong-password-4'))?.code, '28P01');
  assert.is((await login('erin@nowhere.example', 'wrong-password-5'))?.code, '28P01');
  assert.is(await login('alice@acme.com', passwords['alice@acme.com']), undefined);
  assert.is((await login('frank@nowhere.example', 'wrong-password-6'))?.code, '28P01');
  assert.is((await login('alice@acme.com', passwords['alice@acme.com']))?.code, '28000');
});

test.run();
