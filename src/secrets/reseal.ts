// Re-seals every "sealed:…" value of a YAML file under a new master key,
// leaving every other byte of the file as it was (comments, layout, order).
// Pure: text in, text out; the rekey command does the file handling.
import { isScalar, parseDocument, visit } from 'yaml';
import { isSealed, openSealed, seal } from './seal.js';

export interface Resealed {
  text: string;
  /** Key paths of the values re-sealed, e.g. "upstream.password". */
  paths: string[];
}

/** Throws naming the key path when a value does not open with `oldKey` (nothing is changed then). */
export function resealText(text: string, oldKey: Uint8Array, newKey: Uint8Array): Resealed {
  const doc = parseDocument(text, { keepSourceTokens: true });
  if (doc.errors.length) throw new Error(`not valid YAML: ${doc.errors[0].message}`);
  const edits: Array<{ start: number; end: number; value: string; path: string }> = [];
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !isSealed(node.value) || !node.range) return;
      // A mapping key is never a secret; only values are re-sealed.
      const parent = path[path.length - 1];
      if (parent && 'key' in parent && (parent as { key: unknown }).key === node) return;
      const where = keyPath(path);
      let plain: string;
      try {
        plain = openSealed(node.value, oldKey);
      } catch (err) {
        throw new Error(`${where}: ${err instanceof Error ? err.message : String(err)}`);
      }
      // Sealed values are base64 after the prefix, so a double-quoted scalar needs no escaping.
      edits.push({ start: node.range[0], end: node.range[1], value: `"${seal(plain, newKey)}"`, path: where });
    },
  });
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.value + out.slice(e.end);
  return { text: out, paths: edits.map((e) => e.path) };
}

/** "upstream.password" from the visitor's ancestor list. */
function keyPath(path: readonly unknown[]): string {
  const parts: string[] = [];
  for (const step of path) {
    if (step && typeof step === 'object' && 'key' in step) {
      const key = (step as { key: unknown }).key;
      parts.push(isScalar(key) ? String(key.value) : String(key));
    }
  }
  return parts.join('.') || '(top level)';
}
