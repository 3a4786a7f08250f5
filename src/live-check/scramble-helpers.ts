// The keyed helpers scramble and hash masks call upstream: missing, not
// usable by the service role, or installed with another key than the
// policy's. Checked the way serve checks them at every policy load
// (policy/scramble-install.ts), without ever reading the key.
import type pg from 'pg';
import type { Config, PolicyFile } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { installedKeyProblem, policyScrambleKey, policyUsesKeyedMasks } from '../policy/scramble-install.js';
import type { Finding } from './finding.js';

export async function scrambleHelperFindings(client: pg.ClientBase, compiled: CompiledPolicy, policy: PolicyFile, config: Config): Promise<Finding[]> {
  if (!policyUsesKeyedMasks(compiled)) return [];
  const key = policyScrambleKey(policy.secrets.scrambleKey, config.secrets, policy.file);
  if (!key) return []; // a keyed mask without secrets.scrambleKey is refused before the upstream is asked
  const problem = await installedKeyProblem(client, key);
  if (!problem) return [];
  return [{
    check: 'scramble-helpers', kind: 'upstream',
    subject: problem,
    why: 'every scramble and hash mask calls these helpers: serve refuses to start (and a reload keeps the old policy) until they hold the policy\'s key',
    // The install SQL carries the key: it is piped, never printed here.
    sql: [],
    fix: `pgveil install-helpers --config ${displayFile(config.file)} | psql -v ON_ERROR_STOP=1 -X -q -f - "<upstream connection as a superuser>"`,
  }];
}
