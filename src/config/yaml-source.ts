// One YAML file as read from disk: its plain data for validation, and its
// node tree with source offsets so that any problem found later — by the
// schema or by a semantic rule — can be reported at file:line:col.
import { readFileSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import { formatPath, type ConfigIssue, type PathSegment } from './errors.js';

/** Where a problem is shown: on the key of the entry, on its value, or on the mapping that holds it. */
export type Anchor = 'key' | 'value' | 'mapping';

interface Located { node?: Node; pair?: Pair; depth: number }

export class YamlSource {
  readonly issues: ConfigIssue[] = [];
  /** Plain data (aliases resolved); undefined when the file could not be read or parsed. */
  data: unknown;
  private doc?: Document;
  private readonly lines = new LineCounter();
  private muted: PathSegment[][] = [];

  private constructor(readonly file: string) {}

  /** Never throws: an unreadable file or a syntax error becomes an issue and leaves `data` undefined. */
  static read(file: string): YamlSource {
    const src = new YamlSource(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      src.issues.push({ file, line: 1, column: 1, path: '', message: readFailure(err) });
      return src;
    }
    src.parse(text);
    return src;
  }

  get ok(): boolean { return this.data !== undefined; }

  /**
   * Silences later reports on these paths, their ancestors and descendants:
   * once the schema has flagged a value, rules that read it (or read the
   * default that replaced it) would only repeat or confuse that report.
   */
  mute(paths: readonly PathSegment[][]): void {
    this.muted.push(...paths.map((p) => [...p]));
  }

  /** Records a problem at the node that `path` names (or its nearest existing ancestor). */
  report(path: readonly PathSegment[], message: string, anchor: Anchor = 'value'): void {
    if (this.muted.some((m) => isPrefix(m, path) || isPrefix(path, m))) return;
    const { line, column } = this.position(path, anchor);
    this.issues.push({ file: this.file, line, column, path: formatPath(path), message });
  }

  /** Whether the file itself spells out `path` (as opposed to a default filling it in). */
  has(path: readonly PathSegment[]): boolean {
    return this.locate(path).depth === path.length;
  }

  position(path: readonly PathSegment[], anchor: Anchor): { line: number; column: number } {
    const found = this.locate(path);
    const exact = found.depth === path.length;
    let offset: number | undefined;
    if (exact && anchor === 'key' && found.pair && hasRange(found.pair.key)) offset = found.pair.key.range![0];
    else if (found.node && hasRange(found.node) && !isEmptyScalar(found.node)) offset = found.node.range![0];
    else if (found.pair && hasRange(found.pair.key)) offset = found.pair.key.range![0];
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  private parse(text: string): void {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    this.doc = doc;
    let fatal = false;
    for (const err of [...doc.errors, ...doc.warnings]) {
      let offset = err.pos[0];
      let path = this.pathAt(offset);
      let message = err.message.split('\n')[0];
      if (err.code === 'MISSING_CHAR' && /quote/.test(message)) {
        // The parser notices at the end of the file; the mistake is where the quote opened.
        path = this.pathAt(offset - 1);
        const start = this.locate(path).node?.range?.[0];
        if (start !== undefined && start < offset) offset = start;
        message = 'unterminated quoted string (missing closing quote)';
      }
      const { line, col } = this.lines.linePos(offset);
      if (err.code === 'DUPLICATE_KEY') {
        const key = path[path.length - 1];
        const first = this.firstKey(path);
        message = `duplicate key ${JSON.stringify(String(key))}` + (first ? ` (first defined at line ${first})` : '');
      } else if (err.name === 'YAMLParseError') {
        fatal = true;
        message = `YAML syntax error: ${message}`;
      }
      this.issues.push({ file: this.file, line, column: col, path: formatPath(path), message });
    }
    // A duplicate key leaves a usable tree (last one wins), so validation goes
    // on and reports the rest; any other syntax error would only cause noise.
    if (fatal) return;
    try {
      this.data = doc.toJS({ maxAliasCount: 100 }) ?? {};
    } catch (err) {
      this.issues.push({ file: this.file, line: 1, column: 1, path: '', message: `YAML error: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  private locate(path: readonly PathSegment[]): Located {
    let node = this.resolve(this.doc?.contents ?? undefined);
    let pair: Pair | undefined;
    let depth = 0;
    for (const seg of path) {
      if (isMap(node)) {
        const next = lastPair(node.items, String(seg));
        if (!next) break;
        pair = next;
        node = this.resolve(next.value ?? undefined);
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        pair = undefined;
        node = this.resolve(node.items[seg] ?? undefined);
      } else break;
      depth++;
    }
    return { node: node ?? undefined, pair, depth };
  }

  private resolve(node: unknown): Node | undefined {
    if (isAlias(node) && this.doc) return node.resolve(this.doc) ?? undefined;
    return (node as Node | undefined) ?? undefined;
  }

  /** Key path of the deepest entry whose key or value spans `offset`. */
  private pathAt(offset: number): PathSegment[] {
    const path: PathSegment[] = [];
    let node: unknown = this.doc?.contents;
    for (;;) {
      if (isMap(node)) {
        const hit = node.items.find((p) => spans(p.key, offset) || spans(p.value, offset));
        if (!hit) return path;
        path.push(keyText(hit) ?? '');
        if (spans(hit.key, offset)) return path;
        node = hit.value;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((item) => spans(item, offset));
        if (i < 0) return path;
        path.push(i);
        node = node.items[i];
      } else return path;
    }
  }

  /** Line of the first occurrence of the last key of `path` in its mapping. */
  private firstKey(path: PathSegment[]): number | undefined {
    const parent = this.locate(path.slice(0, -1));
    if (parent.depth !== path.length - 1 || !isMap(parent.node)) return undefined;
    const first = parent.node.items.find((p) => keyText(p) === String(path[path.length - 1]));
    return first && hasRange(first.key) ? this.lines.linePos(first.key.range![0]).line : undefined;
  }
}

function isPrefix(prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => String(seg) === String(path[i]));
}

/** The last entry with this key: after a duplicate key the data holds the last value, so reports point there. */
function lastPair(items: readonly Pair[], key: string): Pair | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (keyText(items[i]) === key) return items[i];
  return undefined;
}

function keyText(pair: Pair): string | undefined {
  return isScalar(pair.key) ? String(pair.key.value) : undefined;
}

function hasRange(node: unknown): node is Node {
  return typeof node === 'object' && node !== null && Array.isArray((node as Node).range);
}

function spans(node: unknown, offset: number): boolean {
  return hasRange(node) && node.range![0] <= offset && offset < Math.max(node.range![1], node.range![0] + 1);
}

/** `key:` with nothing after it: the null scalar sits at the end of the line, show the key instead. */
function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.value === null && node.range![0] === node.range![1];
}

function readFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot read file: permission denied';
  if (code === 'EISDIR') return 'is a directory, expected a YAML file';
  return `cannot read file: ${err instanceof Error ? err.message : String(err)}`;
}
