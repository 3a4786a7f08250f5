// `pgveil check --live`: connects as the service role (exactly as serve
// does), reads the catalog serve reads, and runs every group of checks.
// Nothing here needs more than the service role's own rights: every
// catalog it reads is readable by any role.
import { loadModule } from 'libpg-query';
import type pg from 'pg';
import { loadCatalog } from '../catalog/load.js';
import type { Config, PolicyFile, UsersFile } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import { compileCheckedPolicy } from '../policy/check.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import { openServiceClient } from '../upstream/service-client.js';
import { advisoryFindings } from './advisories.js';
import { dependentFindings } from './dependents.js';
import { extensionFindings } from './extensions.js';
import type { Finding, LiveReport } from './finding.js';
import { policyFitFindings } from './policy-fit.js';
import { databaseTempFindings, schemaCreateFindings, sqlExecutingFunctionFindings } from './privileges.js';
import { attributeFindings, membershipFindings, ownershipFindings, readRole, rowSecurityTables } from './role.js';
import { scrambleHelperFindings } from './scramble-helpers.js';
import { statisticsFindings } from './statistics.js';

/** The upstream could not be reached or refused the service role's login: nothing was checked. */
export class UpstreamUnreachableError extends Error {}

export interface LoadedFiles { config: Config; users: UsersFile; policy: PolicyFile }

export async function runLiveCheck({ config, users, policy }: LoadedFiles): Promise<LiveReport> {
  await loadModule();
  const compiled = compileCheckedPolicy(policy, users, 1);
  let master: Uint8Array | undefined;
  const password = resolveSecret(config.upstream.password, () => (master ??= loadMasterKey(config.secrets)), `${displayFile(config.file)}: upstream.password`);
  const { host, port, database, user } = config.upstream;
  let client: pg.Client;
  try {
    client = await openServiceClient(config.upstream, password);
  } catch (err) {
    throw new UpstreamUnreachableError(`cannot connect to the upstream ${host}:${port} database ${database} as ${user}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const catalog = await loadCatalog(client, { protectedRelations: [...compiled.tables.keys()], serviceRole: user });
    const server = await client.query<{ version: string; database: string; role: string }>(
      `SELECT pg_catalog.current_setting('server_version') AS version, pg_catalog.current_database() AS database, CURRENT_USER AS role`);
    const governedOids = [...catalog.byOid.values()].filter((r) => r.protectedBy?.length).map((r) => r.oid);
    const role = await readRole(client);
    const memberships = await membershipFindings(client, role);
    const findings: Finding[] = [
      ...policyFitFindings(compiled, catalog, policy.file),
      ...attributeFindings(role, await rowSecurityTables(client, governedOids)),
      ...memberships,
      ...await ownershipFindings(client, role, governedOids),
      ...await schemaCreateFindings(client, role),
      ...await databaseTempFindings(client, role),
      ...await sqlExecutingFunctionFindings(client, role),
      ...await extensionFindings(client),
      ...await dependentFindings(client, role, {
        catalog, allowedFunctions: policy.functions?.allow ?? [],
        readsAllData: memberships.some((f) => f.check === 'role-pg-read-all-data'),
      }),
      ...await statisticsFindings(client, role, governedOids),
      ...advisoryFindings(catalog.serverVersionNum),
      ...await scrambleHelperFindings(client, compiled, policy, config),
    ];
    const facts = server.rows[0];
    return {
      upstream: { version: facts.version, versionNum: catalog.serverVersionNum, role: facts.role, database: facts.database },
      governed: governedOids.length,
      findings,
    };
  } finally {
    await client.end().catch(() => {});
  }
}
