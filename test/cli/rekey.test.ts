// pgveil rekey: master-key rotation without the secrets' plain text. Real files,
// the real CLI as a child process, and the loader serve uses to read them back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { openSealed, seal } from '../../src/secrets/seal.js';
import { policyScrambleKey } from '../../src/policy/scramble-install.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'bin/pgveil.js');
const keyOf = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
const SEALED = /sealed:[A-Za-z0-9+/=]+/g;

function pgveil(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.PGVEIL_MASTER_KEY;
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function workspace(scrambleKey?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-rekey-'));
  const oldKey = generateMasterKey();
  const newKey = generateMasterKey();
  writeFileSync(join(dir, 'master.key'), oldKey + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'new.key'), newKey + '\n', { mode: 0o600 });
  const config = join(dir, 'pgveil.yaml');
  writeFileSync(config, `# production config
listen: { host: 127.0.0.1, port: 0 }
tls: { mode: disable, minVersion: TLSv1.2 }
upstream:
  host: 127.0.0.1
  port: 5432
  database: analytics
  user: pgveil_service
  password: ${seal('upstream-secret', keyOf(oldKey))}   # rotated 2026-01
  tls: { mode: disable }
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
admin: { host: 127.0.0.1, port: 0, token: '${seal('admin-token-value', keyOf(oldKey))}' }
`);
  writeFileSync(join(dir, 'users.yaml'), 'organizations: { acme: {} }\nusers:\n  alice@acme.com: { org: acme }\n');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, `layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: allow }
secrets:
  scrambleKey: "${scrambleKey ?? seal('k'.repeat(32), keyOf(oldKey))}"   # the pseudonym key
`);
  return { dir, config, policy, oldKey, newKey };
}

test('rekey re-seals every sealed value under the new key; the plain text and every other byte stay', async () => {
  const w = workspace();
  const before = { config: readFileSync(w.config, 'utf8'), policy: readFileSync(w.policy, 'utf8') };
  const { loadAll } = await import('../../src/config/load.js');
  const scrambleKey = () => {
    const loaded = loadAll(w.config);
    return policyScrambleKey(loaded.policy.secrets.scrambleKey, loaded.config.secrets, loaded.policy.file);
  };
  const keyBefore = scrambleKey();
  const r = pgveil(['rekey', '--config', w.config, '--new-key-file', join(w.dir, 'new.key')]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /upstream\.password, admin\.token/);
  assert.match(r.stdout, /secrets\.scrambleKey/);
  const after = { config: readFileSync(w.config, 'utf8'), policy: readFileSync(w.policy, 'utf8') };
  for (const which of ['config', 'policy'] as const) {
    assert.is(after[which].replace(SEALED, 'S').replace(/'S'|"S"/g, 'S'), before[which].replace(SEALED, 'S').replace(/'S'|"S"/g, 'S'), `${which}: only the sealed values changed`);
    const oldValues = before[which].match(SEALED)!.map((v) => openSealed(v, keyOf(w.oldKey)));
    const newValues = after[which].match(SEALED)!.map((v) => openSealed(v, keyOf(w.newKey)));
    assert.equal(newValues, oldValues);
    for (const v of after[which].match(SEALED)!) assert.throws(() => openSealed(v, keyOf(w.oldKey)));
  }
  assert.is(statSync(w.config).mode & 0o777, 0o644 & ~process.umask());
  // serve's loader opens them with the new key.
  assert.throws(scrambleKey, /could not be opened/, 'the old key no longer opens it');
  writeFileSync(join(w.dir, 'master.key'), w.newKey + '\n', { mode: 0o600 });
  assert.equal(scrambleKey(), keyBefore, 'the same scramble key (pseudonyms unchanged)');
});

test('rekey changes nothing when one value does not open with the current key (exit 1, the value named)', () => {
  const w = workspace(seal('x'.repeat(32), keyOf(generateMasterKey())));
  const before = { config: readFileSync(w.config, 'utf8'), policy: readFileSync(w.policy, 'utf8') };
  const r = pgveil(['rekey', '--config', w.config, '--new-key-file', join(w.dir, 'new.key')]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /policy\.yaml: secrets\.scrambleKey: sealed value could not be opened with this master key/);
  assert.match(r.stderr, /no file was changed/);
  assert.is(readFileSync(w.config, 'utf8'), before.config);
  assert.is(readFileSync(w.policy, 'utf8'), before.policy);
});

test('rekey usage errors: the same key, a missing option (exit 2)', () => {
  const w = workspace();
  assert.is(pgveil(['rekey', '--config', w.config, '--new-key-file', join(w.dir, 'master.key')]).code, 2);
  assert.is(pgveil(['rekey', '--config', w.config]).code, 2);
});

test.run();
