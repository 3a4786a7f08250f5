// Writes a complete, self-contained pgveil configuration for the demo into
// one directory: master key, TLS certificates, pgveil.yaml, users.yaml and
// policy.yaml. Secrets on disk are only ever sealed values, verifiers or
// 0600 files; the plain user passwords are returned so the demo can print
// its ready-to-paste psql lines, and are written nowhere.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { Document, isScalar, isSeq, visit } from 'yaml';
import { createVerifier } from '../auth/scram-verifier.js';
import { generateMasterKey } from '../secrets/master-key.js';
import { seal } from '../secrets/seal.js';
import { createCertificateAuthority, createServerCertificate } from './certs.js';

export interface DemoUpstream {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export interface DemoUser {
  name: string;
  org: string;
  groups: string[];
  /** Plain password, for the demo's printed psql lines only. */
  password: string;
}

export interface DemoFiles {
  dir: string;
  configFile: string;
  usersFile: string;
  policyFile: string;
  masterKeyFile: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  users: DemoUser[];
}

export interface DemoOptions {
  /** Port pgveil listens on; 0 (default) picks a free one. */
  listenPort?: number;
  listenHost?: string;
}

const DEMO_USERS: Array<Omit<DemoUser, 'password'>> = [
  { name: 'alice@acme.com', org: 'acme', groups: ['analysts'] },
  { name: 'bob@globex.com', org: 'globex', groups: ['analysts'] },
  { name: 'hana@acme.com', org: 'acme', groups: ['hr'] },
];

const PASSWORD_POLICY = { minLength: 12, minClasses: 3, maxAgeDays: 90, history: 5 };

// Look-alike characters (0/O, 1/l/I) are left out so a password read off a
// screen can be typed; symbols are ones no shell or conninfo quoting cares
// about inside single quotes.
const CLASSES = ['abcdefghijkmnopqrstuvwxyz', 'ABCDEFGHJKLMNPQRSTUVWXYZ', '23456789', '-_.:+=@~%^'];

/** A random password with every character class (well above the policy's minimum). */
export function generatePassword(length = 20): string {
  const all = CLASSES.join('');
  const chars = CLASSES.map((set) => set[randomInt(set.length)]);
  while (chars.length < length) chars.push(all[randomInt(all.length)]);
  // Fisher–Yates, so the guaranteed characters are not always in front.
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

function writeSecretFile(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600); // the mode option does not apply to a file that already exists
}

/** YAML as a person would write it: short lists of names inline, no anchors. */
function yamlFile(header: string, value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, { Seq(_key, node) { if (isSeq(node) && node.items.every(isScalar)) node.flow = true; } });
  doc.commentBefore = ` ${header}\n Written by \`pgveil demo\`; see README.md, "The demo".`;
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

export function writeDemoFiles(dir: string, upstream: DemoUpstream, options: DemoOptions = {}): DemoFiles {
  const certsDir = join(dir, 'certs');
  mkdirSync(certsDir, { recursive: true });
  const files: Omit<DemoFiles, 'users'> = {
    dir,
    configFile: join(dir, 'pgveil.yaml'),
    usersFile: join(dir, 'users.yaml'),
    policyFile: join(dir, 'policy.yaml'),
    masterKeyFile: join(dir, 'master.key'),
    caCert: join(certsDir, 'ca.crt'),
    serverCert: join(certsDir, 'server.crt'),
    serverKey: join(certsDir, 'server.key'),
  };

  const masterKey = generateMasterKey();
  writeSecretFile(files.masterKeyFile, masterKey + '\n');
  const key = new Uint8Array(Buffer.from(masterKey, 'base64'));

  const listenHost = options.listenHost ?? '127.0.0.1';
  const hosts = [...new Set(['localhost', '127.0.0.1', '::1', listenHost])];
  const ca = createCertificateAuthority('pgveil demo CA');
  const server = createServerCertificate(ca, { commonName: 'pgveil demo', hosts, days: 30 });
  writeFileSync(files.caCert, ca.certPem);
  writeFileSync(files.serverCert, server.certPem);
  writeSecretFile(files.serverKey, server.keyPem);
  // The CA key is not needed after signing: it is never written.

  const config = {
    listen: { host: listenHost, port: options.listenPort ?? 0 },
    tls: { cert: 'certs/server.crt', key: 'certs/server.key', mode: 'require', minVersion: 'TLSv1.2' },
    upstream: {
      host: upstream.host,
      port: upstream.port,
      database: upstream.database,
      user: upstream.user,
      password: seal(upstream.password, key),
      tls: { mode: 'disable' },
      connectTimeoutMs: 5000,
    },
    secrets: { masterKeyFile: 'master.key' },
    users: 'users.yaml',
    policy: 'policy.yaml',
    auth: {
      lockout: { maxFailures: 5, windowSeconds: 300, lockSeconds: 300 },
      idleTimeoutSeconds: 900,
      passwordPolicy: PASSWORD_POLICY,
    },
  };

  const today = new Date().toISOString().slice(0, 10);
  const users = DEMO_USERS.map((u) => ({ ...u, password: generatePassword() }));
  const usersDoc = {
    organizations: {
      acme: { attributes: { region: 'EU' } },
      globex: { attributes: { region: 'US' } },
    },
    users: Object.fromEntries(users.map((u) => [u.name, {
      org: u.org,
      groups: u.groups,
      password: createVerifier(u.password),
      passwordChangedAt: today,
    }])),
  };

  const tenant = [{ filter: 'org_id = ${user.org}' }];
  const policy = {
    layers: { access: true, ownership: true, redaction: true },
    defaults: { unlistedRelations: 'allow', writes: 'deny' },
    secrets: { scrambleKey: seal(randomBytes(32).toString('base64'), key) },
    tables: {
      'crm.employees': {
        access: { allow: { orgs: ['acme', 'globex'] } },
        ownership: tenant,
        redaction: {
          ssn: { mask: 'partial', keepLast: 4, except: { groups: ['hr'] } },
          salary: { mask: 'null', except: { groups: ['hr'] } },
          email: { mask: 'email' },
          emp_no: { mask: 'scramble' },
          notes: { mask: 'custom', expr: "left(${column}, 12) || '...'" },
        },
      },
      'crm.accounts': { ownership: tenant },
      'crm.events': { ownership: tenant },
    },
  };

  writeFileSync(files.configFile, yamlFile('pgveil demo configuration', config));
  writeFileSync(files.usersFile, yamlFile('pgveil demo users (passwords only as SCRAM verifiers)', usersDoc));
  writeFileSync(files.policyFile, yamlFile('pgveil demo policy', policy));
  return { ...files, users };
}
