// Editing one user's entry of users.yaml for the commands that write it
// (passwd --write, totp enroll): the rest of the file keeps its text,
// comments and order.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { isMap, isNode, parseDocument, Scalar } from 'yaml';
import type { Document, Node, YAMLMap } from 'yaml';
import { replaceFile } from '../config/replace-file.js';

export function quoted(value: string): Scalar<string> {
  const s = new Scalar(value);
  s.type = Scalar.QUOTE_DOUBLE;
  return s;
}

/**
 * The edited file with the original text everywhere but the user's entry:
 * re-rendering the whole document would respace every comment and flow
 * collection in it. The entry itself is rendered by the yaml library (flow
 * stays flow, comments stay), with the file's indent step. When the spliced
 * text does not read back as the same data (an unusual indentation), the
 * fully re-rendered document is used instead.
 */
export function keepLayout(original: string, doc: Document, path: string[], span: { start: number; end: number } | undefined): string {
  const entryText = span ? original.slice(span.start, span.end) : '';
  // lineWidth 0: never fold the long verifier strings across lines.
  const full = doc.toString({ lineWidth: 0, indent: indentStep(original, doc, path), flowCollectionPadding: !/^[{[]\S/.test(entryText) });
  const rendered = parseDocument(full).getIn(path, true) as Node | undefined;
  if (!span || !rendered?.range) return full;
  const spliced = original.slice(0, span.start) + full.slice(rendered.range[0], rendered.range[1]) + original.slice(span.end);
  const reread = parseDocument(spliced);
  return reread.errors.length === 0 && isDeepStrictEqual(reread.toJS(), parseDocument(full).toJS()) ? spliced : full;
}

/** The column of the first user's key under a top-level `users:`: the file's indent step (2 when it cannot tell). */
function indentStep(original: string, doc: Document, path: string[]): number {
  const users = doc.get(path[0], true);
  const key = isMap(users) && !users.flow ? users.items[0]?.key : undefined;
  const start = isNode(key) ? key.range?.[0] : undefined;
  if (start === undefined) return 2;
  const column = start - (original.lastIndexOf('\n', start - 1) + 1);
  return column >= 1 ? column : 2;
}


/**
 * Changes one user's mapping with `edit` and replaces the file atomically
 * (temporary file + rename), after checking with `readBack` that the new
 * text parses and holds the change. Throws without touching the file otherwise.
 */
export function editUserEntry(file: string, userName: string, edit: (entry: YAMLMap) => void, readBack: (doc: Document) => boolean): void {
  const original = readFileSync(file, 'utf8');
  const doc = parseDocument(original);
  if (doc.errors.length > 0) throw new Error(`${file} does not parse as YAML`);
  const entry = doc.getIn(['users', userName], true);
  if (!isMap(entry)) throw new Error(`${file} has no mapping for user "${userName}"`);
  const span = entry.range ? { start: entry.range[0], end: entry.range[1] } : undefined;
  edit(entry);
  const text = keepLayout(original, doc, ['users', userName], span);
  const check = parseDocument(text);
  if (check.errors.length > 0 || !readBack(check)) {
    throw new Error(`internal error: the updated ${file} did not read back correctly; the file was not changed`);
  }
  replaceFile(file, text);
}
