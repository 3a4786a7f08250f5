// Spans of the user's text the analyzer moves or repeats, found from the
// parse tree's locations plus a few tokens around them. Each returns a
// failure value rather than guessing: the analyzer then refuses.
import { keywordBefore, matchingParen, qualifiedNameEnd, skipSpace, type SqlText } from './sql-text.js';
import type { RangeTableSample } from '@pgsql/types';
import { asNode, minLocation } from './tree.js';

export interface Span { start: number; end: number; text: string }

/**
 * `TABLESAMPLE method (args) [REPEATABLE (seed)]` of a RangeTableSample node
 * (whose location is the method's name), or null when it cannot be delimited
 * (comments inside, column aliases on the relation).
 */
export function tableSampleClause(text: SqlText, sample: RangeTableSample): Span | null {
  const sql = text.text;
  const relation = asNode(sample.relation);
  if (relation?.[0] === 'RangeVar' && relation[1].alias?.colnames?.length) return null;
  const methodStart = text.index(sample.location ?? -1);
  const keyword = keywordBefore(sql, methodStart, 'tablesample');
  if (!keyword || keyword.parens) return null;
  const method = qualifiedNameEnd(sql, methodStart, sample.method?.length ?? 0);
  const open = method === -1 ? -1 : skipSpace(sql, method);
  if (open === -1 || sql.charCodeAt(open) !== 40) return null;
  let end = matchingParen(sql, open);
  if (end === -1) return null;
  if (sample.repeatable !== undefined) {
    const next = skipSpace(sql, end);
    if (sql.slice(next, next + 10).toLowerCase() !== 'repeatable') return null;
    const seed = skipSpace(sql, next + 10);
    end = sql.charCodeAt(seed) === 40 ? matchingParen(sql, seed) : -1;
    if (end === -1) return null;
  }
  return { start: keyword.start, end, text: sql.slice(keyword.start, end) };
}

/**
 * End (exclusive) of the first argument of a call whose `(` is at `open` and
 * whose `)` ends before `close`: the comma before the second argument's
 * earliest token (a `(` may sit between), or the call's end when there is
 * one argument; -1 when that is not where a comma is, or with 3+ arguments.
 */
export function firstArgumentEnd(text: SqlText, open: number, close: number, args: readonly unknown[]): number {
  if (args.length <= 1) return close - 1;
  const second = minLocation(args[1]);
  if (args.length > 2 || second === undefined) return -1;
  const sql = text.text;
  let j = text.index(second) - 1;
  while (j > open && /[\s(]/.test(sql[j])) j--;
  return j > open && sql[j] === ',' ? j : -1;
}
