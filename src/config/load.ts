// Loading the three files of docs/configuration.md: read → YAML → JSON Schema (defaults
// filled from the schema) → typed shape with absolute paths → semantic and
// cross-file checks. Every problem becomes a ConfigIssue with file:line:col;
// all of them are collected and thrown together as one ConfigError.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from './errors.js';
import { checkSchema, type SchemaName } from './schema-check.js';
import { buildConfig } from './config-file.js';
import { buildUsers } from './users-file.js';
import { buildPolicy } from './policy-file.js';
import type { Config, PolicyFile, UsersFile } from './types.js';
import { YamlSource } from './yaml-source.js';

export { ConfigError, type ConfigIssue } from './errors.js';

interface Step<T> {
  /** Only when the file has no problem at all. */
  value?: T;
  /** What could be built anyway, for cross-file checks; may miss the parts the schema rejected. */
  partial?: T;
  issues: ConfigIssue[];
}

function read<T>(file: string, schema: SchemaName, build: (s: YamlSource) => T): Step<T> {
  const source = YamlSource.read(resolve(file));
  if (!source.ok) return { issues: source.issues };
  const valid = checkSchema(schema, source);
  let partial: T | undefined;
  if (source.ok) {
    try {
      partial = build(source);
    } catch (err) {
      // On data the schema rejected, a rule may trip over what is left; the
      // schema's report already says what to fix.
      if (valid) throw err;
    }
  }
  return { value: valid && !source.issues.length ? partial : undefined, partial, issues: source.issues };
}

function orThrow<T>(step: Step<T>): T {
  if (step.issues.length || step.value === undefined) throw new ConfigError(step.issues);
  return step.value;
}

/** Reads and validates pgveil.yaml. Throws ConfigError listing every problem. */
export function loadConfig(file: string): Config {
  return orThrow(read(file, 'pgveil', buildConfig));
}

/** Reads users.yaml; with `config`, also checks client-certificate settings against it. */
export function loadUsers(file: string, config?: Config): UsersFile {
  return orThrow(read(file, 'users', (s) => buildUsers(s, config)));
}

/** Reads policy.yaml; with `users`, also checks that every organization it names exists. */
export function loadPolicy(file: string, users?: UsersFile): PolicyFile {
  return orThrow(read(file, 'policy', (s) => buildPolicy(s, users)));
}

export interface CheckResult {
  /** The files that were read, in order: config, users, policy (a missing one is an issue of the config). */
  files: string[];
  issues: ConfigIssue[];
  loaded?: { config: Config; users: UsersFile; policy: PolicyFile };
}

/**
 * Loads all three files and reports every problem in any of them, without
 * throwing. With `shadow`, the config's shadow policy file is checked too
 * (as `serve` checks it at startup); other commands do not depend on it.
 */
export function checkAll(configFile: string, opts: { shadow?: boolean } = {}): CheckResult {
  const configStep = read(configFile, 'pgveil', buildConfig);
  const files = [resolve(configFile)];
  const issues = [...configStep.issues];
  const config = configStep.partial;
  if (!config || typeof config.users !== 'string' || typeof config.policy !== 'string') return { files, issues };
  // A missing users/policy file is already reported at its key in the config.
  const usersStep = isFile(config.users) ? read(config.users, 'users', (s) => buildUsers(s, config)) : undefined;
  const users = usersStep?.partial;
  const policyStep = isFile(config.policy) ? read(config.policy, 'policy', (s) => buildPolicy(s, users)) : undefined;
  const shadowStep = opts.shadow && typeof config.shadow === 'string' && isFile(config.shadow)
    ? read(config.shadow, 'policy', (s) => buildPolicy(s, users)) : undefined;
  if (usersStep) files.push(config.users);
  if (policyStep) files.push(config.policy);
  if (shadowStep) files.push(config.shadow!);
  issues.push(...(usersStep?.issues ?? []), ...(policyStep?.issues ?? []), ...(shadowStep?.issues ?? []));
  const policy = policyStep?.value;
  return issues.length || !usersStep?.value || !policy ? { files, issues } : { files, issues, loaded: { config, users: usersStep.value, policy } };
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** Loads and cross-checks config, users and policy; throws one ConfigError with the problems of all three. */
export function loadAll(configFile: string): { config: Config; users: UsersFile; policy: PolicyFile } {
  const result = checkAll(configFile);
  if (!result.loaded) throw new ConfigError(result.issues);
  return result.loaded;
}
