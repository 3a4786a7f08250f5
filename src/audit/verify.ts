// `pgveil audit verify`: finds the audit files a path names and checks each
// chain. A directory may hold rotated files (`<name>-YYYY-MM-DD<ext>`) and the
// active file `<name><ext>`; an active file without rotated siblings is
// recognised by its start record. Files of one log are checked oldest first.
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FILE_START, splitRotatedName } from './chain.js';
import { verifyChain, type ChainFile, type ChainReport } from './verify-chain.js';

export type { ChainReport } from './verify-chain.js';

/** A path that cannot be verified at all (missing, unreadable, nothing audit-like in it): a usage error. */
export class VerifyInputError extends Error {
  override name = 'VerifyInputError';
}

export interface Verdict { ok: boolean; chains: ChainReport[] }

/** Checks a file, several files of one log, or a directory (every log in it). */
export async function verifyPath(...paths: string[]): Promise<Verdict> {
  if (paths.length === 0) throw new VerifyInputError('name an audit file or a directory');
  const kinds = await Promise.all(paths.map(async (p) => {
    try {
      const s = await stat(p);
      if (s.isDirectory()) return 'dir';
      if (s.isFile()) return 'file';
      throw new VerifyInputError(`${p}: not a file or directory`);
    } catch (err) {
      if (err instanceof VerifyInputError) throw err;
      throw new VerifyInputError(`${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
  }));
  let chains: ChainFile[][];
  if (kinds.includes('dir')) {
    if (paths.length > 1) throw new VerifyInputError('name one directory, or files of one log');
    chains = await chainsInDirectory(paths[0]);
  } else {
    chains = [ordered(paths.map(chainFile))];
  }
  const reports: ChainReport[] = [];
  for (const files of chains) {
    await assertReadable(files);
    reports.push(await verifyChain(files));
  }
  return { ok: reports.every((r) => !r.problem), chains: reports };
}

function chainFile(path: string): ChainFile {
  const name = basename(path);
  return { path, name, rotated: splitRotatedName(name) !== null };
}

/** Rotated files by day, then the active file. */
function ordered(files: ChainFile[]): ChainFile[] {
  const dayOf = (f: ChainFile) => (f.rotated ? splitRotatedName(f.name)!.day : '9999-99-99');
  return [...files].sort((a, b) => dayOf(a).localeCompare(dayOf(b)) || a.name.localeCompare(b.name));
}

async function chainsInDirectory(dir: string): Promise<ChainFile[][]> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (err) {
    throw new VerifyInputError(`${dir}: ${(err as Error).message}`);
  }
  const groups = new Map<string, ChainFile[]>();
  const add = (active: string, file: ChainFile) => { const g = groups.get(active) ?? []; g.push(file); groups.set(active, g); };
  for (const name of names) {
    const split = splitRotatedName(name);
    if (split) add(split.active, chainFile(join(dir, name)));
  }
  for (const name of names) {
    if (splitRotatedName(name)) continue;
    if (groups.has(name) || await startsWithStartRecord(join(dir, name))) add(name, chainFile(join(dir, name)));
  }
  if (groups.size === 0) throw new VerifyInputError(`${dir}: no audit files (neither <name>-YYYY-MM-DD files nor a file that begins with an audit_file_start record)`);
  return [...groups.keys()].sort().map((k) => ordered(groups.get(k)!));
}

async function startsWithStartRecord(path: string): Promise<boolean> {
  try {
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(200);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return /^\{"ts":"[^"]*","seq":\d+,"event":"([a-z_]+)"/.exec(buf.subarray(0, bytesRead).toString('utf8'))?.[1] === FILE_START;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}

async function assertReadable(files: ChainFile[]): Promise<void> {
  for (const f of files) {
    try {
      await (await open(f.path, 'r')).close();
    } catch (err) {
      throw new VerifyInputError(`${f.path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}
