// What `pgveil explain` and `pgveil policy replay` share: decision engines
// built outside serve exactly as serve builds them (the upstream password
// opened, the catalog read as the service role), and the search_path their
// statements are decided under.
import { loadModule } from 'libpg-query';
import type { Config, PolicyFile, UsersFile } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { resolveSecret } from '../secrets/seal.js';
import { parseSearchPath } from '../catalog/resolve.js';
import { CatalogUnavailableError, DecisionEngine } from '../engine/engine.js';
import { openServiceClient } from '../upstream/service-client.js';
import { silentLogger } from '../observe/log.js';
import { stringOption, UsageError, type ParsedArgs } from './args.js';

export interface SearchPath {
  /** As given or as upstream reports it. */
  text: string;
  path: string[];
}

/** `--search-path`, parsed; undefined when not given. A value that does not parse is a usage error. */
export function searchPathOption(args: ParsedArgs): SearchPath | undefined {
  const text = stringOption(args, 'search-path');
  if (text === undefined) return undefined;
  try {
    return { text, path: parseSearchPath(text) };
  } catch (err) {
    throw new UsageError(`--search-path: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface OfflineEngines {
  /** One per policy, in the order given. */
  engines: DecisionEngine[];
  upstreamPassword: string | undefined;
}

/**
 * One engine per policy, loaded as serve loads them: the first reads the
 * upstream catalog, the others reuse it when they protect the same
 * relations (upstream is read once). When a load fails, prints
 * `pgveil <command>: <why>` and returns the exit code instead: 1 when the
 * upstream could not be read, 2 when a policy does not compile or fit.
 */
export async function loadEngines(command: string, config: Config, users: UsersFile, policies: readonly PolicyFile[]): Promise<OfflineEngines | number> {
  let masterKey: Uint8Array | undefined;
  const upstreamPassword = resolveSecret(config.upstream.password, () => (masterKey ??= loadMasterKey(config.secrets)), `${displayFile(config.file)}: upstream.password`);
  await loadModule();
  const engines = policies.map(() => new DecisionEngine(config, upstreamPassword, silentLogger));
  try {
    for (const [i, policy] of policies.entries()) await engines[i].load(users, policy, engines[0].current);
  } catch (err) {
    console.error(`pgveil ${command}: ${err instanceof Error ? err.message : String(err)}`);
    // The upstream being unreachable is a runtime failure; a policy that does not compile or fit is configuration.
    return err instanceof CatalogUnavailableError ? 1 : 2;
  }
  return { engines, upstreamPassword };
}

/**
 * `given`, or the search_path a new upstream session of the service role
 * starts with (role and database settings apply); undefined, after saying
 * why as `pgveil <command>: …`, when upstream cannot be asked.
 */
export async function sessionSearchPath(command: string, config: Config, upstreamPassword: string | undefined, given: SearchPath | undefined): Promise<SearchPath | undefined> {
  if (given) return given;
  try {
    const client = await openServiceClient(config.upstream, upstreamPassword);
    let text: string;
    try {
      text = (await client.query<{ search_path: string }>('SHOW search_path')).rows[0].search_path;
    } finally {
      await client.end().catch(() => {});
    }
    return { text, path: parseSearchPath(text) };
  } catch (err) {
    console.error(`pgveil ${command}: could not read the upstream search_path: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}
