// Config loading: one test per class of mistake, each pinning the exact
// file:line:col and key path of the report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, type ConfigIssue } from '../../src/config/errors.js';
import { checkAll, loadAll, loadConfig, loadPolicy, loadUsers } from '../../src/config/load.js';
import { canonicalRelation } from '../../src/config/identifiers.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';
import { DecisionEngine } from '../../src/engine/engine.js';
import { silentLogger } from '../../src/observe/log.js';
import { seal } from '../../src/secrets/seal.js';
import { rsaCert } from '../auth/test-certs.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const goodConfig = `tls: { mode: disable }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
`;
const goodUsers = `organizations:
  acme: {}
users:
  alice@acme.com:
    org: acme
`;
const goodPolicy = 'defaults: { unlistedRelations: allow }\ntables: {}\n';

/** Writes files (relative name → text) into a fresh directory; returns its path. */
function fixture(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-config-'));
  const all = { 'pgveil.yaml': goodConfig, 'users.yaml': goodUsers, 'policy.yaml': goodPolicy, ...files };
  for (const [name, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** Writes `name` with `text` (the other files good) and loads it with `load`: the file's path and the issues reported. */
function issuesLoading(name: string, text: string, load: (file: string) => unknown): { file: string; issues: ConfigIssue[] } {
  const file = join(fixture({ [name]: text }), name);
  return { file, issues: issuesOf(() => load(file)) };
}

function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  assert.unreachable('expected a ConfigError');
  return [];
}

/** The single issue in `issues`, checked field by field (message by substring). */
function expectIssue(issues: ConfigIssue[], want: { file: string; line: number; column: number; path: string; message: string }): void {
  const hit = issues.find((i) => i.file === want.file && i.path === want.path && i.message.includes(want.message));
  assert.ok(hit, `no issue like ${JSON.stringify(want)} in:\n${issues.map((i) => JSON.stringify(i)).join('\n')}`);
  assert.is(`${hit!.line}:${hit!.column}`, `${want.line}:${want.column}`, `position of ${want.path}`);
}

test('YAML syntax error: position of the parser, no schema noise', () => {
  const { file, issues } = issuesLoading('pgveil.yaml', 'listen:\n  host: "127.0.0.1\n  port: 6432\n', loadConfig);
  assert.is(issues.length, 1);
  assert.is(issues[0].file, file);
  assert.match(issues[0].message, /^YAML syntax error: /);
  assert.is(issues[0].path, 'listen.host');
  assert.is(`${issues[0].line}:${issues[0].column}`, '2:9'); // where the quote opened, not where the parser noticed
});

test('duplicate key: points at the second occurrence and names the first', () => {
  const users = `users:
  alice@acme.com:
    org: acme
  alice@acme.com:
    org: acme
organizations: { acme: {} }
`;
  const { file, issues } = issuesLoading('users.yaml', users, loadUsers);
  assert.is(issues.length, 1);
  expectIssue(issues, { file, line: 4, column: 3, path: 'users."alice@acme.com"', message: 'duplicate key "alice@acme.com" (first defined at line 2)' });
});

test('E4 duplicate key: problems inside the repeated entry point at the occurrence that counts (the last)', () => {
  const users = `organizations:
  acme: {}
users:
  alice@acme.com:
    org: acme
  bob@acme.com:
    org: acme
  alice@acme.com:
    org: acm
    groups: 3
`;
  const { file, issues } = issuesLoading('users.yaml', users, loadUsers);
  assert.is(issues.length, 3, issues.map((i) => JSON.stringify(i)).join('\n'));
  expectIssue(issues, { file, line: 8, column: 3, path: 'users."alice@acme.com"', message: 'duplicate key "alice@acme.com" (first defined at line 4)' });
  expectIssue(issues, { file, line: 9, column: 10, path: 'users."alice@acme.com".org', message: 'unknown organization "acm"' });
  expectIssue(issues, { file, line: 10, column: 13, path: 'users."alice@acme.com".groups', message: 'expected a list, got 3' });
});

test('unknown key (typo): points at the key and suggests the right one', () => {
  const config = `tls: { mode: disable }
upstream:
  host: 127.0.0.1
  databse: analytics
  database: analytics
  user: svc
