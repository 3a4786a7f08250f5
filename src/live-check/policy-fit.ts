// The policy against the upstream schema: the checks serve runs at startup
// and on every reload (policy/check.ts), with serve's own file:line:col
// messages, as findings. Serve refuses such a policy, so they are
// configuration errors (exit 2), fixed in the policy file.
import type { Catalog } from '../catalog/types.js';
import { formatIssue } from '../config/errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { policyConfigError, upstreamPolicyProblems } from '../policy/check.js';
import type { Finding } from './finding.js';

function checkOf(path: string, message: string): { check: string; fix: string } {
  if (message.startsWith('no such table')) return { check: 'policy-unknown-table', fix: 'correct the key under tables: (schema.table, as the upstream spells it), or remove the entry' };
  if (message.startsWith('no such column')) return { check: 'policy-unknown-column', fix: 'correct the column name under redaction:, or remove it' };
  if (/\.(filter|expr)$/.test(path)) return { check: 'policy-unqualified-name', fix: 'write every relation and function in the expression schema-qualified' };
  return { check: 'policy-mask-type', fix: 'choose a mask that fits the column\'s type (docs/configuration.md lists which fit which), or a custom expression' };
}

export function policyFitFindings(compiled: CompiledPolicy, catalog: Catalog, policyFile: string): Finding[] {
  const problems = upstreamPolicyProblems(compiled, catalog);
  if (!problems.length) return [];
  return policyConfigError(policyFile, problems).issues.map((issue) => ({
    ...checkOf(issue.path, issue.message),
    kind: 'policy' as const,
    subject: formatIssue(issue),
    why: 'serve refuses to start with this policy, and a reload with it keeps the old one',
    sql: [],
  }));
}
