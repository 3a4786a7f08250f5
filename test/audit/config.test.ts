// The audit section of pgveil.yaml as the writer reads it: syslogCa is resolved
// beside the config, must exist, and is only meaningful for a tls:// receiver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkAll, loadConfig } from '../../src/config/load.js';

const made: string[] = [];
test.after(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });

function configWith(audit: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-audit-config-'));
  made.push(dir);
  const all: Record<string, string> = {
    'pgveil.yaml': `tls: { mode: disable }\nupstream: { host: 127.0.0.1, database: analytics, user: svc }\nusers: users.yaml\npolicy: policy.yaml\naudit: ${audit}\n`,
    'users.yaml': 'organizations:\n  acme: {}\nusers:\n  alice@acme.com:\n    org: acme\n',
    'policy.yaml': 'defaults: { unlistedRelations: allow }\ntables: {}\n',
    ...files,
  };
  for (const [name, text] of Object.entries(all)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return join(dir, 'pgveil.yaml');
}

test('audit.file and audit.syslogCa are resolved beside the config file; defaults are filled in', () => {
  const file = configWith('{ file: logs/audit.jsonl, syslog: "tls://siem.example.com:6514", syslogCa: certs/siem-ca.crt }', { 'certs/siem-ca.crt': 'x' });
  const audit = loadConfig(file).audit!;
  assert.equal(audit, {
    file: join(file, '..', 'logs/audit.jsonl'), retentionDays: 30, statements: 'fingerprint', onFailure: 'block', syncMs: 100,
    syslog: 'tls://siem.example.com:6514', syslogCa: join(file, '..', 'certs/siem-ca.crt'),
  });
});

test('audit.syslogCa must name a readable file and is refused without a tls:// receiver', () => {
  const missing = configWith('{ file: a.jsonl, syslog: "tls://siem:6514", syslogCa: nope.crt }');
  const issues = checkAll(missing).issues;
  assert.ok(issues.some((i) => i.path === 'audit.syslogCa' && i.message.startsWith('file not found')), JSON.stringify(issues));
  const plain = configWith('{ file: a.jsonl, syslog: "tcp://siem:514", syslogCa: ca.crt }', { 'ca.crt': 'x' });
  const issues2 = checkAll(plain).issues;
  assert.equal(issues2.map((i) => `${i.path}: ${i.message}`), ['audit.syslogCa: not used: audit.syslog is not a tls:// address']);
});

test.run();
