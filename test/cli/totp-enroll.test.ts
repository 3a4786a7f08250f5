// `pgveil totp enroll`: a new secret, shown once as an otpauth:// URI and a
// QR code, written sealed into users.yaml (rest of the file untouched); the
// running pgveil reloads it and the user logs in with password + code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { URI, TOTP } from 'otpauth';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { startHarness, clientConfig, today, type Harness } from '../helpers/harness.js';
import { pgveil } from '../helpers/run.js';
import { startOfStep } from '../helpers/totp-users.js';

const hank = { name: 'hank@acme.com', password: 'Hank-pass-0008' };
let h: Harness;
let usersFile: string;

test.before(async () => {
  h = await startHarness({
    extraUsers: `  # hank: finance team, second factor pending\n  ${hank.name}:\n    org: acme   # cost centre 17\n    password: "${createVerifier(hank.password)}"\n    passwordChangedAt: ${today()}\n`,
  });
  usersFile = join(h.dir, 'users.yaml');
  writeFileSync(usersFile, `# users of the analytics proxy (edited by hand and by pgveil)\n${readFileSync(usersFile, 'utf8')}# end of file\n`);
});
test.after(async () => { await h?.close(); });

test('totp enroll prints a pgveil otpauth URI and a QR code, writes a sealed secret keeping comments, and that secret logs in', async () => {
  const before = readFileSync(usersFile, 'utf8');
  const r = await pgveil(['totp', 'enroll', '--config', h.configFile, hank.name]);
  assert.is(r.status, 0, r.stderr);
  const uriLine = r.stdout.split('\n')[0];
  const totp = URI.parse(uriLine);
  assert.ok(totp instanceof TOTP);
  assert.is(totp.issuer, 'pgveil');
  assert.is(totp.label, hank.name);
  assert.is(totp.digits, 6);
  assert.is(totp.period, 30);
  assert.is(totp.algorithm, 'SHA1');
  assert.ok(r.stdout.split('\n').length > 10 && /[█▀▄]/.test(r.stdout), 'a QR code follows the URI');

  const after = readFileSync(usersFile, 'utf8');
  assert.match(after, /^    totp: "sealed:[A-Za-z0-9+/=]+"$/m);
  assert.not.ok(after.includes(totp.secret.base32), 'the secret is stored sealed only');
  for (const comment of ['# users of the analytics proxy (edited by hand and by pgveil)', '  # hank: finance team, second factor pending', '# end of file']) {
    assert.ok(after.includes(comment), `kept: ${comment}`);
  }
  // Hank's own entry is rendered by the yaml library: its comment stays, its spacing may not.
  assert.match(after, /^    org: acme +# cost centre 17$/m);
  const normalise = (text: string) => text.replace(/\n    totp: .*$/m, '').replace(/acme +# cost/, 'acme # cost');
  assert.is(normalise(after), normalise(before), 'only the totp line was added');

  assert.is(await h.proxy.reload(), true);
  const at = await startOfStep(5);
  const c = new pg.Client({ ...clientConfig(h, hank.name), password: hank.password + totp.generate({ timestamp: at }) });
  await c.connect();
  assert.is((await c.query('select count(*)::int as n from crm.employees')).rows[0].n, 1);
  await c.end();
  const without = new pg.Client({ ...clientConfig(h, hank.name), password: hank.password });
  without.on('error', () => {});
  const err = await without.connect().then(() => undefined, (e: Error & { code?: string }) => e);
  assert.is(err?.code, '28P01', 'the password alone no longer logs in');
});

test('totp enroll of an unknown user exits 2 naming the user and leaves users.yaml as it was', async () => {
  const before = readFileSync(usersFile, 'utf8');
  const r = await pgveil(['totp', 'enroll', '--config', h.configFile, 'nobody@acme.com']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /no user "nobody@acme\.com" in .*users\.yaml/);
  assert.is(readFileSync(usersFile, 'utf8'), before);
});

test('totp with a missing subcommand, user or --config is a usage error (exit 2)', async () => {
  for (const args of [['totp'], ['totp', 'enroll', '--config', h.configFile], ['totp', 'enrol', '--config', h.configFile, hank.name], ['totp', 'enroll', hank.name]]) {
    const r = await pgveil(args);
    assert.is(r.status, 2, args.join(' '));
  }
});

test.run();
