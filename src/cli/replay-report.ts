// What `pgveil policy replay` prints: per user, the statements the candidate
// newly refuses, newly allows and rewrites differently (each with why), then
// what could not be replayed, then a one-line result. `--format json` prints
// the same as one JSON document.
import type { DifferenceKind } from '../engine/decision-compare.js';
import { differenceCounts, type ReplayedStatement, type ReplayResult } from '../engine/replay.js';
import type { RecordedInput } from './replay-records.js';

export interface ReportContext {
  input: RecordedInput;
  result: ReplayResult;
  activeFile: string;
  candidateFile: string;
  usersFile: string;
  searchPath: string;
}

const headings: Record<DifferenceKind, string> = {
  newly_refused: 'newly refused',
  newly_allowed: 'newly allowed',
  rewritten_differently: 'rewritten differently',
};

/** The longest statement text shown on one line. */
const SHOWN_TEXT = 160;

export function renderText(ctx: ReportContext): string {
  const { input, result } = ctx;
  const replayedUsers = result.users.length;
  const distinct = result.users.reduce((n, u) => n + u.statements, 0);
  const lines = [
    `replayed ${plural(result.users.reduce((n, u) => n + u.records, 0), 'statement record')} (${plural(distinct, 'distinct statement')}, ${plural(replayedUsers, 'user')}) from ${plural(input.files.length, 'file')}`,
    `  active policy: ${ctx.activeFile}; candidate: ${ctx.candidateFile}; search_path: ${ctx.searchPath}`,
    '',
  ];
  for (const user of result.users) {
    const head = `${user.user}: ${plural(user.statements, 'statement')} (${plural(user.records, 'record')})`;
    if (!user.differences.length) { lines.push(`${head}, no differences`); continue; }
    lines.push(head);
    for (const kind of Object.keys(headings) as DifferenceKind[]) {
      const of = user.differences.filter((d) => d.kind === kind);
      if (!of.length) continue;
      lines.push(`  ${headings[kind]}:`);
      for (const d of of) {
        lines.push(`    ${shown(d.text)}   (${plural(d.count, 'record')})`);
        for (const detail of d.details) lines.push(`      ${detail}`);
      }
    }
  }

  const notReplayed: string[] = [];
  if (input.withoutText) {
    notReplayed.push(`  ${plural(input.withoutText, 'statement record')} without text: the audit log was written with statements: fingerprint or none; set audit.statements: full to replay them`);
  }
  for (const s of result.skippedUsers) {
    notReplayed.push(`  ${s.user}: ${plural(s.records, 'record')} (${s.why === 'disabled' ? 'the user is disabled' : `no longer in ${ctx.usersFile}`})`);
  }
  if (input.unreadable) notReplayed.push(`  ${input.unreadable === 1 ? '1 line that is not an audit record' : `${input.unreadable} lines that are not audit records`} (a torn last line, or another kind of file)`);
  if (notReplayed.length) lines.push('', 'not replayed:', ...notReplayed);

  const changed = result.users.flatMap((u) => u.changedSinceRecorded.map((s) => ({ user: u.user, s })));
  if (changed.length) {
    lines.push('', 'decided otherwise by the active policy now than when recorded:');
    for (const { user, s } of changed) lines.push(`  ${user}: ${shown(s.text)}   (recorded ${s.recorded.join('/')}, now ${s.active})`);
  }

  const counts = differenceCounts(result);
  lines.push('', `result: ${counts.newly_refused} newly refused, ${counts.newly_allowed} newly allowed, ${counts.rewritten_differently} rewritten differently (distinct statements)`);
  return lines.join('\n');
}

export function renderJson(ctx: ReportContext): string {
  const { input, result } = ctx;
  return JSON.stringify({
    files: input.files,
    activePolicy: ctx.activeFile,
    candidatePolicy: ctx.candidateFile,
    searchPath: ctx.searchPath,
    differences: differenceCounts(result),
    users: result.users.map((u) => ({
      user: u.user, statements: u.statements, records: u.records,
      differences: u.differences.map(json),
      changedSinceRecorded: u.changedSinceRecorded.map(json),
    })),
    notReplayed: { withoutText: input.withoutText, unreadableLines: input.unreadable, users: result.skippedUsers },
  }, null, 2);
}

function json(s: ReplayedStatement) {
  return { text: s.text, records: s.count, recorded: s.recorded, active: s.active, candidate: s.candidate, kind: s.kind, details: s.details };
}

/** One line: whitespace runs collapsed, long texts cut. */
function shown(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > SHOWN_TEXT ? `${line.slice(0, SHOWN_TEXT - 1)}…` : line;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
