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
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) throw new Error('overlapping rewrite edits');
  }
  const parts: string[] = [];
  const generated: number[] = [];
  const editStarts = new Float64Array(sorted.length);
  // shifts[k]: how far the edits before edit k move the text after them.
  const shifts = new Float64Array(sorted.length + 1);
  const moved: Array<{ from: number; length: number; at: number }> = [];
  let pos = 0;
  let out = 0;
  sorted.forEach((e, k) => {
    parts.push(text.slice(pos, e.start), e.text);
    out += e.start - pos;
    editStarts[k] = e.start;
    for (const m of e.moved ?? []) moved.push({ from: m.from, length: m.length, at: out + m.to });
    if (e.generated) generated.push(out, out + e.text.length);
    out += e.text.length;
    shifts[k + 1] = shifts[k] + e.text.length - (e.end - e.start);
    pos = e.end;
  });
  parts.push(text.slice(pos));
  moved.sort((a, b) => a.from - b.from);
  const movedFrom = Float64Array.from(moved, (m) => m.from);
  return {
    sql: parts.join(''),
    generated,
    // Binary searches, not scans: the cache maps every constant through this (threat E2).
    map(index: number): number {
      // Text an edit moved into its replacement (a pushed-down predicate) first.
      const m = lastAtOrBefore(movedFrom, index);
      if (m >= 0 && index < moved[m].from + moved[m].length) return moved[m].at + (index - moved[m].from);
      return index + shifts[lastAtOrBefore(editStarts, index - 1) + 1];
    },
  };
}

/** Index of the last element of ascending `values` that is ≤ `x`; -1 if none. */
export function lastAtOrBefore(values: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo - 1;
}
