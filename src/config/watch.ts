// Reload trigger for users and policy files. Watches the *directories*:
// editors and deploy tools replace a file by writing a temp file and renaming
// it over the old one, which a watch on the file itself would miss (it keeps
// following the old, unlinked inode). Bursts of events (write + rename +
// chmod) are collapsed into one callback after a quiet period.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface WatchOptions {
  /** Quiet period after the last event before `onChange` runs. Default 200 ms. */
  debounceMs?: number;
}

export function watchFiles(files: string[], onChange: () => void, opts: WatchOptions = {}): { close(): void } {
  const debounceMs = opts.debounceMs ?? 200;
  const namesByDir = new Map<string, Set<string>>();
  for (const file of files) {
    const abs = resolve(file);
    const names = namesByDir.get(dirname(abs)) ?? new Set<string>();
    names.add(basename(abs));
    namesByDir.set(dirname(abs), names);
  }

  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const trigger = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => { if (!closed) onChange(); }, debounceMs);
  };

  const watchers: FSWatcher[] = [];
  for (const [dir, names] of namesByDir) {
    // Kubernetes ConfigMaps swap a `..data` symlink instead of the files; a
    // null name means the platform did not say which file changed.
    const relevant = (name: string | null) => name === null || names.has(name) || name.startsWith('..');
    const watcher = watch(dir, { persistent: false }, (_event, name) => { if (relevant(name)) trigger(); });
    // A vanished directory must not crash the server; reload keeps the old files.
    watcher.on('error', () => {});
    watchers.push(watcher);
  }

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