users: users.yaml
policy: policy.yaml
`;
  const { file, issues } = issuesLoading('pgveil.yaml', config, loadConfig);
  assert.is(issues.length, 1);
  expectIssue(issues, { file, line: 4, column: 3, path: 'upstream.databse', message: 'unknown key "databse"; did you mean "database"?' });
});

test('wrong type: points at the value', () => {
  const { file, issues } = issuesLoading('pgveil.yaml', goodConfig + 'listen:\n  port: "6432x"\n', loadConfig);
  assert.is(issues.length, 1);
  expectIssue(issues, { file, line: 6, column: 9, path: 'listen.port', message: 'expected an integer, got a string' });
});

test('bad enum value: lists the allowed values', () => {
  const { file, issues } = issuesLoading('pgveil.yaml', goodConfig.replace('mode: disable', 'mode: requir'), loadConfig);
  assert.is(issues.length, 1, JSON.stringify(issues));
  expectIssue(issues, { file, line: 1, column: 14, path: 'tls.mode', message: 'expected one of "require", "prefer", "disable"; got "requir"' });
});

test('out-of-range numbers: the range is in the message', () => {
  const { file, issues } = issuesLoading('pgveil.yaml', goodConfig + 'listen: { port: 70000 }\nauth:\n  lockout: { maxFailures: 0 }\n', loadConfig);
  assert.is(issues.length, 2);
  expectIssue(issues, { file, line: 5, column: 17, path: 'listen.port', message: 'expected an integer from 0 to 65535, got 70000' });
  expectIssue(issues, { file, line: 7, column: 27, path: 'auth.lockout.maxFailures', message: 'expected an integer >= 1, got 0' });
});

test('missing required key: points at the mapping that lacks it', () => {
  const config = `tls: { mode: disable }
upstream:
  host: 127.0.0.1
  user: svc
users: users.yaml
policy: policy.yaml
`;
  const { file, issues } = issuesLoading('pgveil.yaml', config, loadConfig);
  assert.is(issues.length, 1);
  expectIssue(issues, { file, line: 3, column: 3, path: 'upstream', message: 'missing required key "database"' });
});

test('bad policy table key: must be schema.table', () => {
  const policy = `tables:
  employees: {}
  public.ok: {}
  a.b.c: {}
`;
  const { file, issues } = issuesLoading('policy.yaml', policy, loadPolicy);
  assert.is(issues.length, 2);
  expectIssue(issues, { file, line: 2, column: 3, path: 'tables.employees', message: 'table keys must be schema.table' });
  expectIssue(issues, { file, line: 4, column: 3, path: 'tables."a.b.c"', message: 'table keys must be schema.table' });
});

test('mask kinds with wrong or missing options', () => {
  const policy = `tables:
  public.employees:
    redaction:
      ssn:    { mask: partial, keepLast: 4, to: year }
      hired:  { mask: truncate }
      notes:  { mask: custom }
      pin:    { mask: partial }
      salary: { mask: round, step: 0 }
      badge:  { mask: null }
      email:  { mask: email, fill: "*" }
`;
  const { file, issues } = issuesLoading('policy.yaml', policy, loadPolicy);
  const t = 'tables."public.employees".redaction';
  expectIssue(issues, { file, line: 4, column: 45, path: `${t}.ssn.to`, message: 'option "to" does not apply to mask partial (its options: except, keepFirst, keepLast, fill)' });
  expectIssue(issues, { file, line: 5, column: 15, path: `${t}.hired`, message: 'missing required key "to" (mask truncate needs it)' });
  expectIssue(issues, { file, line: 6, column: 15, path: `${t}.notes`, message: 'missing required key "expr" (mask custom needs it)' });
  expectIssue(issues, { file, line: 7, column: 15, path: `${t}.pin`, message: 'needs "keepFirst" or "keepLast" (mask partial needs it)' });
  expectIssue(issues, { file, line: 8, column: 36, path: `${t}.salary.step`, message: 'expected a number > 0, got 0' });
  expectIssue(issues, { file, line: 9, column: 23, path: `${t}.badge.mask`, message: 'write "null" in quotes for the null mask' });
  expectIssue(issues, { file, line: 10, column: 30, path: `${t}.email.fill`, message: 'option "fill" does not apply to mask email' });
  assert.is(issues.length, 7);
});

test('unknown organization: in a user and in policy rules (cross-file)', () => {
  const users = `organizations:
  acme: {}
users:
  bob@globex.com:
    org: globex
`;
  const policy = `tables:
  public.employees:
    access:
      allow: { orgs: [acme, globex] }
    ownership:
      - filter: "true"
        except: { orgs: [initech] }
