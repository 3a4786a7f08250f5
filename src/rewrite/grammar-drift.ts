// Threat A11 in docs/threat-model.md (grammar drift): pgveil parses with PostgreSQL 18's grammar,
// but an older upstream runs the text with its own. Where the two read one
// text differently (PostgreSQL 14 lexes `0x10` as `0 AS x10` and `1_000` as
// `1 AS _000`; 16+ read both as numbers), pgveil would analyse one statement
// and the upstream run another. So on a rewrite-cache miss, when the upstream
// is older than 18, the text is parsed again with the upstream major's
// grammar (@pgsql/parser's WASM builds of libpg_query) and a version-
// independent digest of both trees is compared: statement types, relations,
// column references, function names, type names, constants and every alias.
// A difference is a refusal; a text the upstream's grammar rejects gets that
// grammar's syntax error, which the upstream would have answered anyway.
//
// The digest leaves out what legitimately differs between majors for one
// reading: node layouts (A_Const's value nodes in 14, String's `str`/`sval`),
// calls PostgreSQL builds from SQL syntax (EXTRACT, TRIM, CURRENT_USER: their
// internal function names moved between majors; the keywords did not), and
// the `true`/`false` spelling of 14 (a cast of 't'/'f' to bool), and the
// pg_catalog qualification the grammar adds to type names it knows as keywords.
import { createRequire } from 'node:module';
import { PgError, SqlState } from '../errors.js';
import { SKIP, visit, type VisitResult, type Visitor } from './tree.js';

/** The oldest upstream major pgveil supports, and the major of its own grammar. */
export const OLDEST_MAJOR = 14;
export const PGVEIL_MAJOR = 18;

interface Grammar {
  loadModule(): Promise<void>;
  parseSync(sql: string): { stmts?: unknown[] };
}

// The package's ESM entry points import a directory (./types), which Node's
// ESM resolver refuses; its CommonJS builds load fine.
const require = createRequire(import.meta.url);
const grammars = new Map<number, Grammar>();

/** Loads the grammar of `major` (14–17); a no-op for 18 and later, which pgveil's own parser covers. */
export async function loadGrammar(major: number): Promise<void> {
  if (major >= PGVEIL_MAJOR || grammars.has(major)) return;
  if (major < OLDEST_MAJOR) throw new Error(`no grammar for PostgreSQL ${major}`);
  const g = require(`@pgsql/parser/v${major}`) as Grammar;
  await g.loadModule();
  grammars.set(major, g);
}

