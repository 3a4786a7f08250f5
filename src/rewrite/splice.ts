// Applies the analyzer's edits to the user's text. Everything outside the
// edits — comments, formatting, constants — is copied as it was, so DBAs
// recognise the statement, and the constants keep their order (the cache's
// templates rely on that).
import type { Edit } from './analyze.js';

export interface Spliced {
  sql: string;
  /** [start, end) string indices of the generated subqueries in `sql`. */
  generated: number[];
  /** Maps a string index of the original text (outside every edit) to its index in `sql`. */
  map(index: number): number;
}

export function splice(text: string, edits: Edit[]): Spliced {
  const starts: number[] = [];
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) throw new Error('overlapping rewrite edits');
  }
  const parts: string[] = [];
  const generated: number[] = [];
  let pos = 0;
  let out = 0;
  for (const e of sorted) {
    parts.push(text.slice(pos, e.start), e.text);
    out += e.start - pos;
    starts.push(out);
    if (e.generated) generated.push(out, out + e.text.length);
    out += e.text.length;
    pos = e.end;
  }
  parts.push(text.slice(pos));
  return {
    sql: parts.join(''),
    generated,
    map(index: number): number {
      // Text an edit moved into its replacement (a pushed-down predicate) first.
      for (let k = 0; k < sorted.length; k++) {
        for (const m of sorted[k].moved ?? []) {
          if (index >= m.from && index < m.from + m.length) return starts[k] + m.to + (index - m.from);
        }
      }
      let shift = 0;
      for (const e of sorted) {
        if (e.start >= index) break;
        shift += e.text.length - (e.end - e.start);
      }
      return index + shift;
    },
  };
}