defaults: { unlistedRelations: allow }
`;
  const dir = fixture({ 'users.yaml': users, 'policy.yaml': policy });
  const issues = issuesOf(() => loadAll(join(dir, 'pgveil.yaml')));
  assert.is(issues.length, 3);
  expectIssue(issues, { file: join(dir, 'users.yaml'), line: 5, column: 10, path: 'users."bob@globex.com".org', message: 'unknown organization "globex" (known: acme)' });
  expectIssue(issues, { file: join(dir, 'policy.yaml'), line: 4, column: 29, path: 'tables."public.employees".access.allow.orgs[1]', message: 'unknown organization "globex"' });
  expectIssue(issues, { file: join(dir, 'policy.yaml'), line: 7, column: 26, path: 'tables."public.employees".ownership[0].except.orgs[0]', message: 'unknown organization "initech"' });
});

test('bad placeholders in filters and custom masks', () => {
  const policy = `tables:
  public.employees:
    ownership:
      - filter: "org_id = \${user.org}"
      - filter: "region = \${user.region}"
      - filter: "id = \${column}"
      - filter: "x = \${user.attributes.cost_center"
    redaction:
      notes: { mask: custom, expr: "left(\${column}, \${user.attributes.len})" }
      memo:  { mask: custom, expr: "\${user.password}" }
defaults: { unlistedRelations: allow }
`;
  const { file, issues } = issuesLoading('policy.yaml', policy, loadPolicy);
  const t = 'tables."public.employees"';
  assert.is(issues.length, 4, JSON.stringify(issues));
  expectIssue(issues, { file, line: 5, column: 17, path: `${t}.ownership[1].filter`, message: 'unknown placeholder ${user.region} at character 10' });
  expectIssue(issues, { file, line: 6, column: 17, path: `${t}.ownership[2].filter`, message: 'unknown placeholder ${column}' });
  expectIssue(issues, { file, line: 7, column: 17, path: `${t}.ownership[3].filter`, message: 'unclosed placeholder' });
  expectIssue(issues, { file, line: 10, column: 36, path: `${t}.redaction.memo.expr`, message: 'unknown placeholder ${user.password}' });
});

test('verifiers that do not parse and impossible dates', () => {
  const users = `organizations: { acme: {} }
users:
  alice@acme.com:
    password: "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ="
    passwordChangedAt: 2026-02-31
    passwordHistory: ["plaintext-password"]
`;
  const { file, issues } = issuesLoading('users.yaml', users, loadUsers);
  assert.is(issues.length, 3);
  expectIssue(issues, { file, line: 4, column: 15, path: 'users."alice@acme.com".password', message: 'bad StoredKey' });
  expectIssue(issues, { file, line: 5, column: 24, path: 'users."alice@acme.com".passwordChangedAt', message: 'not a valid date' });
  expectIssue(issues, { file, line: 6, column: 23, path: 'users."alice@acme.com".passwordHistory[0]', message: 'must be a SCRAM-SHA-256 verifier' });
  assert.not.ok(issues.some((i) => i.message.includes('plaintext-password')), 'a value that fails a pattern is never echoed');
});

test('missing referenced files and TLS without a certificate', () => {
  const config = `tls:
  mode: require
  cert: certs/server.crt
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: nope.yaml
policy: policy.yaml
`;
  const dir = fixture({ 'pgveil.yaml': config });
  const file = join(dir, 'pgveil.yaml');
  const result = checkAll(file);
  assert.is(result.issues.length, 3, JSON.stringify(result.issues));
  expectIssue(result.issues, { file, line: 2, column: 3, path: 'tls', message: 'missing required key "key": tls.mode require needs a certificate and key' });
  expectIssue(result.issues, { file, line: 3, column: 9, path: 'tls.cert', message: 'file not found: ' });
  expectIssue(result.issues, { file, line: 5, column: 8, path: 'users', message: 'file not found: ' });
  assert.equal(result.files, [file, join(dir, 'policy.yaml')], 'the policy was still read and checked');
  assert.ok(result.issues[1].message.endsWith(join(dir, 'certs/server.crt')) || result.issues[1].message.endsWith('certs/server.crt'));
});

test('a missing config file is reported at 1:1', () => {
  const missing = join(tmpdir(), 'pgveil-does-not-exist', 'pgveil.yaml');
  const issues = issuesOf(() => loadConfig(missing));
  assert.equal(issues, [{ file: missing, line: 1, column: 1, path: '', message: 'file not found' }]);
});

test('every problem of every file is collected in one ConfigError, formatted file:line:col: path: message', () => {
  const dir = fixture({
    'pgveil.yaml': goodConfig + 'workers: many\n',
    'users.yaml': goodUsers + '    groups: analysts\n',
    'policy.yaml': 'defaults: { writes: maybe }\n',
  });
  let err: ConfigError | undefined;
  try { loadAll(join(dir, 'pgveil.yaml')); } catch (e) { err = e as ConfigError; }
  assert.instance(err, ConfigError);
  assert.is(err!.issues.length, 3);
  const lines = err!.message.split('\n');
  assert.is(lines.length, 3);
  assert.ok(lines[0].endsWith('pgveil.yaml:5:10: workers: expected an integer from 1 to 127 or "auto", got a string'), lines[0]);
  assert.ok(lines[1].endsWith('users.yaml:6:13: users."alice@acme.com".groups: expected a list, got a string'), lines[1]);
  assert.ok(lines[2].endsWith('policy.yaml:1:21: defaults.writes: expected one of "deny", "allow"; got "maybe"'), lines[2]);
});

test('relative paths resolve against the directory of the file they appear in', () => {
  const config = `tls: { mode: prefer, cert: ../certs/server.crt, key: /abs-but-missing.key }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: ../shared/users.yaml
