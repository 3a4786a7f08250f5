// `pgveil policy diff --config FILE [--format text|json] CANDIDATE.yaml`:
// what the candidate policy changes, per user and group and per relation,
// compared with the configured (active) one. The candidate is validated
// exactly as a reload would validate it (the same loader against the same
// users file, the same compile), so a broken candidate fails here with the
// same file:line:col messages. No upstream is needed.
// Exit codes: 0 nothing loosens, 1 something loosens (or changes in a way
// that cannot be proven tighter), 2 usage or configuration error.
import type { Command } from './main.js';
import { choiceOption, parseArgs, requireOption, UsageError } from './args.js';
import { loadAll, loadPolicy } from '../config/load.js';
import type { PolicyFile, UsersFile } from '../config/types.js';
import { compileCheckedPolicy } from '../policy/check.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { effectiveAccess, groupNames } from '../policy/effective-access.js';
import { diffPolicies, type PolicySide } from '../policy/access-diff.js';
import { diffJson, diffText } from '../report/diff-text.js';
import { sourceFile } from '../report/sources.js';

const usage = `usage: pgveil policy diff --config <file> [--format text|json] <candidate.yaml>

  --config <file>      the pgveil.yaml naming the active users and policy
  --format text|json   a listing for people (default) or JSON for a CI job
  <candidate.yaml>     the policy to compare with the active one

Exit 0 when nothing loosens, 1 when something loosens or changes in a way that
cannot be proven tighter, 2 on a usage or configuration error.`;

export const command: Command = {
  summary: 'what a candidate policy changes per user and table; exit 1 when anything loosens',
  usage,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv, { config: 'value', format: 'value' });
    const configFile = requireOption(args, 'config');
    const format = choiceOption(args, 'format', ['text', 'json']);
    if (args.positionals.length !== 1) throw new UsageError(args.positionals.length ? `unexpected argument "${args.positionals[1]}"` : 'missing the candidate policy file');
    const candidateFile = args.positionals[0];

    const { config, users, policy } = loadAll(configFile);
    const active = compileCheckedPolicy(policy, users, 1);
    // What serve's reload does with a changed policy.yaml: load it against the current users, then compile.
    const candidatePolicy = loadPolicy(candidateFile, users);
    const candidate = compileCheckedPolicy(candidatePolicy, users, 2);

    const groups = [...groupNames(active, users), ...groupNames(candidate, users)];
    const diff = diffPolicies(side(active, policy, users, groups), side(candidate, candidatePolicy, users, groups));
    const sources = { active: sourceFile(config.policy), candidate: sourceFile(candidatePolicy.file) };
    process.stdout.write(format === 'json' ? diffJson(diff, sources) : diffText(diff, sources));
    return diff.loosens ? 1 : 0;
  },
};

function side(compiled: CompiledPolicy, policy: PolicyFile, users: UsersFile, groups: string[]): PolicySide {
  return {
    matrix: effectiveAccess(compiled, users, groups),
    rules: { allowedFunctions: new Set(policy.functions.allow), listenChannels: new Set(policy.channels.listen) },
  };
}
