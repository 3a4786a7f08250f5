// The statement budget (threat E2 in docs/threat-model.md): rewriting is synchronous, so one huge
// statement would hold up every other session of the process. A statement
// over the budget is refused before the expensive work — by its length
// before it is parsed, by a single counting pass over the parse tree before
// it is analysed. Real BI statements are a few kB with tens of references;
// the limits sit two orders of magnitude above them.
import { PgError, SqlState } from '../errors.js';
import { visit } from './tree.js';

/** Longest statement text (all statements of one message), in characters. */
export const MAX_STATEMENT_CHARS = 262_144;
/** Most relation references (table, view, CTE names in FROM, JOIN, sub-selects, write targets). */
export const MAX_RELATION_REFERENCES = 2_000;
/** Most constants and parameters ($n). */
export const MAX_CONSTANTS = 20_000;
/** Deepest nesting of the parse tree (sub-selects, parentheses, chained operators). */
export const MAX_NESTING = 1_000;

const splitHint = 'Split the statement into smaller ones, or move long value lists into a table (a temporary table, or COPY).';

function overBudget(what: string, count: number, limit: number, sqlState: string = SqlState.ProgramLimitExceeded): PgError {
  return new PgError(sqlState, `statement has ${count} ${what}; pgveil analyses at most ${limit}`, { hint: splitHint });
}

/** Refusal for a text too long to parse, checked before anything else; undefined when within budget. */
export function lengthRefusal(sql: string): PgError | undefined {
  return sql.length > MAX_STATEMENT_CHARS ? overBudget('characters', sql.length, MAX_STATEMENT_CHARS) : undefined;
}

/** A statement nested too deeply for the parser or the analyzer (54001 statement_too_complex). */
export function tooDeep(depth?: number): PgError {
  return depth === undefined
    ? new PgError('54001', 'statement is nested too deeply for pgveil to analyse', { hint: 'Simplify the statement (fewer nested sub-selects, parentheses or chained operators).' })
    : overBudget('levels of nesting', depth, MAX_NESTING, '54001');
}

export interface TreeCounts { references: number; constants: number; depth: number }

/**
 * One pass over the parse tree: relation references, constants and nesting
 * depth. The walk is iterative, so it finishes on a tree of any depth, in
 * time linear in the tree's size.
 */
export function countTree(stmts: unknown[]): TreeCounts {
  let references = 0;
  let constants = 0;
  const depth = visit(stmts, {
    RangeVar() { references++; },
    A_Const() { constants++; },
    ParamRef() { constants++; },
  });
  return { references, constants, depth };
}

/** Refusal for a parsed statement over the budget; undefined when within it. */
export function treeRefusal(stmts: unknown[]): PgError | undefined {
  const c = countTree(stmts);
  if (c.depth > MAX_NESTING) return tooDeep(c.depth);
  if (c.references > MAX_RELATION_REFERENCES) return overBudget('relation references', c.references, MAX_RELATION_REFERENCES);
  if (c.constants > MAX_CONSTANTS) return overBudget('constants and parameters', c.constants, MAX_CONSTANTS);
  return undefined;
}
