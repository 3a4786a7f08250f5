// Utility statements: settings (SET, RESET, set_config), session objects
// (PREPARE, EXECUTE, DECLARE, FETCH, DEALLOCATE, CLOSE, DISCARD) and
// transaction control, whose effects the session tracks; LISTEN/NOTIFY;
// EXPLAIN; and COPY (TO a client: a guarded read; FROM a client: a write).
import { canonicalRelation } from '../config/identifiers.js';
import { descendantsOf, parseSearchPath } from '../catalog/resolve.js';
import { hasOwnRulesBelow } from './protection.js';
import { isUtf8, settableParameters } from './functions.js';
import { constantEnd, skipSpace } from './sql-text.js';
import { composeGuarded, quoteIdent } from './replacement.js';
import type {
  ClosePortalStmt, CopyStmt, DeallocateStmt, DeclareCursorStmt, DiscardStmt, ExecuteStmt, ExplainStmt,
  FetchStmt, FuncCall, ListenStmt, Node, PrepareStmt, TransactionStmt, VariableSetStmt,
} from '@pgsql/types';
import { asNode, names, rangeVar } from './tree.js';
import { emptyScope, refuse, STAND_IN, type AnalyzerState } from './analyze-context.js';
import { writeTarget } from './analyze-writes.js';

// ── session objects and transactions ─────────────────────────────────────

export function declareCursor(a: AnalyzerState, body: DeclareCursorStmt): void {
  // CURSOR_OPT_HOLD (0x20): a WITH HOLD cursor outlives its transaction.
  a.object({ op: 'create', kind: 'portal', name: body.portalname ?? '', holdable: ((body.options ?? 0) & 0x20) !== 0 });
  a.walk(body.query, emptyScope);
}

export function prepare(a: AnalyzerState, body: PrepareStmt): void {
  a.object({ op: 'create', kind: 'statement', name: body.name ?? '', holdable: false });
  a.statement(body.query);
}

export function execute(a: AnalyzerState, body: ExecuteStmt): void {
  if (!a.searchPathKnown) {
    refuse('cannot EXECUTE a prepared statement while search_path is changing', 'Postgres would re-resolve its names under the new search_path; send the SET separately first.');
  }
  a.object({ op: 'use', kind: 'statement', name: body.name ?? '' });
  a.walk(body.params, emptyScope);
  a.searchPathKnown = false; // the prepared statement may set it (the session knows whether it does)
}

export function fetch(a: AnalyzerState, body: FetchStmt): void {
  a.object({ op: 'use', kind: 'portal', name: body.portalname ?? '' });
  a.searchPathKnown = false; // the cursor's query may set it (the session knows whether it does)
}

export function transaction(a: AnalyzerState, body: TransactionStmt): void {
  const kind = body.kind ?? '';
  // Ending a transaction or rolling back to a savepoint undoes SET LOCAL / SETs made inside it.
  if (/COMMIT|ROLLBACK|PREPARE/.test(kind)) {
    a.result.endsTransaction = true;
    a.searchPathKnown = false;
  }
}

export function deallocate(a: AnalyzerState, body: DeallocateStmt): void {
  a.object({ op: 'drop', kind: 'statement', name: body.isall === true || !body.name ? null : body.name });
}

export function closePortal(a: AnalyzerState, body: ClosePortalStmt): void {
  a.object({ op: 'drop', kind: 'portal', name: body.portalname ?? null });
}

export function discard(a: AnalyzerState, body: DiscardStmt): void {
  // Only DISCARD ALL drops prepared statements and cursors and resets settings; PLANS, SEQUENCES and TEMP do neither.
  if (body.target === 'DISCARD_ALL') {
    a.object({ op: 'drop', kind: 'statement', name: null });
    a.object({ op: 'drop', kind: 'portal', name: null });
    changeSearchPath(a, undefined);
  }
}

// ── notifications ────────────────────────────────────────────────────────

