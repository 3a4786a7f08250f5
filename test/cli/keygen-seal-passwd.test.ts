// The keygen, seal and passwd commands, run as a user runs them: the real
// launcher in a child process, secrets on stdin, results on stdout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVerifier, verifierMatches } from '../../src/auth/scram-verifier.js';
import { generateMasterKey } from '../../src/secrets/master-key.js';
import { openSealed } from '../../src/secrets/seal.js';
import { loadUsers } from '../../src/config/load.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'bin/pgveil.js');

interface Run { code: number | null; stdout: string; stderr: string }

function pgveil(args: string[], opts: { input?: string; env?: Record<string, string | undefined> } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, PGVEIL_MASTER_KEY: undefined, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, input: opts.input ?? '', env: env as NodeJS.ProcessEnv, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const keyOf = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

function workspace(policy = '{ minLength: 12, minClasses: 3, maxAgeDays: 90, history: 2 }') {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-cli-'));
  const masterKey = generateMasterKey();
  writeFileSync(join(dir, 'master.key'), masterKey + '\n', { mode: 0o600 });
  const config = join(dir, 'pgveil.yaml');
  writeFileSync(config, `# test config
listen: { host: 127.0.0.1, port: 0 }
tls: { mode: disable, minVersion: TLSv1.2 }
upstream:
  host: 127.0.0.1
  port: 5432
  database: analytics
  user: pgveil_service
  tls: { mode: disable }
  connectTimeoutMs: 20000
secrets: { masterKeyFile: master.key }
users: users.yaml
policy: policy.yaml
auth:
  lockout: { maxFailures: 5, windowSeconds: 900, lockSeconds: 1800 }
  idleTimeoutSeconds: 900
  passwordPolicy: ${policy}
`);
  const oldVerifier = createVerifier('Old-password-1');
  const olderVerifier = createVerifier('Older-password-2');
  const users = join(dir, 'users.yaml');
  writeFileSync(users, `# Directory of pgveil users.
organizations:
  acme: {}   # the main tenant

users:
  # Alice runs the analytics team.
  alice@acme.com:
    org: acme
    groups: [analysts]   # keep in sync with the BI tool
    password: "${oldVerifier}"
    passwordChangedAt: 2020-01-01
    passwordHistory:
      - "${olderVerifier}"   # set in 2019
  bob@acme.com:
    org: acme
    # no password yet
`);
  writeFileSync(join(dir, 'policy.yaml'), 'layers: { access: true, ownership: true, redaction: true }\ndefaults: { unlistedRelations: allow }\n');
  return { dir, config, users, masterKey, oldVerifier, olderVerifier };
}

// ---------------------------------------------------------------- keygen

test('keygen prints a valid key', () => {
  const r = pgveil(['keygen']);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.is(lines.length, 2);
  assert.is(lines[1], '');
  assert.is(Buffer.from(lines[0], 'base64').length, 32);
  assert.is(Buffer.from(lines[0], 'base64').toString('base64'), lines[0]);
});

test('keygen --out writes mode 0600 and never replaces a key without --force', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-keygen-'));
  const file = join(dir, 'master.key');
  let r = pgveil(['keygen', '--out', file]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '', 'the key is not printed when written');
  assert.is(statSync(file).mode & 0o777, 0o600);
  const first = readFileSync(file, 'utf8');
  assert.is(Buffer.from(first.trim(), 'base64').length, 32);
  r = pgveil(['keygen', '--out', file]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /already exists/);
  assert.is(readFileSync(file, 'utf8'), first);
  r = pgveil(['keygen', '--out', file, '--force']);
  assert.is(r.code, 0, r.stderr);
  assert.is.not(readFileSync(file, 'utf8'), first);
  assert.is(statSync(file).mode & 0o777, 0o600);
});

