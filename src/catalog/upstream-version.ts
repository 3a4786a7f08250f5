// pgveil supports upstream PostgreSQL 14–18 (README, Supported PostgreSQL versions); an older upstream is
// refused at startup (and a reload that finds one keeps the old policy) with
// one line naming the version found and the supported range. Newer majors are
// accepted: pgveil's grammar check (rewrite/grammar-drift.ts) covers only
// older ones, so a newer upstream is logged by whoever calls this.
import { OLDEST_MAJOR, PGVEIL_MAJOR } from '../rewrite/grammar-drift.js';

/**
 * The upstream cannot be used as it is (too old, or missing what the policy
 * needs): retrying will not help, so startup stops and a reload keeps the old
 * policy. Named ConfigError so `pgveil serve` exits with 2 (exit codes: docs/configuration.md).
 */
export class UpstreamSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The lowest server_version_num pgveil accepts (14.0). */
export const OLDEST_VERSION_NUM = OLDEST_MAJOR * 10000;

/** Why an upstream of `serverVersionNum` cannot be served, or undefined when it can. */
export function serverVersionProblem(serverVersionNum: number, serverVersion?: string): string | undefined {
  const shown = serverVersion ? `${serverVersion} (server_version_num ${serverVersionNum})` : `server_version_num ${serverVersionNum}`;
  if (!Number.isInteger(serverVersionNum) || serverVersionNum <= 0) {
    return `the upstream reported no usable server_version_num (${String(serverVersion ?? serverVersionNum)}); pgveil supports PostgreSQL ${OLDEST_MAJOR} to ${PGVEIL_MAJOR}`;
  }
  if (serverVersionNum < OLDEST_VERSION_NUM) {
    return `the upstream is PostgreSQL ${shown}; pgveil supports PostgreSQL ${OLDEST_MAJOR} to ${PGVEIL_MAJOR}: upgrade the upstream server`;
  }
  return undefined;
}

/** Throws UpstreamSetupError when serverVersionProblem() finds one. */
export function checkServerVersion(serverVersionNum: number, serverVersion?: string): void {
  const problem = serverVersionProblem(serverVersionNum, serverVersion);
  if (problem) throw new UpstreamSetupError(problem);
}
