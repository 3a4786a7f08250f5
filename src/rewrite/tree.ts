// Small typed accessors over libpg-query's JSON tree. A node is an object
// with one key naming its type ({"RangeVar": {...}}); lists are arrays of
// nodes. Protobuf defaults (false, 0, empty) are omitted from the JSON.

export type Body = Record<string, unknown>;

/** The single type key and body of a node, or undefined when `value` is not a node. */
export function nodeOf(value: unknown): [string, Body] | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const body = (value as Body)[keys[0]];
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return [keys[0], body as Body];
}

export function str(body: Body, key: string): string | undefined {
  const v = body[key];
  return typeof v === 'string' ? v : undefined;
}

export function num(body: Body, key: string): number | undefined {
  const v = body[key];
  return typeof v === 'number' ? v : undefined;
}

export function list(body: Body, key: string): unknown[] {
  const v = body[key];
  return Array.isArray(v) ? v : [];
}

export function child(body: Body, key: string): Body | undefined {
  const v = body[key];
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Body) : undefined;
}

/** The sval of a String node ({"String": {"sval": "x"}}). */
export function stringValue(node: unknown): string | undefined {
  const n = nodeOf(node);
  return n && n[0] === 'String' ? str(n[1], 'sval') : undefined;
}

/** Names of a qualified name list (funcname, typeName.names …). */
export function nameList(body: Body, key: string): string[] {
  return list(body, key).map((n) => stringValue(n) ?? '');
}

export interface RangeVarBody {
  catalogname?: string;
  schemaname?: string;
  relname: string;
  inh: boolean;
  alias?: string;
  location: number;
}

export function rangeVar(body: Body): RangeVarBody {
  return {
    catalogname: str(body, 'catalogname'),
    schemaname: str(body, 'schemaname'),
    relname: str(body, 'relname') ?? '',
    inh: body.inh === true,
    alias: str(child(body, 'alias') ?? {}, 'aliasname'),
    location: num(body, 'location') ?? -1,
  };
}
