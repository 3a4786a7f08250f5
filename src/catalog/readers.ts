// Which relations and functions read protected data (threat A5 in docs/threat-model.md), as a
// fixpoint over what the catalog records plus a text heuristic:
//
//  - pg_depend edges: rules of views, materialized views and of any table
//    with a rule (ON SELECT / DO ALSO), SQL functions with BEGIN ATOMIC
//    bodies, sequences owned by or defaulted from a column;
//  - inheritance: a parent reads the rows of every partition / child, so an
//    ancestor of a protected relation (or of one of its descendants, also
//    under multiple inheritance) reads it;
//  - function bodies (prosrc) of every language except internal and C: a
//    function is a reader when its text contains, as a whole word
//    (case-insensitive), the name of a protected relation, of a relation
//    under or over one, or of any reader (view, sequence, function). The
//    match ignores schemas, comments and quoting, so it errs towards
//    protecting: a same-named table elsewhere, or the word in a comment, is
//    enough. It cannot see names assembled at run time
//    (`'emp' || 'loyees'` in dynamic SQL); threat B10's rule that functions
//    outside pg_catalog are refused unless the policy allows them is the
//    backstop for that;
//  - toast tables of protected data (only reachable by a superuser role).
//
// Functions in pg_catalog and information_schema are never readers.

import type { Forest } from './inheritance.js';
import { walk } from './inheritance.js';

export interface NodeRef {
  fn: boolean;
  oid: number;
}

export interface DependencyEdge {
  reader: NodeRef;
  target: NodeRef;
}

export interface ReaderFunction {
  oid: number;
  /** functionKey(schema, proname). */
  key: string;
  name: string;
  /** In pg_catalog or information_schema. */
  system: boolean;
  /** prosrc, null for internal/C functions (the text is a symbol name, not code). */
  src: string | null;
}

export interface ReaderRelation {
  name: string;
  /** pg_class.reltoastrelid, 0 when none. */
  toastOid: number;
}

export interface ReaderInputs {
  relations: ReadonlyMap<number, ReaderRelation>;
  functions: readonly ReaderFunction[];
  edges: readonly DependencyEdge[];
  forest: Forest;
  /** coverage(): relation → protected relations whose policy covers it. */
  coverage: ReadonlyMap<number, readonly number[]>;
}

export interface Readers {
  /** Reader relation oid → protected oids read. */
  relations: Map<number, Set<number>>;
  /** Reader function oid → protected oids read. */
  functions: Map<number, Set<number>>;
}

const nonWord = /[^\p{L}\p{M}\p{N}_$]+/u;
const singleWord = /^[\p{L}\p{M}\p{N}_$]+$/u;

function addAll(target: Map<number, Set<number>>, key: number, values: Iterable<number>, except?: number): boolean {
  let set = target.get(key);
  let changed = false;
  for (const v of values) {
    if (v === except) continue;
    if (!set) {
      set = new Set();
      target.set(key, set);
    }
    if (!set.has(v)) {
      set.add(v);
      changed = true;
    }
  }
  return changed;
}

interface ScannedFunction {
  fn: ReaderFunction;
  text: string;
  words: Set<string>;
}

export function findReaders(input: ReaderInputs): Readers {
  const relations = new Map<number, Set<number>>();
  const functions = new Map<number, Set<number>>();

  // A parent reads its children's rows: what covers a child but not the parent itself is read through it.
  for (const [covered, by] of input.coverage) {
    for (const ancestor of walk(input.forest.parents, covered)) {
      const own = new Set(input.coverage.get(ancestor) ?? []);
      addAll(relations, ancestor, by.filter((p) => !own.has(p)), ancestor);
    }
  }

  const relEffect = (oid: number): Iterable<number> => {
    const by = input.coverage.get(oid);
    const read = relations.get(oid);
    if (by && read) return [...by, ...read];
    return by ?? read ?? [];
  };
  const effect = (ref: NodeRef): Iterable<number> => (ref.fn ? functions.get(ref.oid) ?? [] : relEffect(ref.oid));

  const functionByOid = new Map(input.functions.map((f) => [f.oid, f]));
  const edges = input.edges.filter((e) => !(e.reader.fn && functionByOid.get(e.reader.oid)?.system !== false));
  const scanned: ScannedFunction[] = [];
  for (const fn of input.functions) {
    if (fn.system || fn.src === null || fn.src === '') continue;
    const text = fn.src.toLowerCase();
    scanned.push({ fn, text, words: new Set(text.split(nonWord)) });
  }

  for (let changed = true; changed;) {
    changed = false;
    for (const { reader, target } of edges) {
      const read = effect(target);
      if (reader.fn) changed = addAll(functions, reader.oid, read) || changed;
      else changed = addAll(relations, reader.oid, read, reader.oid) || changed;
    }
    if (scanned.length === 0) continue;
    const names = nameIndex(input, relations, functions, functionByOid);
    for (const s of scanned) {
      for (const [name, read] of names.words) if (s.words.has(name)) changed = addAll(functions, s.fn.oid, read) || changed;
      for (const [name, read] of names.phrases) if (s.text.includes(name)) changed = addAll(functions, s.fn.oid, read) || changed;
    }
  }

  for (const [oid, rel] of input.relations) {
    if (rel.toastOid === 0) continue;
    const read = [...relEffect(oid)];
    if (read.length > 0) addAll(relations, rel.toastOid, read);
  }
  return { relations, functions };
}

interface NameIndex {
  /** Lower-cased single-word names → protected oids read through a thing of that name. */
  words: Map<string, Set<number>>;
  /** Names that are not one word ("My Table"): matched as substrings. */
  phrases: Map<string, Set<number>>;
}

function nameIndex(
  input: ReaderInputs,
  relations: ReadonlyMap<number, Set<number>>,
  functions: ReadonlyMap<number, Set<number>>,
  functionByOid: ReadonlyMap<number, ReaderFunction>,
): NameIndex {
  const index: NameIndex = { words: new Map(), phrases: new Map() };
  const add = (name: string | undefined, read: Iterable<number>): void => {
    if (!name) return;
    const lower = name.toLowerCase();
    const map = singleWord.test(lower) ? index.words : index.phrases;
    let set = map.get(lower);
    if (!set) map.set(lower, (set = new Set()));
    for (const v of read) set.add(v);
  };
  for (const [oid, by] of input.coverage) add(input.relations.get(oid)?.name, by);
  for (const [oid, read] of relations) add(input.relations.get(oid)?.name, read);
  for (const [oid, read] of functions) add(functionByOid.get(oid)?.name, read);
  return index;
}
