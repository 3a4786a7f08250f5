// `pgveil explain --config FILE --user U [--search-path P] "SQL"`: the
// operator's view of what one user's statement becomes. It loads the files,
// reads the upstream catalog as the service role (exactly what `serve` does
// on a policy load), binds the user's profile, asks the decision engine and
// prints the rewrite or the refusal, the rules that applied and the relations the statement touches.
// Only the named user's profile is ever bound, so no other user's filter can
// appear in the output.
// Exit codes: 0 rewritten or forwarded, 1 refused (or the upstream could not
// be read), 2 usage or configuration error (an unknown user included).
import { readFileSync } from 'node:fs';
import type { Command } from './main.js';
import { parseArgs, requireOption, UsageError } from './args.js';
import { loadAll } from '../config/load.js';
import { applicationNamePrefix } from '../engine/engine.js';
import type { Outcome } from '../rewrite/rewrite.js';
import type { Profile } from '../policy/types.js';
import { describeMask } from '../policy/mask-kinds.js';
import { loadEngines, searchPathOption, sessionSearchPath } from './offline-engine.js';

const usage = `usage: pgveil explain --config <file> --user <user> [--search-path <value>] "<sql>"

  --config <file>        the pgveil.yaml to read (users, policy and upstream as \`serve\` uses them)
  --user <user>          the user whose rewrite to show
  --search-path <value>  the session's search_path (default: what upstream gives the service role)
  "<sql>"                the statement text; "-" reads it from stdin`;

export const command: Command = {
  summary: 'show the rewrite (or the refusal) of a statement for one user',
  usage,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { config: 'value', user: 'value', 'search-path': 'value' });
    const configFile = requireOption(args, 'config');
    const userName = requireOption(args, 'user');
    if (args.positionals.length === 0) throw new UsageError('missing the SQL text');
    if (args.positionals.length > 1) throw new UsageError(`unexpected argument "${args.positionals[1]}" (quote the SQL as one argument)`);
    const sql = args.positionals[0] === '-' ? readFileSync(0, 'utf8') : args.positionals[0];
    const givenSearchPath = searchPathOption(args);

    const { config, users, policy } = loadAll(configFile);
    const user = users.users.get(userName);
    if (!user) throw new UsageError(`unknown user "${userName}" (not in ${users.file})`);
    if (user.disabled) console.error(`pgveil explain: note: user "${userName}" is disabled; the proxy refuses their sessions`);

    const loaded = await loadEngines('explain', config, users, [policy]);
    if (typeof loaded === 'number') return loaded;
    const [engine] = loaded.engines;
    const profile = engine.profileFor(user)!;
    const searchPath = await sessionSearchPath('explain', config, loaded.upstreamPassword, givenSearchPath);
    if (!searchPath) return 1;

    // The engine's own uncached path: the same snapshot and rewrite input a session's statement gets.
    const outcome = engine.explain(sql, profile, searchPath.path, applicationNamePrefix(user.name))!;
    console.log(render(outcome, profile));
    return outcome.kind === 'refuse' ? 1 : 0;
  },
};

function render(outcome: Outcome, profile: Profile): string {
  const lines: string[] = [];
  if (outcome.kind === 'refuse') {
    const e = outcome.error;
    lines.push(`refused: ${e.code} ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
    if (e.detail) lines.push(`  detail: ${e.detail}`);
    if (e.position !== undefined) lines.push(`  position: ${e.position}`);
    if (outcome.internal) lines.push(`  verifier: ${outcome.internal}`);
  } else if (outcome.kind === 'forward') {
    lines.push('forward: unchanged');
  } else {
    lines.push('rewritten:', outcome.sql);
  }
  lines.push('rules applied:');
  const applied = [...new Set(outcome.applied)];
  if (!applied.length) lines.push('  (none)');
  for (const rule of applied) {
    lines.push(`  ${rule}`);
    // The user's own bound rules behind the summary line (the profile holds nothing of other users).
    const table = [...profile.tables.values()].find((t) => rule.startsWith(`${t.relation}: `));
    if (!table) continue;
    for (const filter of table.filters) lines.push(`    filter: ${filter}`);
    for (const [column, mask] of table.masks) {
      lines.push(`    mask: ${column} ${describeMask(mask)}`);
    }
  }
  lines.push('relations:');
  if (!outcome.relations.length) lines.push('  (none)');
  for (const relation of outcome.relations) lines.push(`  ${relation}`);
  return lines.join('\n');
}
