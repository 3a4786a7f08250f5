// admin.token, opened: the bearer token of the control API. Sealed or plain in
// pgveil.yaml; too short a token could be guessed over the network.
import type { Config } from '../config/types.js';
import { displayFile } from '../config/errors.js';
import { resolveSecret } from '../secrets/seal.js';

export const MIN_TOKEN_CHARS = 16;

/** The opened token, or undefined when none is configured (no control API). Throws for one too short. */
export function adminToken(config: Config, key: () => Uint8Array): string | undefined {
  const where = `${displayFile(config.file)}: admin.token`;
  const token = resolveSecret(config.admin?.token, key, where);
  if (token !== undefined && token.length < MIN_TOKEN_CHARS) {
    throw new Error(`${where}: too short (at least ${MIN_TOKEN_CHARS} characters; \`pgveil keygen\` prints a good one)`);
  }
  return token;
}