policy: policy.yaml
audit: { file: logs/audit.jsonl }
`;
  const dir = fixture({ 'etc/pgveil.yaml': config, 'shared/users.yaml': goodUsers, 'etc/policy.yaml': goodPolicy, 'certs/server.crt': 'x' });
  const result = checkAll(join(dir, 'etc/pgveil.yaml'));
  assert.is(result.issues.length, 1, JSON.stringify(result.issues));
  expectIssue(result.issues, { file: join(dir, 'etc/pgveil.yaml'), line: 1, column: 54, path: 'tls.key', message: 'file not found: /abs-but-missing.key' });
  writeFileSync(join(dir, 'certs/server.key'), 'x');
  writeFileSync(join(dir, 'etc/pgveil.yaml'), config.replace('/abs-but-missing.key', join(dir, 'certs/server.key')));
  const { config: c, users, policy } = loadAll(join(dir, 'etc/pgveil.yaml'));
  assert.is(c.file, join(dir, 'etc/pgveil.yaml'));
  assert.is(c.tls.cert, join(dir, 'certs/server.crt'));
  assert.is(c.tls.key, join(dir, 'certs/server.key'));
  assert.is(c.users, join(dir, 'shared/users.yaml'));
  assert.is(c.policy, join(dir, 'etc/policy.yaml'));
  assert.is(c.audit?.file, join(dir, 'etc/logs/audit.jsonl'));
  assert.is(users.file, join(dir, 'shared/users.yaml'));
  assert.is(policy.file, join(dir, 'etc/policy.yaml'));
});

test('defaults are filled in', () => {
  const dir = fixture({});
  const { config, users, policy } = loadAll(join(dir, 'pgveil.yaml'));
  assert.equal({ ...config, file: '', users: '', policy: '' }, {
    file: '', users: '', policy: '',
    listen: { host: '127.0.0.1', port: 6432 },
    tls: { mode: 'disable', minVersion: 'TLSv1.2', cert: undefined, key: undefined, clientCa: undefined },
    upstream: { host: '127.0.0.1', database: 'analytics', user: 'svc', port: 5432, tls: { mode: 'disable', ca: undefined }, connectTimeoutMs: 5000, pool: { maxIdle: 20, idleTimeoutSeconds: 60 }, statements: { maxPerConnection: 100 } },
    secrets: {},
    auth: {
      lockout: { maxFailures: 5, windowSeconds: 900, lockSeconds: 1800 },
      addressLockout: { maxFailures: 30, windowSeconds: 60, lockSeconds: 300 },
      idleTimeoutSeconds: 900, startupTimeoutMs: 10000, authTimeoutMs: 30000,
      passwordPolicy: { minLength: 12, minClasses: 3, maxAgeDays: 90, history: 5 },
    },
    limits: { maxMessageBytes: 1048576, maxClients: 1000 },
    cache: { maxEntries: 10000, maxBytes: 64 * 1024 * 1024 },
    workers: 1,
    shutdownTimeoutSeconds: 30,
  });
  const alice = users.users.get('alice@acme.com')!;
  assert.equal({ ...alice, attributes: { ...alice.attributes } }, {
    name: 'alice@acme.com', org: 'acme', groups: [], passwordHistory: [], attributes: {}, clientCert: 'none', disabled: false,
  });
  assert.equal(policy.layers, { access: true, ownership: true, redaction: true });
  assert.equal(policy.defaults, { unlistedRelations: 'allow', writes: 'deny' });
  assert.equal(policy.secrets, {});

  const optional = fixture({
    'pgveil.yaml': goodConfig + 'admin: {}\naudit: { file: a.jsonl }\nsmtp: { host: mx, from: "p <p@x.org>" }\nreset: { linkBase: "https://x/reset" }\n',
    'policy.yaml': 'defaults: { unlistedRelations: allow }\ntables:\n  public.t:\n    redaction:\n      ssn: { mask: partial, keepLast: 4 }\n    access:\n      deny: { orgs: [acme] }\n',
  });
  const loaded = loadAll(join(optional, 'pgveil.yaml'));
  assert.equal(loaded.config.admin, { host: '127.0.0.1', port: 9187 });
  assert.equal(loaded.config.audit, { file: join(optional, 'a.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 100 });
  assert.equal(loaded.config.smtp, { host: 'mx', from: 'p <p@x.org>', port: 587, tls: 'starttls' });
  assert.equal(loaded.config.reset, { linkBase: 'https://x/reset', ttlMinutes: 30 });
  const table = loaded.policy.tables['public.t'];
  assert.equal({ ...table.redaction.ssn }, { mask: 'partial', keepFirst: 0, keepLast: 4, fill: 'X' });
  assert.equal(table.access, { deny: { orgs: ['acme'], groups: [], users: [] } });
  assert.equal(table.ownership, []);
});

test('empty entries: an organization or table with nothing after the colon is {}', () => {
  const dir = fixture({
    'users.yaml': 'organizations:\n  acme:\n  globex:\nusers:\n  a:\n    org: globex\n',
    'policy.yaml': 'defaults: { unlistedRelations: deny }\ntables:\n  public.departments:\n',
  });
  const { users, policy } = loadAll(join(dir, 'pgveil.yaml'));
  assert.equal(Object.keys(users.organizations), ['acme', 'globex']);
  assert.equal({ ...users.organizations.globex.attributes }, {});
  assert.equal(policy.tables['public.departments'].ownership, []);
  assert.equal(Object.keys(policy.tables['public.departments'].redaction), []);
  assert.is(policy.tables['public.departments'].access, undefined);
});

test('table and column keys: unquoted parts lower-cased, quoted parts keep case; duplicates after folding are reported', () => {
  const policy = `tables:
  Public.Employees:
    redaction:
      SSN: { mask: full }
      '"Email"': { mask: email }
  '"Sales"."Orders"': {}
  '"public"."employees"': {}