/** The major of a `server_version_num` (e.g. 140011 → 14). */
export function majorOf(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

/**
 * Why `sql` (which PostgreSQL 18's grammar parsed into `stmts18`) must not be
 * sent to an upstream of `major`, or undefined when that upstream reads it as
 * pgveil did. Throws when the grammar of `major` was not loaded (loadGrammar).
 */
export function grammarDrift(sql: string, stmts18: unknown[], major: number): PgError | undefined {
  if (major >= PGVEIL_MAJOR) return undefined;
  const grammar = grammars.get(major);
  if (!grammar) throw new Error(`the PostgreSQL ${major} grammar is not loaded`);
  let old: unknown[];
  try {
    old = grammar.parseSync(sql).stmts ?? [];
  } catch (err) {
    // The upstream would reject the text with this error: answer it here.
    const details = (err as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
    const message = details?.message ?? (err instanceof Error ? err.message : 'syntax error');
    return new PgError(SqlState.SyntaxError, message, {
      position: details?.cursorPosition !== undefined && details.cursorPosition >= 0 ? details.cursorPosition + 1 : undefined,
    });
  }
  const a = digest(stmts18);
  const b = digest(old);
  if (a === b) return undefined;
  return new PgError(SqlState.SyntaxError, `this statement is read differently by PostgreSQL ${major} than by pgveil`, {
    detail: describe(a, b),
    hint: `Write it so that every PostgreSQL version reads it alike: decimal numbers without underscores (16, not 0x10; 1000, not 1_000), `
      + 'and AS before every column alias.',
  });
}

/** What the two readings disagree on, for the error's detail (first few items only). */
function describe(ours: string, theirs: string): string {
  const a = ours.split('\n');
  const b = theirs.split('\n');
  const onlyA = multisetMinus(a, b).slice(0, 3);
  const onlyB = multisetMinus(b, a).slice(0, 3);
  const show = (xs: string[]) => (xs.length ? xs.map((x) => x.replace(/\t/g, ' ')).join(', ') : 'nothing');
  return `pgveil reads ${show(onlyA)} where the upstream reads ${show(onlyB)}.`;
}

function multisetMinus(a: string[], b: string[]): string[] {
  const counts = new Map<string, number>();
  for (const x of b) counts.set(x, (counts.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const c = counts.get(x) ?? 0;
    if (c > 0) counts.set(x, c - 1);
    else out.push(x);
  }
  return out;
}

type Json = Record<string, unknown>;

/** The version-independent digest of a parse tree: its items sorted, one per line. */
export function digest(stmts: unknown[]): string {
  const items: string[] = [`statements\t${stmts.length}`];
  for (const s of stmts) {
    const stmt = (s as Json).stmt as Json | undefined;
    items.push(`statement\t${stmt ? Object.keys(stmt).join(',') : ''}`);
    walk(stmt, items);
  }
  return items.sort().join('\n');
}

/** The text of a String node in any major: `str` (≤14) or `sval` (15+). */
function str(node: unknown): string | undefined {
  const s = (node as Json | undefined)?.String as Json | undefined;
  if (!s) return undefined;
  return String(s.sval ?? s.str ?? '');
}

function names(list: unknown): string {
  if (!Array.isArray(list)) return '';
  return list.map((n) => str(n) ?? ((n as Json)?.A_Star ? '*' : '?')).join('.');
}

/** A constant in a version-independent spelling, or undefined when `c` is not one. */
function constant(c: Json): string {
  // 14: { val: { Integer: { ival } } | { Float: { str } } | { String: { str } } | { BitString: { str } } | { Null: {} } }
  const v = c.val as Json | undefined;
  if (v) {
    if (v.Integer) return `int ${Number((v.Integer as Json).ival ?? 0)}`;
    if (v.Float) return `float ${String((v.Float as Json).str ?? '')}`;
    if (v.String) return `string ${String((v.String as Json).str ?? '')}`;
    if (v.BitString) return `bits ${String((v.BitString as Json).str ?? '')}`;
    if (v.Null) return 'null';
    return `other ${JSON.stringify(v)}`;
  }
  // 15+: { ival: { ival } } | { fval: { fval } } | { sval: { sval } } | { bsval: { bsval } } | { boolval: { boolval } } | { isnull }
  if (c.isnull) return 'null';
  if (c.ival) return `int ${Number((c.ival as Json).ival ?? 0)}`;
  if (c.fval) return `float ${String((c.fval as Json).fval ?? '')}`;
  if (c.sval) return `string ${String((c.sval as Json).sval ?? '')}`;
  if (c.bsval) return `bits ${String((c.bsval as Json).bsval ?? '')}`;
  if (c.boolval) return `bool ${Boolean((c.boolval as Json).boolval)}`;
  return 'unknown';
}

/** 14 spells `true`/`false` as a cast of 't'/'f' to pg_catalog.bool with no location of its own. */
function boolean14(cast: Json): string | undefined {
  const type = cast.typeName as Json | undefined;
  if (!type || (type.location !== undefined && type.location !== -1) || names(type.names) !== 'pg_catalog.bool') return undefined;
  const arg = (cast.arg as Json | undefined)?.A_Const as Json | undefined;
  const v = (arg?.val as Json | undefined)?.String as Json | undefined;
  if (!v || v.str === undefined || (v.str !== 't' && v.str !== 'f')) return undefined;
  return `bool ${v.str === 't'}`;
}

/** Fields whose text is a name the digest keeps. */
const nameFields = ['aliasname', 'ctename', 'portalname', 'conditionname'] as const;

/**
 * Adds the digest items of a subtree. The tree may come from any major's
 * grammar, so bodies are read as plain JSON, by field name, not as
 * PostgreSQL 18's types.
 */
function walk(root: unknown, items: string[]): void {
  // Bare `typeName` structs (a TypeCast's, a ColumnDef's): digested like TypeName nodes when the walk reaches them.
  const typeNames = new Set<object>();
  const typeName = (v: Json): VisitResult => {
    // 16 made JSON a keyword: `json` became pg_catalog.json, as `int` always was pg_catalog.int4.
    items.push(`type\t${names(v.names).replace(/^pg_catalog\./, '')}`);
    walkExcept(v, 'names');
    return SKIP;
  };
  const walkExcept = (o: Json, skip: string) => {
    for (const k in o) if (k !== skip) visit(o[k], visitor);
  };
  const visitor: Visitor = {
    enter(type, body) {
      const v = body as Json;
      for (const field of nameFields) {
        const name = v[field];
        if (name !== undefined && (name === null || typeof name !== 'object')) items.push(`name\t${String(name)}`);
      }
      const t = v.typeName;
      if (Array.isArray(t)) items.push('type\t'); // a name list (CREATE TYPE … AS ENUM): its names are words
      else if (t && typeof t === 'object') typeNames.add(t);
      switch (type) {
        case undefined:
          return typeNames.has(v) ? typeName(v) : undefined;
        case 'A_Const':
          items.push(`const\t${constant(v)}`);
          return SKIP;
        case 'TypeCast': {
          const b = boolean14(v);
          if (b) { items.push(`const\t${b}`); return SKIP; }
          return undefined;
        }
        case 'RangeVar':
          // Its only object field is its alias, walked for the alias's names.
          items.push(`relation\t${[v.catalogname, v.schemaname, v.relname].filter((x) => x !== undefined).join('.')}\t${v.inh ? 'inh' : 'only'}`);
          return undefined;
        case 'FuncCall':
          // Calls the grammar builds from SQL syntax (EXTRACT, TRIM, …) changed their function names between majors.
          if (v.funcformat !== 'COERCE_SQL_SYNTAX') items.push(`function\t${names(v.funcname)}`);
          walkExcept(v, 'funcname');
          return SKIP;
        case 'ColumnRef':
          items.push(`column\t${names(v.fields)}`);
          return SKIP;
        case 'TypeName':
          return typeName(v);
        case 'ResTarget':
          if (v.name !== undefined) items.push(`name\t${String(v.name)}`);
          return undefined;
        case 'String':
          // Any other identifier list (alias column names, qualified names in DDL, …).
          items.push(`word\t${String(v.sval ?? v.str ?? '')}`);
          return SKIP;
      }
      return undefined;
    },
  };
  visit(root, visitor);
}
