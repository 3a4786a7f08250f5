// parse → analyze → splice → verify (docs/architecture.md): a pure function of the
// statement text, the user's profile, the catalog and the search_path.
import { parseSync } from 'libpg-query';
import type { Catalog } from '../catalog/types.js';
import type { Profile } from '../policy/types.js';
import { PgError, SqlState } from '../errors.js';
import { Analyzer, type Analysis, type Findings, type StatementRules } from './analyze.js';

export type { StatementRules } from './analyze.js';
import { grammarDrift, majorOf, PGVEIL_MAJOR } from './grammar-drift.js';
import { guardedParts } from './replacement.js';
import { splice } from './splice.js';
import { lengthRefusal, tooDeep, treeRefusal } from './budget.js';
import { SqlText } from './sql-text.js';
import { verifyRewrite } from './verify.js';
import { noObjects, type ObjectEffect } from './effects.js';
import { parameterSafeConstants, plainSelect } from './parameter-slots.js';

const noStatementRules: StatementRules = { allowedFunctions: new Set(), listenChannels: new Set() };

export interface RewriteInput {
  profile: Profile;
  catalog: Catalog;
  searchPath: string[];
  /** False while a search_path change is in flight: unqualified names are then refused. */
  searchPathKnown?: boolean;
  /** Default: none (no user-defined function, no LISTEN). */
  rules?: StatementRules;
  /** `pgveil:<user>:`, kept in front of application_name values the user sets. */
  applicationNamePrefix?: string;
  /** A Parse's declared parameter types (protocol/parameter-types.ts); '' or absent when none is declared. */
  parameterTypes?: string;
}

/** What every outcome carries: the analysis's findings (documented there), relations as a list. */
type Common = Omit<Findings, 'relations' | 'objects'> & {
  relations: string[];
  objects: readonly ObjectEffect[];
};

export type Outcome =
  | (Common & { kind: 'forward' })
  | (Common & {
    kind: 'rewrite'; sql: string; /** original string index → index in `sql` (outside edits) */ mapIndex(i: number): number;
    /** One plain SELECT without `$n`: where its numeric constants that may go upstream as parameters begin (string indices of the input; parameter-slots.ts). */
    parameterSafe?: ReadonlySet<number>;
    /** One plain SELECT: a client's unnamed Parse of it may run as a prepared statement of pgveil's own. */
    plainSelect: boolean;
  })
  | (Common & { kind: 'refuse'; error: PgError; /** set when the verifier, not a rule, refused: an analyzer bug to log */ internal?: string });

export function parseError(sql: string, err: unknown): PgError {
  const details = (err as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
  const message = details?.message ?? (err instanceof Error ? err.message : 'syntax error');
  return new PgError(SqlState.SyntaxError, message, {
    position: details?.cursorPosition !== undefined ? details.cursorPosition + 1 : undefined,
  });
}

const empty = { relations: [], applied: [], objects: noObjects };

/** Threat E2: a statement over the budget or too deep for the analyzer is refused, never allowed to kill the session or stall the others. */
export function rewriteSql(sql: string, input: RewriteInput): Outcome {
  // Over the statement budget: refused before any parsing (see budget.ts).
  const tooLong = lengthRefusal(sql);
  if (tooLong) return { kind: 'refuse', shapeSafe: false, ...empty, error: tooLong };
  try {
    return rewriteOnce(sql, input);
  } catch (err) {
    // Stack exhausted in the analyzer or the verifier's parse: a statement too deep, a rule, not an analyzer gap.
    if (err instanceof RangeError) return { kind: 'refuse', shapeSafe: false, ...empty, error: tooDeep() };
    // Anything unexpected (e.g. two rewrites of one span) is a refusal, never a forwarded statement.
    return {
      kind: 'refuse', shapeSafe: false, ...empty, internal: err instanceof Error ? err.message : String(err),
      error: new PgError(SqlState.InsufficientPrivilege, 'pgveil could not rewrite this statement', {
        hint: 'This is a pgveil limitation; the statement was not run. Please report it with the statement text.',
      }),
    };
  }
}

function rewriteOnce(sql: string, input: RewriteInput): Outcome {
  let stmts: unknown[];
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch (err) {
    // The parser's own stack ran out (deep nesting): the budget's refusal, not a syntax error.
    const message = (err as { sqlDetails?: { message?: string } }).sqlDetails?.message ?? '';
    if (err instanceof RangeError || /stack depth limit exceeded|memory exhausted/.test(message)) return { kind: 'refuse', error: tooDeep(), shapeSafe: false, ...empty };
    return { kind: 'refuse', error: parseError(sql, err), shapeSafe: false, ...empty };
  }
  const overBudget = treeRefusal(stmts);
  if (overBudget) return { kind: 'refuse', error: overBudget, shapeSafe: false, ...empty };
  const text = new SqlText(sql);
  const analysis = new Analyzer(text, {
    profile: input.profile,
    catalog: input.catalog,
    replacement: (rel, table, inh) => guardedParts(input.profile, rel, table, inh),
    ...(input.rules ?? noStatementRules),
    applicationNamePrefix: input.applicationNamePrefix,
    parameterTypes: input.parameterTypes ? input.parameterTypes.split(',') : undefined,
  }, input.searchPath, input.searchPathKnown ?? true).run(stmts);
  const common = commonOf(analysis);
  if (analysis.refusal) return { kind: 'refuse', error: analysis.refusal, ...common };
  // Threat A11: what goes upstream must read there as PostgreSQL 18's grammar read it (only ever on a cache miss;
  // after the analyzer, whose refusals stand whatever the upstream's grammar says).
  const major = majorOf(input.catalog.serverVersionNum);
  if (major < PGVEIL_MAJOR) {
    const drift = grammarDrift(sql, stmts, major);
    if (drift) return { kind: 'refuse', error: drift, ...common, shapeSafe: false };
  }
  if (analysis.edits.length === 0) return { kind: 'forward', ...common };
  const spliced = splice(sql, analysis.edits);
  let problem: string | undefined;
  try {
    // Verified on the skeleton: the rewrite with trivial stand-ins for pgveil's own subqueries.
    const skeleton = splice(sql, analysis.edits.map((e) => (e.skeleton === undefined ? e : { ...e, text: e.skeleton, moved: undefined })));
    problem = verifyRewrite(skeleton, analysis.cteReferences, analysis.searchPaths, input.profile, input.catalog);
  } catch (err) {
    if (err instanceof RangeError) throw err; // too deep to re-parse: refused as such above, not an analyzer gap
    problem = `re-parse failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (problem) {
    return {
      kind: 'refuse', internal: problem, ...common,
      error: new PgError(SqlState.InsufficientPrivilege, 'pgveil could not verify the rewritten statement', {
        hint: 'This is a pgveil limitation; the statement was not run. Please report it with the statement text.',
      }),
    };
  }
  return {
    kind: 'rewrite', sql: spliced.sql, mapIndex: spliced.map, parameterSafe: parameterSafeConstants(stmts, text), plainSelect: plainSelect(stmts), ...common,
  };
}

/** The findings of an analysis as every outcome carries them (any finding added to Findings comes along). */
function commonOf(analysis: Analysis): Common {
  const { edits: _edits, cteReferences: _cteReferences, refusal: _refusal, searchPaths: _searchPaths, relations, ...findings } = analysis;
  return { ...findings, relations: [...relations] };
}
