// `pgveil rekey --config F --new-key-file K`: re-seals every sealed value in
// the config, users, policy and shadow policy files under a new master key,
// so the key can be rotated without the secrets' plain text. Every value is
// opened and re-sealed in memory first; files change only when all of them
// opened, and each file is replaced whole (rename), keeping its layout.
import { readFileSync } from 'node:fs';
import { ConfigError, displayFile } from '../config/errors.js';
import { stageReplacement, type StagedFile } from '../config/replace-file.js';
import { loadMasterKeyInfo } from '../secrets/master-key.js';
import { resealText } from '../secrets/reseal.js';
import { parseArgs, requireOption, UsageError } from './args.js';
import type { Command } from './main.js';

const usage = `usage: pgveil rekey --config FILE --new-key-file KEYFILE

  --config FILE         the pgveil.yaml; its secrets.masterKeyFile (or PGVEIL_MASTER_KEY) is the current key
  --new-key-file FILE   the new master key (make it with \`pgveil keygen --out FILE\`)

Re-seals every "sealed:…" value in pgveil.yaml, users.yaml, policy.yaml and the
shadow policy under the new key. Then point secrets.masterKeyFile at the new key
(or put it in place of the old one) and restart pgveil: until then a reload of a
re-sealed file is rejected and the running policy stays.
Exit codes: 0 done, 1 a value does not open with the current key (nothing changed),
2 usage or configuration error.`;

export const command: Command = {
  summary: 're-seal every sealed value under a new master key (key rotation)',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value', 'new-key-file': 'value' });
    if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const configFile = requireOption(args, 'config');
    const newKeyFile = requireOption(args, 'new-key-file');
    let files: string[];
    let current: Uint8Array;
    try {
      const { loadConfig } = await import('../config/load.js');
      const config = loadConfig(configFile);
      files = [config.file, config.users, config.policy, ...(config.shadow ? [config.shadow] : [])];
      current = loadMasterKeyInfo(config.secrets).key;
    } catch (err) {
      if (err instanceof ConfigError) { console.error(`pgveil rekey: configuration error\n${err.message}`); return 2; }
      throw err;
    }
    // The new key comes from its file only: PGVEIL_MASTER_KEY names the current key.
    const next = loadMasterKeyInfo({ masterKeyFile: newKeyFile }, {});
    for (const w of next.warnings) console.error(`pgveil rekey: warning: ${w}`);
    if (Buffer.compare(Buffer.from(current), Buffer.from(next.key)) === 0) throw new UsageError('the new key is the current key');

    const changes: Array<{ file: string; text: string; paths: string[] }> = [];
    for (const file of [...new Set(files)]) {
      try {
        const { text, paths } = resealText(readFileSync(file, 'utf8'), current, next.key);
        if (paths.length) changes.push({ file, text, paths });
      } catch (err) {
        console.error(`pgveil rekey: ${displayFile(file)}: ${err instanceof Error ? err.message : String(err)}; no file was changed`);
        return 1;
      }
    }
    const staged: StagedFile[] = [];
    try {
      for (const c of changes) staged.push(stageReplacement(c.file, c.text));
    } catch (err) {
      for (const s of staged) s.discard();
      throw err;
    }
    for (const s of staged) s.commit();
    for (const c of changes) console.log(`re-sealed ${displayFile(c.file)}: ${c.paths.join(', ')}`);
    if (!changes.length) console.log('no sealed values found; nothing changed');
    console.log(`now make ${newKeyFile} the master key (secrets.masterKeyFile or PGVEIL_MASTER_KEY) and restart pgveil`);
    return 0;
  },
};
