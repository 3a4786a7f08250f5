// Table and column keys in the policy, normalised the way PostgreSQL reads
// identifiers: unquoted parts are folded to lower case (ASCII only, as
// Postgres does), quoted parts keep their case. The canonical form quotes a
// part only when it is not a plain lower-case identifier, so
// `Public.Employees`, `public.employees` and `"public"."employees"` all become
// `public.employees`, while `"Sales"."Orders"` stays `"Sales"."Orders"`.
// Keywords are not quoted (`public.user` stays as written): compare catalog
// names through canonicalRelation() and both sides agree.

const unquotedPart = /^[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_$\u0080-\uFFFF]*/;
const quotedPart = /^"((?:[^"]|"")+)"/;
const plain = /^[a-z_][a-z0-9_]*$/;

/** Splits `a.b` / `"A"."B"` into its parts (quotes removed, unquoted parts lower-cased); undefined if malformed. */
export function parseQualifiedName(text: string): string[] | undefined {
  const parts: string[] = [];
  let rest = text;
  for (;;) {
    const q = quotedPart.exec(rest);
    const u = q ? null : unquotedPart.exec(rest);
    if (q) parts.push(q[1].replace(/""/g, '"'));
    else if (u) parts.push(u[0].replace(/[A-Z]/g, (c) => c.toLowerCase()));
    else return undefined;
    rest = rest.slice((q ?? u)![0].length);
    if (rest === '') return parts;
    if (rest[0] !== '.') return undefined;
    rest = rest.slice(1);
  }
}

/** A name as it appears in a canonical key: bare when it is a plain lower-case identifier, else double-quoted. */
export function quoteIdentifier(name: string): string {
  return plain.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** The policy key of a relation given its catalog names (e.g. from pg_namespace/pg_class). */
export function canonicalRelation(schema: string, table: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}

/** Canonical `schema.table` key, or undefined when `key` is not exactly two parts. */
export function canonicalTableKey(key: string): string | undefined {
  const parts = parseQualifiedName(key);
  return parts?.length === 2 ? canonicalRelation(parts[0], parts[1]) : undefined;
}

/** Canonical column key, or undefined when `key` is not a single identifier. */
export function canonicalColumnKey(key: string): string | undefined {
  const parts = parseQualifiedName(key);
  return parts?.length === 1 ? quoteIdentifier(parts[0]) : undefined;
}