defaults: { unlistedRelations: allow }
`;
  const { file, issues } = issuesLoading('policy.yaml', policy, loadPolicy);
  assert.is(issues.length, 1);
  expectIssue(issues, { file, line: 7, column: 3, path: 'tables."\\"public\\".\\"employees\\""', message: 'same table as "Public.Employees"' });

  writeFileSync(file, policy.split('\n').slice(0, 6).join('\n') + '\ndefaults: { unlistedRelations: allow }\n');
  const loaded = loadPolicy(file);
  assert.equal(Object.keys(loaded.tables), ['public.employees', '"Sales"."Orders"']);
  assert.equal(Object.keys(loaded.tables['public.employees'].redaction), ['ssn', '"Email"']);
  assert.is(canonicalRelation('Sales', 'Orders'), '"Sales"."Orders"');
  assert.is(canonicalRelation('public', 'employees'), 'public.employees');
});

test('the sample config set loads once its deployment files exist', () => {
  // Pristine: exactly the files that are deployment-specific are missing.
  const pristine = checkAll(join(repo, 'config/pgveil.yaml'));
  assert.equal(pristine.issues.map((i) => i.path), ['tls.cert', 'tls.key', 'tls.clientCa', 'secrets.masterKeyFile']);
  assert.ok(pristine.issues.every((i) => i.message.startsWith('file not found: ')));

  const dir = mkdtempSync(join(tmpdir(), 'pgveil-sample-'));
  for (const name of ['pgveil.yaml', 'users.yaml', 'policy.yaml', 'schema']) cpSync(join(repo, 'config', name), join(dir, name), { recursive: true });
  for (const name of ['certs/server.crt', 'certs/server.key', 'certs/ca.crt', 'secrets/master.key']) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), 'placeholder\n');
  }
  const { config, users, policy } = loadAll(join(dir, 'pgveil.yaml'));
  assert.is(config.tls.mode, 'require');
  assert.is(config.auth.oidc?.jwks, 'https://idp.example.com/.well-known/jwks.json');
  assert.is(users.users.get('hana@acme.com')?.clientCert, 'required');
  assert.is(users.users.get('former@acme.com')?.disabled, true);
  assert.is(policy.tables['public.employees'].redaction.ssn.fill, '*');
  assert.is(policy.tables['public.employees'].ownership.length, 2);
});

test('limits.maxClients is documented as the code applies it: a total that workers split, never "per worker"', () => {
  const sample = readFileSync(join(repo, 'config/pgveil.yaml'), 'utf8').split('\n').find((l) => l.trim().startsWith('maxClients:'))!;
  const schema = JSON.parse(readFileSync(join(repo, 'config/schema/pgveil.schema.json'), 'utf8'));
  const described: string = schema.properties.limits.properties.maxClients.description;
  const readme = readFileSync(join(repo, 'README.md'), 'utf8').split('\n').find((l) => l.startsWith('| `limits.maxClients`'))!;
  for (const text of [sample, described, readme]) {
    assert.not.match(text, /per worker/, text);
    assert.match(text, /in all/, text);
  }
  assert.is(loadAll(join(fixture({}), 'pgveil.yaml')).config.limits.maxClients, 1000); // the default all three state
  for (const text of [sample, described, readme]) assert.match(text, /1000/, text);
});

/** The yaml blocks of an optional external SPEC.md (config, users, policy; not part of the repository, looked for next to the checkout) with the elided values filled in, or undefined when the file is absent: the tests using it then skip those checks. */
/** A certificate that may sign SAML assertions (sso.saml.idpCert must hold one). */
const idpCertPem = rsaCert('idp').certPem;

function specExamples(): { config: string; users: string; policy: string } | undefined {
  const spec = [join(repo, '../shared/SPEC.md'), join(repo, 'shared/SPEC.md')].find((p) => existsSync(p));
  if (!spec) { console.log('  (SPEC.md not found next to the checkout; skipped)'); return undefined; }
  const [config, users, policy] = [...readFileSync(spec, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
  const sealed = 'sealed:' + Buffer.alloc(60, 7).toString('base64');
  const fill = (text: string) => text.replaceAll('"sealed:..."', JSON.stringify(sealed))
    .replace('"SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"', JSON.stringify(createVerifier('x')));
  return { config: fill(config), users: fill(users), policy: fill(policy) };
}

/** A JWKS with one public key: a JWKS file named by auth.oidc.jwks must hold a usable key to load. */
const testJwks = JSON.stringify({ keys: [{ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'k1' }] });

/** A directory with the optional SPEC.md's three files and every file they name. */
function specFixture(files: { config: string; users: string; policy: string }): string {
  return fixture({
    'pgveil.yaml': files.config, 'users.yaml': files.users, 'policy.yaml': files.policy,
    'certs/server.crt': '', 'certs/server.key': '', 'certs/ca.crt': '', 'secrets/master.key': '', 'idp-jwks.json': testJwks,
    'certs/portal.crt': '', 'certs/portal.key': '', 'certs/idp.crt': idpCertPem, 'policy-next.yaml': files.policy,
  });
}

test('the examples of SPEC §2 load once their elided values are filled in', () => {
  const spec = specExamples();
  if (!spec) return;
  assert.match(spec.users, /^ +totp: .*\n/m, 'the SPEC example has a totp line');
  const dir = specFixture({ ...spec, users: spec.users.replace(/^ +totp: .*\n/m, '') });
  const loaded = loadAll(join(dir, 'pgveil.yaml'));
  const c = loaded.config;
  assert.is(c.workers, 1);
  assert.is(c.auth.oidc?.jwks, join(dir, 'idp-jwks.json'));
  assert.is(loaded.policy.tables['public.employees'].redaction.salary.mask, 'null');
  assert.is(c.cache.maxBytes, 64 * 1024 * 1024);
  assert.is(c.audit?.onFailure, 'block');
  assert.is(c.audit?.syslog, 'tcp://siem.example.com:514');
  assert.ok(c.admin?.token?.startsWith('sealed:'), 'the token stays sealed');
  assert.equal(c.portal, {
    host: '0.0.0.0', port: 8443, tls: { cert: join(dir, 'certs/portal.crt'), key: join(dir, 'certs/portal.key') },
    publicUrl: 'https://pgveil.example.com:8443', credentialMinutes: 480,
  });
  assert.is(c.sso?.oidc?.clientId, 'pgveil');
  assert.equal(c.sso?.oidc?.claims, { user: 'email', org: 'org', groups: 'groups' });
  assert.is(c.sso?.saml?.idpCert, join(dir, 'certs/idp.crt'));
  assert.is(c.shadow, join(dir, 'policy-next.yaml'));
  assert.is(loaded.users.users.get('alice@acme.com')?.email, 'alice@acme.com');
});

test('users.<u>.totp: a sealed secret loads opened (and stays out of JSON); plain, foreign-key and non-base32 ones are load errors at their line', () => {
  const key = Buffer.alloc(32, 9);
  const otherKey = Buffer.alloc(32, 8);
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const users = (totp: string) => `organizations: { acme: {} }
users:
  alice@acme.com:
    org: acme
    totp: "${totp}"
  bob@acme.com:
    org: acme
