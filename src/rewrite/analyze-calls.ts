// Calls: functions (by name, by functional notation, behind casts) and
// operators may run user code or show what the policy hides. System
// functions that do are refused by name, user ones unless the policy allows
// them, and relation-size functions answer NULL for protected relations.
import { effectiveSearchPath, functionCandidates, functionKey } from '../catalog/resolve.js';
import { PgError } from '../errors.js';
import { refusedFunctions, sizeFunctions } from './functions.js';
import { viewFunctionRules } from './view-functions.js';
import { matchingParen } from './sql-text.js';
import { firstArgumentEnd } from './clause-text.js';
import type { A_Expr, FuncCall, Node, SubLink, TypeCast } from '@pgsql/types';
import { containsNode, names as qualifiedName, stringValue } from './tree.js';
import { refuse, Refusal, systemSchemas, type AnalyzerState } from './analyze-context.js';
import { setConfig } from './analyze-utility.js';

export function func(a: AnalyzerState, body: FuncCall): void {
  const names = qualifiedName(body.funcname);
  const fn = names[names.length - 1];
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  if (schema === 'pgveil') refuse(`function ${names.join('.')} is pgveil's own and cannot be called directly`, "pgveil calls its helper functions only inside its own rewrites (threat B8 of pgveil's threat model).");
  const rules = viewFunctionRules(a.ctx.catalog);
  const behind = rules.refused.get(fn);
  const reason = refusedFunctions.get(fn)
    ?? (behind ? `it returns the rows of pg_catalog.${behind.view}, which is refused: ${behind.reason}` : undefined)
    ?? ((fn.startsWith('pg_stat_get_') && !rules.allowedStats.has(fn)) || fn.startsWith('pg_stat_reset') ? 'it shows or resets per-table, per-row or per-session statistics' : undefined);
  if (reason) refuse(`function ${fn} is not allowed through pgveil: ${reason}`);
  if (fn === 'set_config') setConfig(a, body);
  checkUserFunction(a, schema, fn, true);
  if (sizeFunctions.has(fn) && (!schema || schema === 'pg_catalog')) guardSize(a, body);
}

/** `x.f` and `(x).f` may call a function f(x) when x has no column f (functional notation). */
export function functionalNotation(a: AnalyzerState, fields: readonly Node[]): void {
  for (const f of fields) {
    const name = stringValue(f);
    if (name !== undefined) checkUserFunction(a, undefined, name);
  }
}

/**
 * `pg_table_size(x)` and friends answer NULL for protected relations, their
 * indexes and TOAST (B5), so psql `\dt+` keeps working.
 */
function guardSize(a: AnalyzerState, body: FuncCall): void {
  const oids = a.ctx.catalog.protectedOids;
  if (!oids.length) return;
  if (containsNode(body.args, 'SubLink')) refuse('relation-size functions with a subquery argument are not allowed through pgveil');
  const sql = a.text.text;
  const start = a.text.index(body.location ?? -1);
  const open = sql.indexOf('(', start);
  const end = open === -1 ? -1 : matchingParen(sql, open);
  if (end === -1) refuse('cannot rewrite this relation-size call');
  const firstEnd = firstArgumentEnd(a.text, open, end, body.args ?? []);
  if (firstEnd === -1) refuse('cannot rewrite this relation-size call');
  const first = sql.slice(open + 1, firstEnd);
  a.constantDependent = true; // the argument text is repeated
  a.result.edits.push({
    start, end, generated: false,
    text: `(CASE WHEN ((${first})::pg_catalog.regclass::pg_catalog.oid) OPERATOR(pg_catalog.=) ANY ('{${oids.join(',')}}'::pg_catalog.oid[]) THEN NULL ELSE ${sql.slice(start, end)} END)`,
  });
}

/**
 * Functions outside pg_catalog/information_schema may run dynamic SQL or
 * read a protected table behind pgveil's back (threats A5, B10): refused
 * unless policy.functions.allow lists them. Any overload on the path could
 * be the one Postgres picks, so every candidate must be allowed.
 */
function checkUserFunction(a: AnalyzerState, schema: string | undefined, fn: string, mustExist = false): void {
  const { catalog, allowedFunctions } = a.ctx;
  const candidates = functionCandidates(catalog, schema, fn, a.searchPath);
  if (mustExist && candidates.length === 0) {
    // Unknown to the catalog (created since it was read?): Postgres would say it does not exist, or run unchecked code.
    throw new Refusal(new PgError('42883', `function ${schema ? `${schema}.` : ''}${fn} does not exist`, {
      hint: 'pgveil checks functions against the catalog it read at the last policy load; a new function needs a reload.',
    }));
  }
  for (const candidate of candidates) {
    if (systemSchemas.has(candidate)) continue;
    const exact = allowedFunctions.has(`${candidate}.${fn}`);
    if (!exact && catalog.readers.get(functionKey(candidate, fn))?.length) {
      refuse(`function ${candidate}.${fn} reads a protected table and is not allowed through pgveil`, 'Ask the DBA to cover it in the policy.');
    }
    if (!exact && !allowedFunctions.has(`${candidate}.*`)) {
      refuse(`function ${candidate}.${fn} is not allowed through pgveil`, 'Functions outside pg_catalog must be listed under functions.allow in the policy.');
    }
  }
}

/** A cast may run a user function: a cast WITH FUNCTION, or a domain's CHECK constraint (A5). */
export function cast(a: AnalyzerState, body: TypeCast): void {
  const { catalog, allowedFunctions } = a.ctx;
  const names = qualifiedName(body.typeName?.names);
  const type = names[names.length - 1];
  for (const fn of catalog.typeFunctions.get(type) ?? []) {
    const schema = fn.slice(0, fn.indexOf('.'));
    if (allowedFunctions.has(fn) || allowedFunctions.has(`${schema}.*`)) continue;
    refuse(`a cast to ${type} runs function ${fn}, which is not allowed through pgveil`, 'Functions outside pg_catalog must be listed under functions.allow in the policy.');
  }
}

/** User-defined operators are functions too. */
export function operator(a: AnalyzerState, operatorName: readonly Node[] | undefined): void {
  const { catalog, allowedFunctions } = a.ctx;
  const names = qualifiedName(operatorName);
  const op = names[names.length - 1];
  const schemas = catalog.userOperators.get(op);
  if (!op || !schemas) return;
  const schema = names.length > 1 ? names[names.length - 2] : undefined;
  const path = schema ? [schema] : effectiveSearchPath(catalog, a.searchPath);
  for (const s of path) {
    if (!schemas.has(s) || allowedFunctions.has(`${s}.${op}`) || allowedFunctions.has(`${s}.*`)) continue;
    refuse(`operator ${s}.${op} is not allowed through pgveil`, 'Operators outside pg_catalog must be listed under functions.allow in the policy.');
  }
}
