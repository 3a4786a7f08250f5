// `pgveil audit verify <file or dir>`: checks the audit log's hash chain.
// Exit 0 intact (with a summary), 1 broken (naming the first broken line as
// file:line), 2 usage errors and paths that cannot be read.
import type { Command } from './main.js';
import { UsageError, parseArgs } from './args.js';
import { VerifyInputError, verifyPath, type ChainReport } from '../audit/verify.js';
import { displayFile } from '../config/errors.js';
import { basename, dirname } from 'node:path';

const usage = [
  'usage: pgveil audit verify <file or directory>',
  '       pgveil audit verify <file> <file>…   (files of one log, in any order)',
].join('\n');

export const command: Command = {
  summary: 'check the audit log\'s hash chain: name the first edited, removed, reordered or inserted line or file',
  usage,
  async run(argv: string[]): Promise<number> {
    const [name, ...rest] = argv;
    if (name !== 'verify') throw new UsageError(name ? `unknown subcommand "${name}"` : 'missing subcommand (verify)');
    const { positionals } = parseArgs(rest, {});
    if (positionals.length === 0) throw new UsageError('name an audit file or a directory');
    let verdict;
    try {
      verdict = await verifyPath(...positionals);
    } catch (err) {
      if (err instanceof VerifyInputError) { console.error(`pgveil audit verify: ${err.message}`); return 2; }
      throw err;
    }
    for (const chain of verdict.chains) console.log(describe(chain));
    return verdict.ok ? 0 : 1;
  },
};

function describe(chain: ChainReport): string {
  const out: string[] = [];
  if (chain.problem) {
    out.push(`${displayFile(chain.problem.file)}:${chain.problem.line}: ${chain.problem.message}`);
  } else {
    const span = chain.first ? `, ${chain.first} to ${chain.last}` : '';
    out.push(`chain intact: ${chain.files.length} file${chain.files.length === 1 ? '' : 's'}, ${chain.records} record${chain.records === 1 ? '' : 's'}${span}`);
  }
  const dirs = new Set(chain.files.map((f) => dirname(f)));
  const names = dirs.size === 1 ? chain.files.map((f) => basename(f)) : chain.files.map((f) => displayFile(f));
  out.push(`  files in chain order${dirs.size === 1 ? ` (in ${displayFile([...dirs][0]) || '.'})` : ''}: ${names.join(', ')}`);
  for (const note of chain.notes) out.push(`  note: ${note}`);
  return out.join('\n');
}
