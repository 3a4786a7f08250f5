// The partition / inheritance forest from pg_inherits rows: parents, children,
// roots, and which protected relations cover each relation. Pure, so the
// rules (multiple inheritance, protected partitions of unprotected parents)
// are testable without a server.

export interface InheritRow {
  child: number;
  parent: number;
}

export interface Forest {
  /** child → direct parents, in inhseqno order (rows must come sorted by child, inhseqno). */
  parents: Map<number, number[]>;
  /** parent → direct children. */
  children: Map<number, number[]>;
}

function push(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function buildForest(rows: readonly InheritRow[]): Forest {
  const parents = new Map<number, number[]>();
  const children = new Map<number, number[]>();
  for (const { child, parent } of rows) {
    push(parents, child, parent);
    push(children, parent, child);
  }
  return { parents, children };
}

/** The top-most ancestor along first parents (the relation itself when it has none). */
export function rootAlongFirstParent(forest: Forest, oid: number): number {
  const seen = new Set<number>();
  let cur = oid;
  for (;;) {
    seen.add(cur);
    const first = forest.parents.get(cur)?.[0];
    if (first === undefined || seen.has(first)) return cur; // the server forbids cycles; guard anyway
    cur = first;
  }
}

/** Breadth-first walk over `edges` from `oid`, excluding `oid` itself: nearest first. */
export function walk(edges: Map<number, number[]>, oid: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>([oid]);
  const queue = [oid];
  while (queue.length > 0) {
    for (const next of edges.get(queue.shift()!) ?? []) {
      if (seen.has(next)) continue;
      seen.add(next);
      out.push(next);
      queue.push(next);
    }
  }
  return out;
}

/**
 * For every relation under a protected one (the protected relation included): the protected relations
 * covering it, itself first, then protected ancestors nearest first.
 */
export function coverage(forest: Forest, protectedOids: ReadonlySet<number>): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const visit = (oid: number): void => {
    if (out.has(oid)) return;
    const covering = [oid, ...walk(forest.parents, oid)].filter((o) => protectedOids.has(o));
    if (covering.length > 0) out.set(oid, covering);
  };
  for (const p of protectedOids) {
    visit(p);
    for (const d of walk(forest.children, p)) visit(d);
  }
  return out;
}
