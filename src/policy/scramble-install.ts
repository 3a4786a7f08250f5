// Glue between the config files and scramble-sql.ts: the install SQL for a
// config (what a DBA runs; a CLI command can print it), and the check that
// the key installed upstream is the policy's key, done without reading it.
import { loadAll } from '../config/load.js';
import { displayFile } from '../config/errors.js';
import type { PolicyFile } from '../config/types.js';
import { UpstreamSetupError } from '../catalog/upstream-version.js';

export { UpstreamSetupError };
import type { CompiledPolicy } from './compile.js';
import { maskKinds } from './mask-kinds.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import { HELPER_SCHEMA, scrambleInstallSql, scrambleKeyFromSecret, scrambleKeyId, type ScrambleInstallOptions } from './scramble-sql.js';

/** The 32-byte scramble key of a policy, or undefined when it sets none. Opens a sealed value with the config's master key. */
export function policyScrambleKey(scrambleKey: string | undefined, secrets: { masterKeyFile?: string }, policyFile: string): Buffer | undefined {
  let master: Uint8Array | undefined;
  const secret = resolveSecret(scrambleKey, () => (master ??= loadMasterKey(secrets)), `${displayFile(policyFile)}: secrets.scrambleKey`);
  return secret === undefined ? undefined : scrambleKeyFromSecret(secret);
}

/** The helper-schema install SQL for the policy of `configFile`, granted to its upstream user. */
export function scrambleInstallSqlForConfig(configFile: string, opts: Omit<ScrambleInstallOptions, 'serviceRole'> = {}): string {
  const { config, policy } = loadAll(configFile);
  const key = policyScrambleKey(policy.secrets.scrambleKey, config.secrets, policy.file);
  if (!key) throw new Error(`${policy.file}: secrets.scrambleKey is not set; seal one with \`pgveil seal\` first`);
  return scrambleInstallSql(key, { ...opts, serviceRole: config.upstream.user });
}

/** Anything with pg's `query(text)`; keeps this module free of a driver dependency. */
export interface Queryable {
  query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }>;
}

/**
 * Why the upstream helper schema cannot serve this key, or undefined when it
 * can: missing schema or grants, or a key other than the policy's.
 */
export async function installedKeyProblem(client: Queryable, key: Buffer): Promise<string | undefined> {
  let installed: unknown;
  try {
    const r = await client.query(`SELECT ${HELPER_SCHEMA}.key_id() AS id`);
    installed = r.rows[0]?.id;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3F000' || code === '42883') return `the ${HELPER_SCHEMA} helper schema is not installed upstream (see README.md, "Scramble and hash: the keyed helpers")`;
    if (code === '42501') return `the service role may not use the ${HELPER_SCHEMA} helper functions; re-run the install SQL for this role`;
    throw err;
  }
  if (installed === null || installed === undefined) return `the ${HELPER_SCHEMA} helper schema holds no key; re-run the install SQL`;
  if (installed !== scrambleKeyId(key)) return `the key installed in the ${HELPER_SCHEMA} helper schema is not policy.secrets.scrambleKey; re-run the install SQL made from this policy`;
  return undefined;
}

/** Whether any mask of the compiled policy runs a keyed helper (scramble or hash). */
export function policyUsesKeyedMasks(compiled: CompiledPolicy): boolean {
  for (const table of compiled.tables.values()) {
    for (const masks of table.masks.values()) if (masks.some((m) => maskKinds[m.kind].keyed)) return true;
  }
  return false;
}

/**
 * Startup and every reload (called from DecisionEngine.load with the service
 * role's connection): a policy with scramble/hash masks needs the helper
 * schema installed upstream with its key, or every masked read would fail.
 * Throws UpstreamSetupError (the old policy stays on reload; serve exits 2
 * at startup) naming the command that prints the install SQL.
 */
export async function checkScrambleHelpers(client: Queryable, compiled: CompiledPolicy, policy: PolicyFile, secrets: { masterKeyFile?: string }, configFile?: string): Promise<void> {
  if (!policyUsesKeyedMasks(compiled)) return;
  const key = policyScrambleKey(policy.secrets.scrambleKey, secrets, policy.file);
  if (!key) return; // compilePolicy already refused keyed masks without secrets.scrambleKey
  const problem = await installedKeyProblem(client, key);
  if (!problem) return;
  const config = configFile ?? '<pgveil.yaml>';
  throw new UpstreamSetupError(`${problem}. The policy uses scramble/hash masks: run \`pgveil install-helpers --config ${config} | psql -v ON_ERROR_STOP=1 -X -q -f - "<upstream connection as a superuser>"\``);
}