test('keygen usage errors exit 2; --help documents every option', () => {
  assert.is(pgveil(['keygen', 'extra']).code, 2);
  assert.is(pgveil(['keygen', '--bogus']).code, 2);
  assert.is(pgveil(['keygen', '--force']).code, 2);
  const help = pgveil(['keygen', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /--out FILE/);
  assert.match(help.stdout, /--force/);
});

// ---------------------------------------------------------------- seal

test('seal with PGVEIL_MASTER_KEY: output opens with the key; one trailing newline dropped', () => {
  const key = generateMasterKey();
  let r = pgveil(['seal'], { input: 'upstream-pw\n', env: { PGVEIL_MASTER_KEY: key } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sealed:[A-Za-z0-9+/=]+\n$/);
  assert.is(openSealed(r.stdout.trim(), keyOf(key)), 'upstream-pw');
  r = pgveil(['seal'], { input: 'two\n\n', env: { PGVEIL_MASTER_KEY: key } });
  assert.is(openSealed(r.stdout.trim(), keyOf(key)), 'two\n');
  r = pgveil(['seal'], { input: 'no newline', env: { PGVEIL_MASTER_KEY: key } });
  assert.is(openSealed(r.stdout.trim(), keyOf(key)), 'no newline');
  assert.not.ok(r.stderr.includes('no newline'));
});

test('seal --config uses secrets.masterKeyFile; the environment wins over it', () => {
  const w = workspace();
  let r = pgveil(['seal', '--config', w.config], { input: 's3cret\n' });
  assert.is(r.code, 0, r.stderr);
  assert.is(openSealed(r.stdout.trim(), keyOf(w.masterKey)), 's3cret');
  const envKey = generateMasterKey();
  r = pgveil(['seal', '--config', w.config], { input: 's3cret\n', env: { PGVEIL_MASTER_KEY: envKey } });
  assert.is(r.code, 0, r.stderr);
  assert.is(openSealed(r.stdout.trim(), keyOf(envKey)), 's3cret');
});

test('seal errors: no key source (2), empty input (1), bad key (1, key not shown), config error (2)', () => {
  let r = pgveil(['seal'], { input: 'x\n' });
  assert.is(r.code, 2);
  assert.match(r.stderr, /--config/);
  r = pgveil(['seal'], { input: '\n', env: { PGVEIL_MASTER_KEY: generateMasterKey() } });
  assert.is(r.code, 1);
  assert.match(r.stderr, /empty/);
  const shortKey = Buffer.alloc(16, 1).toString('base64');
  r = pgveil(['seal'], { input: 'x\n', env: { PGVEIL_MASTER_KEY: shortKey } });
  assert.is(r.code, 1);
  assert.match(r.stderr, /32 bytes/);
  assert.not.ok(r.stderr.includes(shortKey));
  const w = workspace();
  writeFileSync(w.config, 'listen: [not, a, mapping\n');
  r = pgveil(['seal', '--config', w.config], { input: 'x\n' });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /pgveil\.yaml:\d+:\d+/);
  const help = pgveil(['seal', '--help']);
  assert.match(help.stdout, /--config FILE/);
});

// ---------------------------------------------------------------- passwd

test('passwd without --config prints a verifier for the first line of stdin', () => {
  const r = pgveil(['passwd', 'carol@acme.com'], { input: 'any password at all\nignored second line\n' });
  assert.is(r.code, 0, r.stderr);
  const verifier = r.stdout.trim();
  assert.match(verifier, /^SCRAM-SHA-256\$4096:/);
  assert.ok(verifierMatches(verifier, 'any password at all'));
  assert.not.ok(r.stderr.includes('any password'));
});

test('passwd --iterations', () => {
  const r = pgveil(['passwd', '--iterations', '5000', 'carol'], { input: 'pw\n' });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^SCRAM-SHA-256\$5000:/);
  assert.is(pgveil(['passwd', '--iterations', '100', 'carol'], { input: 'pw\n' }).code, 2);
  assert.is(pgveil(['passwd', '--iterations', 'many', 'carol'], { input: 'pw\n' }).code, 2);
});

test('passwd --config enforces the password policy', () => {
  const w = workspace();
  let r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'Short-1\n' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /too short/);
  assert.is(r.stdout, '');
  r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'onlylowercaseletters\n' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /character classes/);
  r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'Old-password-1\n' });
  assert.is(r.code, 1, 'the current password is history');
  assert.match(r.stderr, /used recently/);
  r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'Older-password-2\n' });
  assert.is(r.code, 1, 'so is the one in passwordHistory');
  assert.match(r.stderr, /used recently/);
  r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 0, r.stderr);
  assert.ok(verifierMatches(r.stdout.trim(), 'Brand-new-password-3'));
  r = pgveil(['passwd', '--config', w.config, 'new-user@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 0, 'printing a verifier for a user not yet in users.yaml is fine');
});

