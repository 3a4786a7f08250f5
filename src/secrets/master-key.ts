// The 256-bit master key that seals secrets in the config files (threat D4 in docs/threat-model.md).
// Sources, first match wins:
//   1. env PGVEIL_MASTER_KEY — base64 of 32 bytes (lets containers inject it
//      without a file, and overrides the file for one run);
//   2. the file named by secrets.masterKeyFile — the same base64 text,
//      surrounding whitespace ignored.
// Error messages name the source, never the key or any part of it.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

export const MASTER_KEY_ENV = 'PGVEIL_MASTER_KEY';
export const MASTER_KEY_BYTES = 32;

export interface MasterKeyInfo {
  key: Uint8Array;
  source: 'env' | 'file';
  /** The key file, when the key came from one. */
  file?: string;
  /** Things worth logging as warnings (e.g. a group/world-readable key file). */
  warnings: string[];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeKey(text: string, source: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error(`master key from ${source} is empty`);
  if (!BASE64.test(trimmed)) throw new Error(`master key from ${source} is not valid base64 (make one with \`pgveil keygen\`)`);
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== MASTER_KEY_BYTES) {
    throw new Error(`master key from ${source} must decode to exactly ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
  }
  return new Uint8Array(key);
}

/** Loads the master key with where it came from and any warnings. Throws a clear Error when absent or invalid. */
export function loadMasterKeyInfo(cfg: { masterKeyFile?: string }, env: NodeJS.ProcessEnv = process.env): MasterKeyInfo {
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { key: decodeKey(fromEnv, `environment variable ${MASTER_KEY_ENV}`), source: 'env', warnings: [] };
  }
  const file = cfg.masterKeyFile;
  if (!file) {
    throw new Error(`no master key: set ${MASTER_KEY_ENV} or secrets.masterKeyFile in the config (make a key with \`pgveil keygen\`)`);
  }
  let text: string;
  let mode: number;
  try {
    text = readFileSync(file, 'utf8');
    mode = statSync(file).mode;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read master key file ${file} (${code})`);
  }
  const loose = modeWarning(file, mode);
  return { key: decodeKey(text, `file ${file}`), source: 'file', file, warnings: loose ? [loose] : [] };
}

function modeWarning(file: string, mode: number): string | undefined {
  if (process.platform === 'win32' || (mode & 0o077) === 0) return undefined;
  return `master key file ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`;
}

/**
 * The warning for a key file group or others can read, when the key would
 * come from that file (the environment variable is not set). For `serve`,
 * which loads the key only when a sealed value needs it but should warn at
 * startup either way; `seal` gets the same text from loadMasterKeyInfo.
 */
export function masterKeyFileWarning(cfg: { masterKeyFile?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!cfg.masterKeyFile || (env[MASTER_KEY_ENV] !== undefined && env[MASTER_KEY_ENV] !== '')) return undefined;
  const stat = statSync(cfg.masterKeyFile, { throwIfNoEntry: false });
  return stat ? modeWarning(cfg.masterKeyFile, stat.mode) : undefined;
}

/** The master key (see loadMasterKeyInfo); warnings go to `onWarning` when given. */
export function loadMasterKey(
  cfg: { masterKeyFile?: string },
  env: NodeJS.ProcessEnv = process.env,
  onWarning?: (message: string) => void,
): Uint8Array {
  const info = loadMasterKeyInfo(cfg, env);
  for (const w of info.warnings) onWarning?.(w);
  return info.key;
}

/** A new random master key, base64 (what `pgveil keygen` prints). */
export function generateMasterKey(): string {
  return randomBytes(MASTER_KEY_BYTES).toString('base64');
}