export function listen(a: AnalyzerState, body: ListenStmt): void {
  if (a.ctx.listenChannels.has(body.conditionname ?? '')) return;
  refuse('LISTEN is not allowed through pgveil on this channel', 'Notifications are a channel between sessions (threat C4 in the threat model); a DBA can list channels under channels.listen in the policy.');
}

export function notify(): never {
  refuse('NOTIFY is not allowed through pgveil', 'Notifications are a channel between sessions (threat C4 in the threat model).');
}

// ── EXPLAIN and COPY ─────────────────────────────────────────────────────

/**
 * EXPLAIN of a statement over a protected table is refused: ANALYZE counts
 * other orgs' rows ("Rows Removed by Filter"), estimates come from
 * statistics of every org's rows, and even the plan's shape (bitmap or
 * index scan) changes with how often a value occurs in other orgs
 * (threats B5, B7). EXPLAIN of anything else passes.
 */
export function explain(a: AnalyzerState, body: ExplainStmt): void {
  const query = body.query;
  if (asNode(query)?.[0] === 'ExecuteStmt') {
    refuse('EXPLAIN EXECUTE is not allowed through pgveil', 'pgveil cannot see which tables the prepared statement reads.');
  }
  const before = a.protectedUsed;
  a.protectedUsed = false;
  a.statement(query);
  if (a.protectedUsed) {
    refuse('EXPLAIN of a statement that reads a protected table is not allowed through pgveil',
      'Plans and estimates are computed from statistics over every org\'s rows; a DBA can inspect the rewrite with `pgveil explain`.');
  }
  a.protectedUsed = a.protectedUsed || before;
}

export function copy(a: AnalyzerState, body: CopyStmt): void {
  if (body.is_program === true || body.filename !== undefined) {
    refuse('COPY to or from a server file or program is not allowed through pgveil', 'Use COPY … TO STDOUT / FROM STDIN (psql: \\copy).');
  }
  const relation = body.relation;
  if (!relation) { a.walk(body.query, emptyScope); return; }
  if (body.is_from === true) { writeTarget(a, 'CopyStmt', relation, body); return; }
  const rv = rangeVar(relation);
  const rel = a.resolve(rv.schemaname, rv.relname, rv.location);
  const table = a.tableOf(rel);
  a.result.relations.add(canonicalRelation(rel.schema, rel.name));
  if (!table) { a.checkUnprotected(rel); a.qualify(rv, rel); return; }
  if (!table.access) refuse(`permission denied for table ${rel.name}`);
  const { profile, catalog } = a.ctx;
  if (rv.inh && hasOwnRulesBelow(profile, catalog, rel, descendantsOf(catalog, rel.oid))) {
    refuse(`cannot copy ${rel.name} with its partitions: some of them have policy rules of their own`, `Copy the partitions one by one.`);
  }
  // COPY t [(cols)] TO STDOUT  →  COPY (SELECT cols FROM <guarded> AS t) TO STDOUT
  const sql = a.text.text;
  const start = a.text.index(rv.location);
  let end = a.nameEnd(rv, start);
  const cols = names(body.attlist);
  if (cols.length) {
    const open = skipSpace(sql, end);
    const close = sql.indexOf(')', open);
    if (sql.charCodeAt(open) !== 40 || close === -1) refuse('cannot rewrite this COPY statement');
    end = close + 1;
  }
  const select = cols.length ? cols.map(quoteIdent).join(', ') : '*';
  const guarded = composeGuarded(a.ctx.replacement(rel, table, rv.inh), undefined, []);
  a.markProtected(rel, table);
  a.result.edits.push({
    start, end, text: `(SELECT ${select} FROM ${guarded} AS ${quoteIdent(rv.relname)})`, generated: true,
    skeleton: `(SELECT ${select} FROM ${STAND_IN} AS ${quoteIdent(rv.relname)})`,
  });
}

// ── settings ─────────────────────────────────────────────────────────────

/** The value of a string constant argument, or undefined for anything else. */
function stringConstant(arg: Node | undefined): string | undefined {
  const c = asNode(arg);
  return c?.[0] === 'A_Const' ? c[1].sval?.sval : undefined;
}

