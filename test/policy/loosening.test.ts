// loosenings(prev, next): what a reload may show someone that the previous
// policy did not. Policies are read through the real loader and compiler.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy, loadUsers } from '../../src/config/load.js';
import type { UsersFile } from '../../src/config/types.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/compile.js';
import { loosenings, ruleLoosenings } from '../../src/policy/loosening.js';

const dir = mkdtempSync(join(tmpdir(), 'pgveil-loosening-'));
writeFileSync(join(dir, 'users.yaml'), 'organizations: { acme: {}, globex: {} }\nusers: {}\n');
const users: UsersFile = loadUsers(join(dir, 'users.yaml'));

const base = `layers: { access: true, ownership: true, redaction: true }
defaults: { unlistedRelations: deny, writes: deny }
secrets: { scrambleKey: "a plain test key" }
tables:
  crm.employees:
    access:
      allow: { orgs: [acme] }
      deny: { groups: [interns] }
    ownership:
      - filter: "org_id = \${user.org}"
        except: { groups: [auditors] }
    redaction:
      ssn: { mask: partial, keepLast: 4, except: { groups: [hr] } }
      salary: { mask: "null" }
      notes: { mask: custom, expr: "left(\${column}, 10)" }
  crm.accounts:
    ownership:
      - filter: "org_id = \${user.org}"
`;

let n = 0;
function compile(text: string): CompiledPolicy {
  const file = join(dir, `policy-${++n}.yaml`);
  writeFileSync(file, text);
  return compilePolicy(loadPolicy(file, users), users, n);
}

const diff = (next: string) => loosenings(compile(base), compile(next));

test('E4 an unchanged or tightened policy loosens nothing', () => {
  assert.equal(diff(base), []);
  const tighter = base
    .replace('mask: partial, keepLast: 4', 'mask: hash')
    .replace('allow: { orgs: [acme] }', 'allow: { orgs: [acme], except: { users: [x] } }')
    .replace('deny: { groups: [interns] }', 'deny: { groups: [interns, temps] }')
    .replace('except: { groups: [auditors] }', '')
    .replace('unlistedRelations: deny', 'unlistedRelations: deny') + '  crm.events: {}\n';
  assert.equal(diff(tighter), []);
  assert.equal(diff(base.replace('keepLast: 4', 'keepLast: 2')), []);
  // Removing a table under allowlist mode makes it unusable: tighter, not looser.
  assert.equal(diff(base.slice(0, base.indexOf('  crm.accounts:'))), []);
});

test('E4 layers switched off and defaults opened are loosenings', () => {
  assert.equal(diff(base.replace('ownership: true, redaction: true', 'ownership: false, redaction: false')), [
    'layers.ownership switched off', 'layers.redaction switched off',
  ]);
  assert.equal(diff(base.replace('unlistedRelations: deny, writes: deny', 'unlistedRelations: allow, writes: allow')), [
    'defaults.unlistedRelations: deny → allow (tables not listed became usable)', 'defaults.writes: deny → allow',
  ]);
});

test('E4 a table removed under unlistedRelations allow is a loosening', () => {
  const allow = base.replace('unlistedRelations: deny', 'unlistedRelations: allow');
  assert.equal(loosenings(compile(allow), compile(allow.slice(0, allow.indexOf('  crm.accounts:')))), [
    'crm.accounts: removed from the policy (no longer protected)',
  ]);
});

test('E4 access: allow removed or widened, deny removed or narrowed, excepts widened', () => {
  assert.equal(diff(base.replace('      allow: { orgs: [acme] }\n', '')), ['crm.employees: access.allow removed']);
  assert.equal(diff(base.replace('allow: { orgs: [acme] }', 'allow: { orgs: [acme, globex] }')), ['crm.employees: access.allow widened (+orgs: globex)']);
  assert.equal(diff(base.replace('      deny: { groups: [interns] }\n', '')), ['crm.employees: access.deny removed']);
  assert.equal(diff(base.replace('deny: { groups: [interns] }', 'deny: { groups: [], users: [a+b@acme.com] }')), [
    'crm.employees: access.deny narrowed (-groups: interns)',
  ]);
  assert.equal(diff(base.replace('deny: { groups: [interns] }', 'deny: { groups: [interns], except: { users: [ivy] } }')), [
    'crm.employees: access.deny.except widened (+users: ivy)',
  ]);
});

test('E4 ownership: a filter removed or rewritten, or its except widened, is a loosening', () => {
  assert.equal(diff(base.replace('    ownership:\n      - filter: "org_id = ${user.org}"\n        except: { groups: [auditors] }\n', '    ownership: []\n')), [
    'crm.employees: ownership filter "org_id = ${user.org}" removed or changed',
  ]);
  assert.equal(diff(base.replace('"org_id = ${user.org}"\n        except', '"org_id = ${user.org} OR true"\n        except')), [
    'crm.employees: ownership filter "org_id = ${user.org}" removed or changed',
  ]);
  assert.equal(diff(base.replace('except: { groups: [auditors] }', 'except: { groups: [auditors, analysts] }')), [
    'crm.employees: ownership filter "org_id = ${user.org}" except widened (+groups: analysts)',
  ]);
});

test('E4 redaction: a mask removed, weakened, changed unprovably, or its except widened, is a loosening', () => {
  assert.equal(diff(base.replace('      salary: { mask: "null" }\n', '')), ['crm.employees.salary: mask null removed']);
  assert.equal(diff(base.replace('salary: { mask: "null" }', 'salary: { mask: round, step: 10 }')), ['crm.employees.salary: mask null → round']);
  assert.equal(diff(base.replace('keepLast: 4', 'keepLast: 6')), ['crm.employees.ssn: mask partial → partial']);
  assert.equal(diff(base.replace('mask: partial, keepLast: 4', 'mask: email')), ['crm.employees.ssn: mask partial → email']);
  assert.equal(diff(base.replace('left(${column}, 10)', 'left(${column}, 20)')), ['crm.employees.notes: mask custom → custom']);
  assert.equal(diff(base.replace('except: { groups: [hr] }', 'except: { groups: [hr], orgs: [globex] }')), [
    'crm.employees.ssn: mask except widened (+orgs: globex)',
  ]);
});

test('E4 entries added to functions.allow or channels.listen are loosenings; removed ones are not', () => {
  const rules = (fns: string[], channels: string[]) => ({ allowedFunctions: new Set(fns), listenChannels: new Set(channels) });
  assert.equal(ruleLoosenings(rules(['public.f'], ['a']), rules(['public.f'], ['a'])), []);
  assert.equal(ruleLoosenings(rules(['public.f', 'public.g'], ['a', 'b']), rules(['public.f'], [])), []);
  assert.equal(ruleLoosenings(rules(['public.f'], []), rules(['public.f', 'crm.*'], ['reports'])), [
    'functions.allow: crm.* added (users may call it)',
    'channels.listen: reports added (users may LISTEN on it)',
  ]);
});

test.run();
