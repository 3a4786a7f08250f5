// The fail-closed stand-in for the rewriter: every statement is parsed with
// the real PostgreSQL grammar, and any statement that could read a relation
// listed in the policy is refused. Until the rewriter lands, pgveil forwards
// only statements that provably do not touch protected tables.
import { parseSync } from 'libpg-query';
import type { PolicyFile } from '../config/types.js';
import { PgError, SqlState } from '../errors.js';

/** Functions that run SQL given as a string, or read files/large objects (THREATS A6, A9, C4). */
const refusedFunctions = new Set([
  'query_to_xml', 'query_to_xml_and_xmlschema', 'query_to_xmlschema', 'table_to_xml', 'table_to_xml_and_xmlschema',
  'table_to_xmlschema', 'schema_to_xml', 'schema_to_xml_and_xmlschema', 'schema_to_xmlschema', 'database_to_xml',
  'database_to_xml_and_xmlschema', 'database_to_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'ts_stat',
  'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_send_query', 'dblink_get_result',
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'lo_import', 'lo_export', 'lo_get', 'lo_open',
  'loread', 'pg_notify', 'current_query', 'set_config',
]);

/** Statement kinds refused outright: they run code, change identity, or open cross-session channels. */
const refusedStatements = new Set([
  'DoStmt', 'CreateFunctionStmt', 'CallStmt', 'ListenStmt', 'NotifyStmt', 'CreateTableAsStmt',
]);

export type GuardOutcome = { refused: false } | { refused: true; error: PgError };

export class SkeletonGuard {
  private readonly qualified = new Set<string>();
  private readonly bareNames = new Set<string>();

  constructor(policy: PolicyFile) {
    for (const key of Object.keys(policy.tables)) {
      const dot = key.lastIndexOf('.');
      this.qualified.add(key);
      this.bareNames.add(key.slice(dot + 1));
    }
  }

  check(sql: string): GuardOutcome {
    let tree: unknown;
    try {
      tree = parseSync(sql);
    } catch (err) {
      const details = (err as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
      const message = details?.message ?? (err instanceof Error ? err.message : 'syntax error');
      const position = details?.cursorPosition !== undefined ? charPosition(sql, details.cursorPosition) : undefined;
      return { refused: true, error: new PgError(SqlState.SyntaxError, message, { position }) };
    }
    const reason = this.findReason(tree);
    if (!reason) return { refused: false };
    return {
      refused: true,
      error: new PgError(SqlState.InsufficientPrivilege, reason, {
        hint: 'pgveil refuses statements it cannot prove safe under the active policy.',
      }),
    };
  }

  private findReason(root: unknown): string | undefined {
    const stack: unknown[] = [root];
    while (stack.length) {
      const node = stack.pop();
      if (Array.isArray(node)) { for (const n of node) stack.push(n); continue; }
      if (!node || typeof node !== 'object') continue;
      for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
        if (refusedStatements.has(key)) return `statement type ${key.replace(/Stmt$/, '').toUpperCase()} is not allowed through pgveil`;
        if (key === 'RangeVar') {
          const rv = value as { schemaname?: string; relname: string };
          const name = rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname;
          if (rv.schemaname ? this.qualified.has(name) : this.bareNames.has(rv.relname)) return `permission denied for table ${rv.relname}`;
        } else if (key === 'FuncCall') {
          const parts = ((value as { funcname?: Array<{ String?: { sval: string } }> }).funcname ?? []).map((p) => p.String?.sval ?? '');
          const fn = parts[parts.length - 1];
          if (refusedFunctions.has(fn)) return `function ${fn} is not allowed through pgveil`;
        } else if (key === 'VariableSetStmt') {
          const name = (value as { name?: string }).name;
          if (name === 'role' || name === 'session_authorization' || name === 'search_path' || name === 'standard_conforming_strings') {
            return `SET ${name} is not allowed through pgveil`;
          }
        } else if (typeof value === 'string' && (key === 'sval' || key === 'str')) {
          const lower = value.toLowerCase();
          for (const bare of this.bareNames) if (lower.includes(bare)) return 'permission denied: a string constant names a protected table';
        }
        if (value && typeof value === 'object') stack.push(value);
      }
    }
    return undefined;
  }
}

/** libpg-query reports a 0-based character offset; Postgres clients expect 1-based. */
export function charPosition(_sql: string, offset: number): number {
  return offset + 1;
}
