// Real files for the report and diff tests: a config, a users file and a
// policy in a fresh directory, and the pgveil CLI run on them, as a child
// process or (much faster: no new Node, no second load of the parser) in
// this process through the same entry point bin/pgveil.js calls.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface CliResult { status: number | null; stdout: string; stderr: string }

export function pgveil(cwd: string, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [join(repo, 'bin/pgveil.js'), ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The CLI in this process: main() with `cwd` as the working directory, what
 * it writes to standard output and error captured, its exit code returned.
 */
export async function pgveilInProcess(cwd: string, ...args: string[]): Promise<CliResult> {
  const { main } = await import('../../src/cli/main.js');
  const captured = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  const capture = (stream: 'stdout' | 'stderr') => ((chunk: string | Uint8Array) => {
    captured[stream] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  const home = process.cwd();
  process.chdir(cwd);
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  try {
    const status = await main(args);
    return { status, ...captured };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    process.chdir(home);
  }
}

export const config = `tls: { mode: disable }
upstream: { host: 127.0.0.1, database: analytics, user: svc }
users: users.yaml
policy: policy.yaml
`;

export const users = `organizations:
  acme: { attributes: { region: EU } }
  globex: {}
users:
  alice@acme.com: { org: acme, groups: [analysts], attributes: { regions: [EU, UK] } }
  bob@globex.com: { org: globex, groups: [analysts, finance], attributes: { regions: [US] } }
  hana@acme.com: { org: acme, groups: [hr, auditors], password: "SCRAM-SHA-256\$4096:j8UlZO1hsr/UdvqD/UwgBg==\$i/be5AMMzL4UtsScwCODiDRUtZUjPj7kJgM0dou49xg=:OVEChszRwC9/hzslqiYXA7WQJR49p+j74liB2sVjvz8=" }
  former@acme.com: { org: acme, disabled: true, attributes: { regions: [EU] } }
`;

export const policy = `defaults: { unlistedRelations: allow, writes: deny }
tables:
  public.employees:
    access:
      allow: { orgs: [acme, globex] }
    ownership:
      - filter: "org_id = \${user.org}"
        except: { groups: [auditors] }
      - filter: "region = ANY(\${user.attributes.regions})"
    redaction:
      ssn:    { mask: partial, keepLast: 4, fill: "*", except: { groups: [hr] } }
      email:  { mask: email }
      salary: { mask: "null", except: { groups: [hr, finance] } }
      notes:  { mask: custom, expr: "left(\${column}, 10)" }
  public.audit_log:
    access:
      deny: { orgs: [globex], except: { users: [bob@globex.com] } }
  public.projects:
    access:
      allow: { groups: [analysts] }
    redaction:
      budget: { mask: round, step: 1000 }
`;

/** A directory holding pgveil.yaml, users.yaml and policy.yaml (and any extra files given). */
export function configDir(files: { users?: string; policy?: string; extra?: Record<string, string> } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgveil-report-'));
  writeFileSync(join(dir, 'pgveil.yaml'), config);
  writeFileSync(join(dir, 'users.yaml'), files.users ?? users);
  writeFileSync(join(dir, 'policy.yaml'), files.policy ?? policy);
  for (const [name, text] of Object.entries(files.extra ?? {})) writeFileSync(join(dir, name), text);
  return dir;
}
