// Configuration problems, collected (never just the first) and reported the
// way compilers do, so editors and terminals can jump to them:
//   config/users.yaml:7:5: users."alice@acme.com".org: unknown organization "acm"
import { isAbsolute, relative } from 'node:path';

export interface ConfigIssue {
  /** Absolute path of the file the problem is in. */
  file: string;
  /** 1-based; 1:1 when the problem is the file as a whole (missing, unreadable). */
  line: number;
  column: number;
  /** Key path inside the file (`upstream.tls.mode`, `users."a@b.c".groups[1]`); '' for the file itself. */
  path: string;
  message: string;
}

export type PathSegment = string | number;

const bareKey = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['users', 'alice@acme.com', 'groups', 1]` → `users."alice@acme.com".groups[1]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = bareKey.test(seg) ? seg : JSON.stringify(seg);
      out += out ? `.${key}` : key;
    }
  }
  return out;
}

/** Paths under the working directory are shown relative to it (shorter, still clickable). */
export function displayFile(file: string, cwd = process.cwd()): string {
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

export function formatIssue(issue: ConfigIssue): string {
  const where = `${displayFile(issue.file)}:${issue.line}:${issue.column}`;
  return issue.path ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Files in the order they were first reported (config before the files it names), then by position. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const order = new Map<string, number>();
  for (const i of issues) if (!order.has(i.file)) order.set(i.file, order.size);
  return [...issues].sort((a, b) =>
    order.get(a.file)! - order.get(b.file)! || a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const sorted = sortIssues(issues);
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = sorted;
  }
}