/** SET / RESET: only presentation and timeout settings, and search_path (tracked). */
export function set(a: AnalyzerState, body: VariableSetStmt): void {
  const name = (body.name ?? '').toLowerCase();
  const kind = body.kind;
  if (kind === 'VAR_RESET_ALL') { changeSearchPath(a, undefined); return; }
  if (name === 'transaction' || name === 'session characteristics') return;
  if (!settableParameters.has(name)) refuse(`SET ${name} is not allowed through pgveil`, 'Only presentation and timeout settings (and search_path) may be changed.');
  if (name === 'application_name' && kind === 'VAR_SET_VALUE') { prefixApplicationName(a, body.args?.[0]); return; }
  if (name === 'client_encoding') {
    const value = stringConstant(body.args?.[0]);
    if (kind === 'VAR_SET_VALUE' && (value === undefined || !isUtf8(value))) refuse('pgveil supports only client_encoding UTF8');
    return;
  }
  if (name !== 'search_path') return;
  if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') { changeSearchPath(a, undefined); return; }
  const values = (body.args ?? []).map((arg) => stringConstant(arg));
  changeSearchPath(a, values.some((v) => v === undefined) ? undefined : (values as string[]));
}

/** set_config(name, value, is_local): the same rules as SET, on constant arguments only. */
export function setConfig(a: AnalyzerState, body: FuncCall): void {
  a.constantDependent = true; // the decision depends on the setting's name and value
  const [nameArg, valueArg] = body.args ?? [];
  const name = stringConstant(nameArg)?.toLowerCase();
  if (!name || !settableParameters.has(name)) refuse('set_config of this setting is not allowed through pgveil', 'Only presentation and timeout settings (and search_path) may be changed.');
  if (name === 'client_encoding') {
    const value = stringConstant(valueArg);
    if (value === undefined || !isUtf8(value)) refuse('pgveil supports only client_encoding UTF8');
  }
  if (name === 'application_name') prefixApplicationName(a, valueArg);
  if (name === 'search_path') {
    const value = stringConstant(valueArg);
    changeSearchPath(a, value === undefined ? undefined : parseSearchPath(value));
  }
}

/**
 * application_name upstream always starts with `pgveil:<user>:` so DBAs can
 * tell who runs what; a user may change only the rest (C1).
 */
function prefixApplicationName(a: AnalyzerState, arg: Node | undefined): void {
  const prefix = a.ctx.applicationNamePrefix;
  if (!prefix) return;
  const c = asNode(arg);
  const constant = c?.[0] === 'A_Const' ? c[1] : undefined;
  const value = constant?.sval?.sval;
  if (!constant || value === undefined) refuse('application_name can only be set to a constant through pgveil');
  const start = a.text.index(constant.location ?? -1);
  const end = constantEnd(a.text.text, start);
  if (end === -1) refuse('cannot rewrite this application_name');
  const full = Buffer.from(prefix + value).subarray(0, 63).toString('utf8').replace(/\uFFFD$/, '');
  a.result.edits.push({ start, end, text: `'${full.replace(/'/g, "''")}'`, generated: false });
  a.result.perUser = true;
}

/**
 * A statement that may change search_path. Whether and when it takes
 * effect upstream is not knowable from the text — a set_config in a WHERE
 * false, a SET LOCAL undone by COMMIT — so the rest of the message treats
 * search_path as unknown (unqualified names refused), and the session
 * reads upstream's value again before trusting it.
 */
function changeSearchPath(a: AnalyzerState, value: string[] | undefined): void {
  // pg_catalog listed after another schema would let that schema shadow the
  // functions and types pgveil's filters and masks use (threat C5).
  const catalogAt = value?.indexOf('pg_catalog') ?? -1;
  if (value && catalogAt > 0 && value.slice(0, catalogAt).some((s) => s !== 'pg_temp')) {
    refuse('search_path must not put another schema before pg_catalog', 'Leave pg_catalog out (it is then searched first) or list it first.');
  }
  a.result.searchPathChange = { value };
  a.searchPathKnown = false;
}