`;
  const files = (totp: string) => ({
    'pgveil.yaml': goodConfig + 'secrets: { masterKeyFile: master.key }\n',
    'master.key': key.toString('base64') + '\n',
    'users.yaml': users(totp),
  });
  const dir = fixture(files(seal(secret, key)));
  chmodSync(join(dir, 'master.key'), 0o600);
  const alice = loadAll(join(dir, 'pgveil.yaml')).users.users.get('alice@acme.com')!;
  assert.ok(alice.totp, 'the secret is loaded');
  assert.not.ok(JSON.stringify(alice).includes(secret), 'JSON of the user does not carry the secret');
  assert.is(loadAll(join(dir, 'pgveil.yaml')).users.users.get('bob@acme.com')!.totp, undefined);
  const cases: Array<[string, RegExp]> = [
    [secret, /must be sealed/],
    [seal(secret, otherKey), /cannot be opened: sealed value could not be opened with this master key/],
    [seal('not base32 at all!', key), /cannot be opened: the sealed text is not a base32 TOTP secret/],
    [seal('JBSWY3DP', key), /shorter than 80 bits/],
  ];
  for (const [totp, message] of cases) {
    const bad = fixture(files(totp));
    chmodSync(join(bad, 'master.key'), 0o600);
    const issues = issuesOf(() => loadAll(join(bad, 'pgveil.yaml')));
    assert.is(issues.length, 1, JSON.stringify(issues));
    assert.is(issues[0].path, 'users."alice@acme.com".totp');
    assert.is(issues[0].line, 5);
    assert.match(issues[0].message, message);
    assert.not.ok(issues[0].message.includes(secret) || issues[0].message.includes('not base32 at all'), 'the message never quotes the secret');
  }
});

test('new keys of pgveil.yaml and users.yaml: bad values are reported at file:line:col', () => {
  const config = goodConfig + `audit:
  file: a.jsonl
  onFailure: maybe
  syslog: http://x
