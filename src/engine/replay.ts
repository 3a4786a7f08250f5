// Re-deciding recorded statements (`pgveil policy replay`): each distinct
// text a user sent is decided for that user, as the users file has them now,
// under the active policy and under the candidate, by the same engine serve
// uses. The recorded decision is not trusted as the baseline (the policy may
// have changed since): it is only compared with the active decision now.
import type { StatementDecision } from '../audit/record.js';
import type { UsersFile } from '../config/types.js';
import { applicationNamePrefix, type DecisionEngine } from './engine.js';
import { decisionLabel, differenceOf, refusalText, ruleChanges, type DifferenceKind } from './decision-compare.js';

export interface StatementToReplay {
  user: string;
  text: string;
  count: number;
  recorded: ReadonlySet<StatementDecision>;
}

export interface ReplayedStatement {
  text: string;
  /** Records of it in the log. */
  count: number;
  recorded: StatementDecision[];
  active: StatementDecision;
  candidate: StatementDecision;
  kind?: DifferenceKind;
  /** The refusal the client would meet or no longer meet, and the user's rules that changed for the relations it touches. */
  details: string[];
}

export interface UserReplay {
  user: string;
  /** Distinct texts and records replayed. */
  statements: number;
  records: number;
  differences: ReplayedStatement[];
  /** Statements the active policy now decides otherwise than the log recorded. */
  changedSinceRecorded: ReplayedStatement[];
}

export interface ReplayResult {
  users: UserReplay[];
  /** Users of the log who are no longer in the users file, or are disabled (their sessions are refused): not replayed. */
  skippedUsers: Array<{ user: string; why: 'unknown' | 'disabled'; records: number }>;
}

export interface ReplayOptions {
  /** The search_path every statement is decided under (the session's own changes are not in the log). */
  searchPath: string[];
  searchPathText: string;
}

/** Both engines loaded (the candidate with `load(users, candidate, active.current)`). */
export function replayStatements(
  byUser: ReadonlyMap<string, ReadonlyMap<string, StatementToReplay>>, users: UsersFile,
  active: DecisionEngine, candidate: DecisionEngine, opts: ReplayOptions,
): ReplayResult {
  const result: ReplayResult = { users: [], skippedUsers: [] };
  for (const userName of [...byUser.keys()].sort()) {
    const statements = [...byUser.get(userName)!.values()];
    const records = statements.reduce((n, s) => n + s.count, 0);
    const account = users.users.get(userName);
    if (!account || account.disabled) {
      result.skippedUsers.push({ user: userName, why: account ? 'disabled' : 'unknown', records });
      continue;
    }
    const activeProfile = active.profileFor(account)!;
    const candidateProfile = candidate.profileFor(account)!;
    const prefix = applicationNamePrefix(userName);
    const replay: UserReplay = { user: userName, statements: statements.length, records, differences: [], changedSinceRecorded: [] };
    for (const s of statements) {
      const a = active.decide(s.text, activeProfile, opts.searchPath, opts.searchPathText, true, prefix);
      const c = candidate.decide(s.text, candidateProfile, opts.searchPath, opts.searchPathText, true, prefix);
      const kind = differenceOf(a, c);
      const activeLabel = decisionLabel(a);
      const replayed: ReplayedStatement = {
        text: s.text, count: s.count, recorded: [...s.recorded].sort(), active: activeLabel, candidate: decisionLabel(c), kind, details: [],
      };
      if (kind) {
        if (c.kind === 'refuse') replayed.details.push(`candidate: ${refusalText(c.error)}`);
        if (a.kind === 'refuse') replayed.details.push(`active: ${refusalText(a.error)}`);
        // Only for differences: the uncached path names the relations each side touches.
        const relations = [
          ...active.explain(s.text, activeProfile, opts.searchPath, prefix)?.relations ?? [],
          ...candidate.explain(s.text, candidateProfile, opts.searchPath, prefix)?.relations ?? [],
        ];
        replayed.details.push(...ruleChanges(activeProfile, candidateProfile, relations, { filterText: true }));
        replay.differences.push(replayed);
      }
      if (replayed.recorded.length && !replayed.recorded.includes(activeLabel)) replay.changedSinceRecorded.push(replayed);
    }
    result.users.push(replay);
  }
  return result;
}

/** Distinct statements with a difference, by kind, over all users. */
export function differenceCounts(result: ReplayResult): Record<DifferenceKind, number> {
  const counts: Record<DifferenceKind, number> = { newly_refused: 0, newly_allowed: 0, rewritten_differently: 0 };
  for (const u of result.users) for (const d of u.differences) counts[d.kind!]++;
  return counts;
}
