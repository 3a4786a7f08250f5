// `pgveil passwd <user>`: makes a SCRAM-SHA-256 verifier for a new password
// under the configured password policy, and prints it or writes it into
// users.yaml (keeping the file's comments and layout).
import { isSeq, YAMLSeq } from 'yaml';
import type { Scalar } from 'yaml';
import { checkPasswordPolicy } from '../auth/password-policy.js';
import { createVerifier, DEFAULT_ITERATIONS } from '../auth/scram-verifier.js';
import { ConfigError } from '../config/errors.js';
import { editUserEntry, quoted } from './users-yaml-edit.js';
import type { PasswordPolicy, User } from '../config/types.js';
import { parseArgs, stringOption, UsageError } from './args.js';
import type { Command } from './main.js';
import { firstLine, promptHidden, readAllStdin } from './read-secret.js';

const MAX_ITERATIONS = 0x7fffffff;

const usage = `usage: pgveil passwd [--config FILE] [--write] [--iterations N] <user>

  --config FILE     enforce auth.passwordPolicy of this pgveil.yaml (length,
                    character classes, not one of the user's last \`history\`
                    passwords from users.yaml)
  --write           store the verifier in the users.yaml named by the config
                    (needs --config and an existing user): sets password and
                    passwordChangedAt, and moves the old verifier to
                    passwordHistory; only that user's entry is rewritten
                    (flow style and comments kept), the rest stays as it is
  --iterations N    PBKDF2 iteration count, at least ${DEFAULT_ITERATIONS} (default ${DEFAULT_ITERATIONS})

The password is asked for twice at a terminal (not echoed), or read from the
first line of stdin when it is not a terminal. Without --write the verifier
(SCRAM-SHA-256$…) is printed on stdout for the user's password: key.
Exit codes: 0 done, 1 the password breaks the policy (each reason on stderr)
or could not be stored, 2 usage or configuration error.`;

interface Target {
  policy?: PasswordPolicy;
  user?: User;
  usersFile?: string;
}

async function loadTarget(configFile: string, userName: string): Promise<Target> {
  const { loadConfig, loadUsers } = await import('../config/load.js');
  const config = loadConfig(configFile);
  const users = loadUsers(config.users, config);
  return { policy: config.auth.passwordPolicy, user: users.users.get(userName), usersFile: users.file };
}

async function readNewPassword(user: string): Promise<string> {
  if (!process.stdin.isTTY) return firstLine(await readAllStdin());
  const first = await promptHidden(`New password for ${user}: `);
  const second = await promptHidden('Retype the new password: ');
  if (first !== second) throw new Error('the two passwords do not match');
  return first;
}

function parseIterations(text: string | undefined): number {
  if (text === undefined) return DEFAULT_ITERATIONS;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < DEFAULT_ITERATIONS || n > MAX_ITERATIONS) {
    throw new UsageError(`--iterations must be an integer from ${DEFAULT_ITERATIONS} to ${MAX_ITERATIONS}`);
  }
  return n;
}

/**
 * Rewrites the user's entry in users.yaml: new verifier, today's date, the
 * old verifier first in passwordHistory (newest first, at most `keep`).
 * Written to a temporary file and renamed over the original, so a crash
 * never leaves a half-written users.yaml.
 */
export function writeUsersFile(file: string, userName: string, verifier: string, oldVerifier: string | undefined, keep: number): void {
  // Edited in place, so a one-line `{ org: acme }` entry stays one line (as written) and comments stay put.
  editUserEntry(file, userName, (entry) => {
    entry.set('password', quoted(verifier));
    entry.set('passwordChangedAt', new Date().toISOString().slice(0, 10));
    const history = entry.get('passwordHistory', true);
    if (oldVerifier !== undefined && keep > 0) {
      if (isSeq(history)) {
        history.items.unshift(quoted(oldVerifier));
        history.items.splice(keep);
      } else {
        const seq = new YAMLSeq<Scalar<string>>();
        seq.items.push(quoted(oldVerifier));
        entry.set('passwordHistory', seq);
      }
    } else if (isSeq(history)) {
      history.items.splice(Math.max(0, keep));
    }
  }, (doc) => doc.getIn(['users', userName, 'password']) === verifier);
}

export const command: Command = {
  summary: 'make a SCRAM verifier for a user under the password policy',
  usage,
  async run(argv) {
    const args = parseArgs(argv, { config: 'value', write: 'flag', iterations: 'value' });
    if (args.positionals.length !== 1) {
      throw new UsageError(args.positionals.length === 0 ? 'missing <user>' : 'only one <user> may be given');
    }
    const userName = args.positionals[0];
    const configFile = stringOption(args, 'config');
    const write = args.options.has('write');
    const iterations = parseIterations(stringOption(args, 'iterations'));
    if (write && configFile === undefined) throw new UsageError('--write needs --config');

    let target: Target = {};
    if (configFile !== undefined) {
      try {
        target = await loadTarget(configFile, userName);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(`pgveil passwd: configuration error\n${err.message}`);
        return 2;
      }
      if (write && !target.user) {
        console.error(`pgveil passwd: no user "${userName}" in ${target.usersFile}; add the user first (--write only changes existing users)`);
        return 1;
      }
    }

    const password = await readNewPassword(userName);
    if (password === '') {
      console.error('pgveil passwd: empty password');
      return 1;
    }
    if (target.policy) {
      const previous = [target.user?.password, ...(target.user?.passwordHistory ?? [])]
        .filter((v): v is string => typeof v === 'string' && v !== '');
      const problems = checkPasswordPolicy(password, target.policy, previous);
      if (problems.length > 0) {
        for (const p of problems) console.error(`pgveil passwd: ${p}`);
        return 1;
      }
    }

    const verifier = createVerifier(password, { iterations });
    if (!write) {
      process.stdout.write(verifier + '\n');
      return 0;
    }
    const oldVerifier = target.user?.password || undefined;
    writeUsersFile(target.usersFile!, userName, verifier, oldVerifier, target.policy?.history ?? 0);
    console.error(`pgveil passwd: password of ${userName} updated in ${target.usersFile}`);
    return 0;
  },
};
