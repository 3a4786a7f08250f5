// libpg-query's JSON tree, typed by @pgsql/types, and the one walk over it.
// A node is an object with one key naming its type ({"RangeVar": {...}});
// a field the grammar types as a struct holds a bare body instead (an
// InsertStmt's `relation`, a TypeCast's `typeName`, an `alias`); lists are
// arrays of nodes. Protobuf defaults (false, 0, empty) are omitted.
import type { Node, RangeVar } from '@pgsql/types';

export type { Node };

type KeysOf<T> = T extends unknown ? keyof T : never;
/** Every node type name ('RangeVar', 'FuncCall', …). */
export type NodeType = KeysOf<Node>;
/** The body of a node of type `T`. */
export type NodeBody<T extends NodeType> = Extract<Node, Record<T, unknown>>[T];
/** A node as [type, body]: testing the type narrows the body. */
export type TypedNode = { [T in NodeType]: [type: T, body: NodeBody<T>] }[NodeType];
/** A bare struct (a field's body without the type key) as the walk sees it. */
export type Struct = Readonly<Record<string, unknown>>;

/** A body read by key, inside the walk. */
type Body = Record<string, unknown>;

/**
 * The node's type key, or undefined when `value` is not a node. Node types
 * start with a capital letter; a struct whose only field holds an object
 * (a RawStmt with just `stmt`) is not taken for a node of that field's name.
 */
function typeKey(value: object): string | undefined {
  let key: string | undefined;
  for (const k in value) {
    if (key !== undefined) return undefined;
    key = k;
  }
  if (key === undefined) return undefined;
  const c = key.charCodeAt(0);
  if (c < 65 || c > 90) return undefined;
  const body = (value as Body)[key];
  return body && typeof body === 'object' && !Array.isArray(body) ? key : undefined;
}

/** `value` as a typed [type, body] node, or undefined when it is not a node. */
export function asNode(value: unknown): TypedNode | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const key = typeKey(value);
  return key === undefined ? undefined : ([key, (value as Body)[key]] as TypedNode);
}

// ── the walk ───────────────────────────────────────────────────────────────

/** Returned by a handler: do not walk this node's children. */
export const SKIP = 1;
/** Returned by a handler: end the whole walk. */
export const STOP = 2;
export type VisitResult = typeof SKIP | typeof STOP | undefined | void;

/**
 * What a walk does per object. A handler named after a node type gets that
 * type's body; `enter` sees every object first: nodes with their type, bare
 * structs with `undefined`. `depth` counts the objects around it (a node's
 * wrapper and body are one level; arrays add none).
 */
export type Visitor = { [T in NodeType]?: (body: NodeBody<T>, depth: number) => VisitResult } & {
  enter?: (type: NodeType | undefined, body: Struct, depth: number) => VisitResult;
};
type Handler = (body: object, depth: number) => VisitResult;

/**
 * Walks `root` (a node, struct, or array of them) depth-first, parents
 * before children, in field order (as a recursive walk would: which refusal
 * the analyzer reports first depends on it), without recursion: a tree of any depth is safe to
 * walk, so the statement budget measures depth with it before anything else
 * trusts the tree. Returns the deepest nesting reached (the root's level is
 * `depth`), counting only the parts walked.
 */
export function visit(root: unknown, visitor: Visitor, depth = 0): number {
  const handlers = visitor as Record<string, Handler | undefined>;
  const enter = visitor.enter;
  const values: object[] = [];
  const depths: number[] = [];
  if (root && typeof root === 'object') { values.push(root); depths.push(depth); }
  let deepest = depth;
  while (values.length) {
    const value = values.pop() as object;
    const d = depths.pop() as number;
    if (d > deepest) deepest = d;
    const base = values.length;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (v && typeof v === 'object') { values.push(v); depths.push(d); }
      }
    } else {
      const key = typeKey(value);
      const body = key === undefined ? value : ((value as Body)[key] as object);
      let result = enter ? enter(key as NodeType | undefined, body as Struct, d) : undefined;
      if (result === undefined && key !== undefined) {
        const handler = handlers[key];
        if (handler) result = handler(body, d);
      }
      if (result === STOP) return deepest;
      if (result === SKIP) continue;
      for (const k in body) {
        const v = (body as Body)[k];
        if (v && typeof v === 'object') { values.push(v); depths.push(d + 1); }
      }
    }
    // The children were pushed in order; reversed, they pop in order.
    for (let i = base, j = values.length - 1; i < j; i++, j--) {
      const v = values[i]; values[i] = values[j]; values[j] = v;
      const e = depths[i]; depths[i] = depths[j]; depths[j] = e;
    }
  }
  return deepest;
}

/** Whether a node of one of `types` occurs anywhere in `value`. */
export function containsNode(value: unknown, ...types: NodeType[]): boolean {
  let found = false;
  visit(value, {
    enter(type) {
      if (type === undefined || !types.includes(type)) return undefined;
      found = true;
      return STOP;
    },
  });
  return found;
}

/** The smallest `location` in a subtree (nodes and structs alike): where its first token starts. */
export function minLocation(value: unknown): number | undefined {
  let min: number | undefined;
  visit(value, {
    enter(_type, body) {
      const at = body.location;
      if (typeof at === 'number' && at >= 0 && (min === undefined || at < min)) min = at;
    },
  });
  return min;
}

// ── accessors ──────────────────────────────────────────────────────────────

/** The sval of a String node ({"String": {"sval": "x"}}). */
export function stringValue(node: unknown): string | undefined {
  const n = asNode(node);
  return n && n[0] === 'String' ? n[1].sval : undefined;
}

/** The items of a List node (an IN list, BETWEEN's bounds, a VALUES row); a bare array in older parsers; undefined for anything else. */
export function listItems(raw: unknown): readonly unknown[] | undefined {
  if (Array.isArray(raw)) return raw;
  const n = asNode(raw);
  return n?.[0] === 'List' ? n[1].items ?? [] : undefined;
}

/** The svals of a qualified name list (funcname, typeName.names …); '' for an item that is not a String. */
export function names(items: readonly unknown[] | undefined): string[] {
  return items ? items.map((n) => stringValue(n) ?? '') : [];
}

export interface RangeVarBody {
  catalogname?: string;
  schemaname?: string;
  relname: string;
  inh: boolean;
  alias?: string;
  location: number;
}

export function rangeVar(body: RangeVar): RangeVarBody {
  return {
    catalogname: body.catalogname,
    schemaname: body.schemaname,
    relname: body.relname ?? '',
    inh: body.inh === true,
    alias: body.alias?.aliasname,
    location: body.location ?? -1,
  };
}
