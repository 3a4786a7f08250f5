import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMasterKey, loadMasterKey, loadMasterKeyInfo } from '../../src/secrets/master-key.js';
import { isSealed, openSealed, resolveSecret, seal } from '../../src/secrets/seal.js';

const keyText = generateMasterKey();
const key = new Uint8Array(Buffer.from(keyText, 'base64'));
const dir = mkdtempSync(join(tmpdir(), 'pgveil-seal-'));

function keyFile(name: string, content: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  return file;
}

function errorOf(fn: () => unknown): Error {
  try { fn(); } catch (err) { return err as Error; }
  throw new Error('expected an error');
}

test('generateMasterKey: base64 of 32 random bytes', () => {
  assert.is(Buffer.from(keyText, 'base64').length, 32);
  assert.is(Buffer.from(keyText, 'base64').toString('base64'), keyText);
  assert.is.not(generateMasterKey(), keyText);
});

test('seal / openSealed round trip', () => {
  for (const secret of ['p@ss', '', 'ünïcödé \u{1F642}', 'x'.repeat(10_000)]) {
    const sealed = seal(secret, key);
    assert.ok(isSealed(sealed));
    assert.ok(sealed.startsWith('sealed:'));
    assert.not.ok(sealed.includes(secret) && secret.length > 0);
    assert.is(openSealed(sealed, key), secret);
  }
  assert.is.not(seal('same', key), seal('same', key), 'a fresh nonce each time');
  const raw = Buffer.from(seal('abc', key).slice(7), 'base64');
  assert.is(raw.length, 24 + 16 + 3, 'nonce ‖ secretbox');
});

test('wrong key: clear error without the value', () => {
  const sealed = seal('top secret', key);
  const other = new Uint8Array(Buffer.from(generateMasterKey(), 'base64'));
  const err = errorOf(() => openSealed(sealed, other));
  assert.is(err.message, 'sealed value could not be opened with this master key (was it sealed with another key?)');
  assert.not.ok(err.message.includes(sealed.slice(7)));
});

test('tampered or malformed values are refused', () => {
  const sealed = seal('top secret', key);
  const raw = Buffer.from(sealed.slice(7), 'base64');
  raw[raw.length - 1] ^= 1;
  assert.is(errorOf(() => openSealed('sealed:' + raw.toString('base64'), key)).message, 'sealed value could not be opened with this master key (was it sealed with another key?)');
  raw[raw.length - 1] ^= 1;
  raw[3] ^= 1; // nonce
  assert.throws(() => openSealed('sealed:' + raw.toString('base64'), key), /could not be opened/);
  assert.throws(() => openSealed('sealed:AAAA', key), /malformed/);
  assert.throws(() => openSealed('sealed:not base64!', key), /malformed/);
  assert.throws(() => openSealed('plain', key), /not sealed/);
  assert.throws(() => seal('x', new Uint8Array(16)), /32 bytes/);
});

test('resolveSecret: opens sealed values, passes plain ones, loads the key only when needed', () => {
  let loads = 0;
  const lazy = () => { loads++; return key; };
  assert.is(resolveSecret(undefined, lazy, 'x.yaml: a'), undefined);
  assert.is(resolveSecret('plain-password', lazy, 'x.yaml: a'), 'plain-password');
  assert.is(loads, 0);
  assert.is(resolveSecret(seal('hidden', key), lazy, 'x.yaml: a'), 'hidden');
  assert.is(loads, 1);
  assert.throws(() => resolveSecret('sealed:AAAA', () => { throw new Error('no master key'); }, 'x.yaml: a'), /^x\.yaml: a: no master key/);
  const other = seal('hidden', new Uint8Array(32).fill(9));
  const err = errorOf(() => resolveSecret(other, () => key, 'pgveil.yaml: upstream.password'));
  assert.is(err.message, 'pgveil.yaml: upstream.password: sealed value could not be opened with this master key (was it sealed with another key?)');
  assert.not.ok(err.message.includes(other.slice(7, 20)), 'never the value');
});

test('master key from the environment or a file; the environment wins', () => {
  const file = keyFile('master.key', `\n  ${keyText}  \n`);
  const fromFile = loadMasterKeyInfo({ masterKeyFile: file }, {});
  assert.is(fromFile.source, 'file');
  assert.equal(fromFile.key, key);
  assert.equal(fromFile.warnings, []);
  const otherText = generateMasterKey();
  const fromEnv = loadMasterKeyInfo({ masterKeyFile: file }, { PGVEIL_MASTER_KEY: otherText });
  assert.is(fromEnv.source, 'env');
  assert.equal(Buffer.from(fromEnv.key), Buffer.from(otherText, 'base64'));
  assert.equal(loadMasterKey({}, { PGVEIL_MASTER_KEY: keyText }), key);
});

test('master key: bad length, bad base64, missing — clear errors that never show the key', () => {
  const short = Buffer.alloc(16, 0xab).toString('base64');
  let err = errorOf(() => loadMasterKey({}, { PGVEIL_MASTER_KEY: short }));
  assert.match(err.message, /exactly 32 bytes, got 16/);
  assert.match(err.message, /PGVEIL_MASTER_KEY/);
  assert.not.ok(err.message.includes(short));
  err = errorOf(() => loadMasterKey({}, { PGVEIL_MASTER_KEY: 'not*base64' }));
  assert.match(err.message, /not valid base64/);
  assert.not.ok(err.message.includes('not*base64'));
  err = errorOf(() => loadMasterKey({ masterKeyFile: keyFile('long.key', Buffer.alloc(64).toString('base64')) }, {}));
  assert.match(err.message, /long\.key must decode to exactly 32 bytes, got 64/);
  err = errorOf(() => loadMasterKey({ masterKeyFile: join(dir, 'missing.key') }, {}));
  assert.match(err.message, /cannot read master key file .*missing\.key \(ENOENT\)/);
  err = errorOf(() => loadMasterKey({}, {}));
  assert.match(err.message, /no master key/);
  err = errorOf(() => loadMasterKey({ masterKeyFile: keyFile('empty.key', '\n') }, {}));
  assert.match(err.message, /empty/);
});

test('master key file readable by group or others: a warning to log', () => {
  if (process.platform === 'win32') return;
  const file = keyFile('open.key', keyText, 0o644);
  const info = loadMasterKeyInfo({ masterKeyFile: file }, {});
  assert.is(info.warnings.length, 1);
  assert.match(info.warnings[0], /readable by group or others \(mode 644\)/);
  assert.not.ok(info.warnings[0].includes(keyText));
  const seen: string[] = [];
  loadMasterKey({ masterKeyFile: file }, {}, (w) => seen.push(w));
  assert.is(seen.length, 1);
});

test.run();
