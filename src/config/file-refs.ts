// Files a config names (certificates, keys, the users and policy files) must
// exist and be readable when the config is loaded, not when the first client
// happens to need them.
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import { displayFile, type PathSegment } from './errors.js';
import type { YamlSource } from './yaml-source.js';

/** Relative paths are relative to the directory of the file they appear in. */
export function resolveFrom(file: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(file), path);
}

/** Reports at `path` when `abs` is not a readable regular file. True when it is. */
export function checkReadableFile(source: YamlSource, path: PathSegment[], abs: string): boolean {
  const shown = displayFile(abs);
  try {
    if (!statSync(abs).isFile()) {
      source.report(path, `not a regular file: ${shown}`);
      return false;
    }
    accessSync(abs, constants.R_OK);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    source.report(path, code === 'ENOENT' || code === 'ENOTDIR' ? `file not found: ${shown}`
      : code === 'EACCES' || code === 'EPERM' ? `cannot read ${shown}: permission denied`
      : `cannot read ${shown}: ${code ?? String(err)}`);
    return false;
  }
}