test('passwd usage and configuration errors exit 2', () => {
  const w = workspace();
  assert.is(pgveil(['passwd'], { input: 'x\n' }).code, 2);
  assert.is(pgveil(['passwd', 'a', 'b'], { input: 'x\n' }).code, 2);
  assert.is(pgveil(['passwd', '--write', 'alice@acme.com'], { input: 'x\n' }).code, 2);
  assert.is(pgveil(['passwd', '--bogus', 'alice'], { input: 'x\n' }).code, 2);
  writeFileSync(w.users, 'users:\n  alice@acme.com: [broken\n');
  const r = pgveil(['passwd', '--config', w.config, 'alice@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /users\.yaml:\d+:\d+/);
  const help = pgveil(['passwd', '--help']);
  for (const opt of ['--config FILE', '--write', '--iterations N']) assert.ok(help.stdout.includes(opt), opt);
});

test('passwd --write updates users.yaml in place, keeping comments', () => {
  const w = workspace();
  const before = readFileSync(w.users, 'utf8');
  const r = pgveil(['passwd', '--config', w.config, '--write', 'alice@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '');
  const after = readFileSync(w.users, 'utf8');
  for (const comment of ['# Directory of pgveil users.', '# the main tenant', '# Alice runs the analytics team.',
    '# keep in sync with the BI tool', '# no password yet']) {
    assert.ok(after.includes(comment), `kept ${comment}`);
  }
  assert.is.not(after, before);
  const users = loadUsers(w.users);
  const alice = users.users.get('alice@acme.com')!;
  assert.ok(verifierMatches(alice.password!, 'Brand-new-password-3'));
  assert.is(alice.passwordChangedAt, new Date().toISOString().slice(0, 10));
  assert.equal(alice.passwordHistory, [w.oldVerifier, w.olderVerifier], 'the replaced verifier first (newest first)');
  assert.is(users.users.get('bob@acme.com')!.password, undefined, 'other users untouched');

  // The history rule now sees the replaced password.
  let again = pgveil(['passwd', '--config', w.config, '--write', 'alice@acme.com'], { input: 'Old-password-1\n' });
  assert.is(again.code, 1);
  again = pgveil(['passwd', '--config', w.config, '--write', 'alice@acme.com'], { input: 'Another-password-4\n' });
  assert.is(again.code, 0, again.stderr);
  const third = loadUsers(w.users).users.get('alice@acme.com')!;
  assert.is(third.passwordHistory.length, 2, 'trimmed to history: 2');
  assert.ok(verifierMatches(third.passwordHistory[0], 'Brand-new-password-3'));
  assert.is(third.passwordHistory[1], w.oldVerifier);
});

test('E5 passwd --write keeps the layout: a flow entry stays one flow line, every other line stays byte for byte', () => {
  const w = workspace();
  const others = `# Directory of pgveil users.
organizations: { acme: {} }     # the main tenant
users:
  bob@acme.com:
    org: acme      # spaced comment
    groups:   [a,  b]
`;
  writeFileSync(w.users, others + `  carol@acme.com: { org: acme, groups: [analysts], password: "${w.oldVerifier}" }   # Carol\n  dave@acme.com: { org: acme }\n`);
  const r = pgveil(['passwd', '--config', w.config, '--write', 'carol@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 0, r.stderr);
  const lines = readFileSync(w.users, 'utf8').split('\n');
  assert.is(lines.slice(0, 6).join('\n') + '\n', others, 'lines before the entry unchanged');
  assert.is(lines.length, 9, 'no line added or removed');
  assert.match(lines[6], /^  carol@acme\.com: \{ org: acme, groups: \[ ?analysts ?\], password: "SCRAM-SHA-256\$[^"]+", passwordChangedAt: [0-9-]+, passwordHistory: \[ ?"SCRAM-SHA-256\$[^"]+" ?\] \}   # Carol$/);
  assert.is(lines[7], '  dave@acme.com: { org: acme }');
  assert.is(lines[8], '');
  const carol = loadUsers(w.users).users.get('carol@acme.com')!;
  assert.ok(verifierMatches(carol.password!, 'Brand-new-password-3'));
  assert.equal(carol.passwordHistory, [w.oldVerifier]);
  assert.equal(carol.groups, ['analysts']);
});

test('passwd --write: a user without a password gets one; an unknown user is refused', () => {
  const w = workspace();
  let r = pgveil(['passwd', '--config', w.config, '--write', 'bob@acme.com'], { input: 'Bobs-new-password-1\n' });
  assert.is(r.code, 0, r.stderr);
  const bob = loadUsers(w.users).users.get('bob@acme.com')!;
  assert.ok(verifierMatches(bob.password!, 'Bobs-new-password-1'));
  assert.equal(bob.passwordHistory, []);
  r = pgveil(['passwd', '--config', w.config, '--write', 'mallory@acme.com'], { input: 'Bobs-new-password-1\n' });
  assert.is(r.code, 1);
  assert.match(r.stderr, /no user "mallory@acme\.com"/);
});

test('passwd --write keeps the owner, group and mode of users.yaml (the service must still read it)', () => {
  const w = workspace();
  // root edits a file owned by the service account's group, as on a deployed host.
  if (process.getuid?.() === 0) chownSync(w.users, 65534, 65534);
  chmodSync(w.users, 0o640);
  const before = statSync(w.users);
  const r = pgveil(['passwd', '--config', w.config, '--write', 'alice@acme.com'], { input: 'Brand-new-password-3\n' });
  assert.is(r.code, 0, r.stderr);
  const after = statSync(w.users);
  assert.is(after.ino === before.ino, false, 'replaced by rename (atomic), not rewritten in place');
  assert.is(after.uid, before.uid);
  assert.is(after.gid, before.gid);
  assert.is(after.mode & 0o777, 0o640);
});

test('install-helpers into a reader that stops early (psql could not connect) exits cleanly, no stack trace', () => {
  const w = workspace();
  writeFileSync(join(w.dir, 'policy.yaml'), `layers: { access: true, ownership: true, redaction: true }\ndefaults: { unlistedRelations: allow }\nsecrets: { scrambleKey: "${'k'.repeat(32)}" }\n`);
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" install-helpers --config "${w.config}" | true; echo "status \${PIPESTATUS[0]}"`], { encoding: 'utf8', env: { ...process.env, PGVEIL_MASTER_KEY: '' } });
  assert.match(r.stdout, /status 0/, r.stderr);
  assert.not.match(r.stderr, /EPIPE|at .*\.js:/);
});

test.run();