cache: { maxBytes: 12 parsecs }
admin: { token: "sealed:abc" }
portal:
  tls: { cert: portal.crt }
  publicUrl: http://pgveil.example.com
  credentialMinutes: 0
sso:
  oidc: { issuer: https://idp.example.com/, clientId: pgveil }
  saml: { entryPoint: https://idp.example.com/sso, issuer: pgveil, idpCert: idp.crt }
shadow: policy-next.yaml
`;
  const dir = fixture({ 'pgveil.yaml': config, 'portal.crt': '' });
  const file = join(dir, 'pgveil.yaml');
  const issues = checkAll(file).issues;
  expectIssue(issues, { file, line: 7, column: 14, path: 'audit.onFailure', message: 'expected one of "block", "continue"; got "maybe"' });
  expectIssue(issues, { file, line: 8, column: 11, path: 'audit.syslog', message: 'must be tcp://host:port or tls://host:port' });
  expectIssue(issues, { file, line: 9, column: 20, path: 'cache.maxBytes', message: 'must be a size: a whole number of bytes, or a number with unit B, kB, MB or GB' });
  expectIssue(issues, { file, line: 10, column: 17, path: 'admin.token', message: 'must be a value printed by `pgveil seal`' });
  expectIssue(issues, { file, line: 12, column: 8, path: 'portal.tls', message: 'missing required key "key"' });
  expectIssue(issues, { file, line: 13, column: 14, path: 'portal.publicUrl', message: 'must be an https:// URL' });
  expectIssue(issues, { file, line: 14, column: 22, path: 'portal.credentialMinutes', message: 'expected an integer from 1 to 10080, got 0' });
  expectIssue(issues, { file, line: 16, column: 9, path: 'sso.oidc', message: 'missing required key "clientSecret"' });
  expectIssue(issues, { file, line: 17, column: 77, path: 'sso.saml.idpCert', message: 'file not found: ' });
  expectIssue(issues, { file, line: 18, column: 9, path: 'shadow', message: 'file not found: ' });
  assert.is(issues.length, 10, issues.map((i) => `${i.line}:${i.column}: ${i.path}: ${i.message}`).join('\n'));
  assert.not.ok(issues.some((i) => i.message.includes('http://x')), 'a value that fails a pattern is never echoed');

  const more = goodConfig + 'listen: { port: 8443 }\ncache: { maxBytes: 0MB }\naudit: { file: a.jsonl, syslog: "tls://siem:99999" }\nsso: { saml: { entryPoint: https://i/sso, issuer: p, idpCert: idp.crt } }\n';
  const dir2 = fixture({ 'pgveil.yaml': more, 'idp.crt': idpCertPem });
  const file2 = join(dir2, 'pgveil.yaml');
  const issues2 = checkAll(file2).issues;
  expectIssue(issues2, { file: file2, line: 6, column: 20, path: 'cache.maxBytes', message: 'expected a size of at least 1 byte, got 0' });
  expectIssue(issues2, { file: file2, line: 7, column: 33, path: 'audit.syslog', message: 'port must be from 1 to 65535' });
  expectIssue(issues2, { file: file2, line: 8, column: 1, path: 'sso', message: 'SSO logins happen on the portal: configure portal too' });
  expectIssue(issues2, { file: file2, line: 8, column: 1, path: 'sso', message: 'the passwords an SSO login issues are only accepted over TLS, but tls.mode is disable' });
  assert.is(issues2.length, 4, JSON.stringify(issues2));

  const clash = goodConfig + 'portal: { host: 0.0.0.0, port: 6432, tls: { cert: p.crt, key: p.key }, publicUrl: "https://p.example.com" }\n';
  const dir3 = fixture({ 'pgveil.yaml': clash, 'p.crt': '', 'p.key': '' });
  const issues3 = checkAll(join(dir3, 'pgveil.yaml')).issues;
  expectIssue(issues3, { file: join(dir3, 'pgveil.yaml'), line: 5, column: 32, path: 'portal.port', message: 'same port as listen (127.0.0.1:6432)' });
  assert.is(issues3.length, 1, JSON.stringify(issues3));

  const email = goodUsers + '    email: "alice at acme"\n';
  const bad = issuesLoading('users.yaml', email, loadUsers);
  expectIssue(bad.issues, { file: bad.file, line: 6, column: 12, path: 'users."alice@acme.com".email', message: 'must be an e-mail address' });
  assert.is(bad.issues.length, 1);
});

test('sso.saml: attributes default to email, org, groups; idpCert with one or several PEM certificates loads, an empty or broken one is a load error', () => {
  const saml = goodConfig.replace('tls: { mode: disable }', 'tls: { mode: require, cert: p.crt, key: p.key }') + 'portal: { tls: { cert: p.crt, key: p.key }, publicUrl: "https://portal.example.com" }\nsso: { saml: { entryPoint: https://idp.example.com/sso, issuer: pgveil, idpCert: idp.crt } }\n';
  const withCert = (text: string) => join(fixture({ 'pgveil.yaml': saml, 'p.crt': '', 'p.key': '', 'idp.crt': text }), 'pgveil.yaml');
  assert.equal(loadConfig(withCert(idpCertPem)).sso?.saml?.attributes, { user: 'email', org: 'org', groups: 'groups' }, 'attributes default when absent');
  assert.is(loadConfig(withCert(idpCertPem + rsaCert('next idp').certPem)).sso?.saml?.issuer, 'pgveil');
  const broken = idpCertPem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
  for (const [text, message] of [['', /holds no PEM certificate/], ['not a certificate', /holds no PEM certificate/], [broken, /does not parse/]] as const) {
    const issues = issuesOf(() => loadConfig(withCert(text)));
    assert.is(issues.length, 1, JSON.stringify(issues));
    assert.is(issues[0].path, 'sso.saml.idpCert');
    assert.match(issues[0].message, message);
  }
});

test('cache.maxBytes: sizes in B, kB, MB, GB (1024-based) or bare bytes, and the rewrite cache keeps to it', () => {
  const sizes: Array<[string, number]> = [['64MB', 64 * 1024 ** 2], ['512 kB', 512 * 1024], ['1GB', 1024 ** 3], ['100B', 100], ['4096', 4096], ['"2048"', 2048]];
  for (const [text, bytes] of sizes) {
    const dir = fixture({ 'pgveil.yaml': goodConfig + `cache: { maxBytes: ${text} }\n` });
    assert.is(loadConfig(join(dir, 'pgveil.yaml')).cache.maxBytes, bytes, text);
  }
  for (const text of ['64mb', '64 MiB', '1.5GB', '-1', '64 MB extra', '1TB']) {
    const dir = fixture({ 'pgveil.yaml': goodConfig + `cache: { maxBytes: ${text} }\n` });
    const issues = issuesOf(() => loadConfig(join(dir, 'pgveil.yaml')));
    assert.equal(issues.map((i) => i.path), ['cache.maxBytes'], text);
  }

  const dir = fixture({ 'pgveil.yaml': goodConfig + 'cache: { maxEntries: 1000, maxBytes: 8kB }\n' });
  // The cache serve uses, built from the loaded config.
  const c = new DecisionEngine(loadConfig(join(dir, 'pgveil.yaml')), undefined, silentLogger).cache;
  assert.is(c.maxBytes, 8192);
  for (let i = 0; i < 100; i++) c.setExact(1, 'p', 'public', `select ${i}`, { kind: 'rewrite', sql: 'x'.repeat(200) });
  assert.ok(c.bytes <= 8192, `${c.bytes} bytes held`);
  assert.ok(c.stats().entries < 100 && c.stats().entries > 0, `${c.stats().entries} entries`);
  assert.ok(c.stats().evictions > 0);
  assert.ok(c.getExact(1, 'p', 'public', 'select 99'), 'the most recent entry stays');
  c.setExact(1, 'p', 'public', 'huge', { kind: 'rewrite', sql: 'x'.repeat(10000) });
  assert.is(c.getExact(1, 'p', 'public', 'huge'), undefined, 'an entry larger than maxBytes is not cached');
  assert.ok(c.getExact(1, 'p', 'public', 'select 99'), 'and does not flush the others');
});

test.run();
