// `pgveil --version`: the version of the package.json this installation was
// built from, found upwards from this module (dist/cli/ in a checkout or the
// image, build/src/cli/ in the tests), so there is one place to bump it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'pgveil' && typeof pkg.version === 'string') return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json of pgveil not found next to the installation');
    dir = up;
  }
}
