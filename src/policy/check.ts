// The policy checks `pgveil check` and `serve` share (a policy mistake must
// never open data). Without upstream: the policy must state
// defaults.unlistedRelations (an empty or truncated file does not), and it
// must compile as serve compiles it (compileTables). Against the upstream
// catalog: every table and redaction column exists, every mask fits its
// column's type, names in filters and custom masks are schema-qualified.
// Problems carry key paths; they become file:line:col ConfigErrors, the same
// kind of error (and exit code 2) as any other configuration mistake.
import type { Catalog } from '../catalog/types.js';
import { ConfigError, formatPath, type ConfigIssue, type PathSegment } from '../config/errors.js';
import { canonicalColumnKey, canonicalTableKey } from '../config/identifiers.js';
import type { PolicyFile, UsersFile } from '../config/types.js';
import { YamlSource } from '../config/yaml-source.js';
import { compilePolicy, compileTables, PolicyCompileError, type CompiledPolicy, type PolicyProblem } from './compile.js';
import { checkMaskFits } from './masks.js';
import { unqualifiedNames } from './qualified-names.js';

const TOP_LEVEL = ['layers', 'defaults', 'secrets', 'functions', 'channels', 'tables'];

/** Problems with the file as a whole, before its rules are looked at. */
export function policyShapeProblem(source: YamlSource): string | undefined {
  if (source.has(['defaults', 'unlistedRelations'])) return undefined;
  if (!TOP_LEVEL.some((key) => source.has([key]))) {
    return 'the policy file is empty (truncated while being written?); it must at least state defaults.unlistedRelations';
  }
  return 'defaults.unlistedRelations must be stated (allow or deny): a policy that does not say it may be a truncated one';
}

/** Every check serve runs that needs no upstream: the policy compiled exactly as serve compiles it. */
export function offlinePolicyProblems(policy: PolicyFile): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  compileTables(policy, problems);
  return problems;
}

/** The checks against the upstream catalog, run at startup and on every reload. */
export function upstreamPolicyProblems(compiled: CompiledPolicy, catalog: Catalog): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const table of compiled.tables.values()) {
    const at: PathSegment[] = ['tables', table.relation];
    const rel = catalog.byName.get(table.name)?.get(table.schema);
    if (!rel) {
      // A misspelled key would leave the real table unprotected.
      problems.push({ path: at, message: `no such table upstream: ${table.relation} (a misspelled key would leave the real table unprotected)` });
      continue;
    }
    table.filters.forEach((f, i) => {
      for (const p of unqualifiedNames(f.template, catalog)) problems.push({ path: [...at, 'ownership', i, 'filter'], message: p });
    });
    for (const [column, masks] of table.masks) {
      const path: PathSegment[] = [...at, 'redaction', column];
      const col = rel.columns?.find((c) => c.name === column);
      if (!col) { problems.push({ path, message: `no such column upstream: ${table.relation}.${column}` }); continue; }
      for (const m of masks) {
        const problem = checkMaskFits({ kind: m.kind, options: m.options }, col);
        if (problem) problems.push({ path, message: problem });
        if (m.template) for (const p of unqualifiedNames(m.template, catalog)) problems.push({ path: [...path, 'expr'], message: p });
      }
    }
  }
  return problems;
}

/**
 * `path` with its canonical table and column keys replaced by the keys as
 * written in the file (`Public.Employees` for `public.employees`), so the
 * problem is shown on the right line.
 */
export function writtenPath(data: unknown, path: readonly PathSegment[]): PathSegment[] {
  const out = [...path];
  const tables = (data as { tables?: Record<string, unknown> } | undefined)?.tables;
  if (path[0] !== 'tables' || !tables || typeof tables !== 'object' || typeof path[1] !== 'string') return out;
  const tableKey = Object.keys(tables).find((k) => k === path[1]) ?? Object.keys(tables).find((k) => canonicalTableKey(k) === path[1]);
  if (tableKey === undefined) return out;
  out[1] = tableKey;
  const redaction = (tables[tableKey] as { redaction?: Record<string, unknown> } | null)?.redaction;
  if (path[2] === 'redaction' && typeof path[3] === 'string' && redaction && typeof redaction === 'object') {
    const columnKey = Object.keys(redaction).find((k) => k === path[3]) ?? Object.keys(redaction).find((k) => canonicalColumnKey(k) === path[3]);
    if (columnKey !== undefined) out[3] = columnKey;
  }
  return out;
}

/** A ConfigError at the problems' lines in policy.yaml (read again only to find them). */
export function policyConfigError(file: string, problems: readonly PolicyProblem[]): ConfigError {
  const source = YamlSource.read(file);
  const issues: ConfigIssue[] = problems.map((p) => {
    const path = writtenPath(source.data, p.path);
    const { line, column } = source.ok ? source.position(path, 'key') : { line: 1, column: 1 };
    return { file, line, column, path: formatPath(path), message: p.message };
  });
  return new ConfigError(issues);
}

/**
 * The policy compiled as serve, reload and explain use it; a compile problem
 * becomes the same file:line:col ConfigError `pgveil check` reports (the
 * loader runs the same compileTables, so the two cannot disagree).
 */
export function compileCheckedPolicy(policy: PolicyFile, users: UsersFile, generation: number): CompiledPolicy {
  try {
    return compilePolicy(policy, users, generation);
  } catch (err) {
    throw err instanceof PolicyCompileError ? policyConfigError(policy.file, err.located) : err;
  }
}

/** Throws the problems upstreamPolicyProblems finds as one ConfigError at their lines. */
export function checkAgainstUpstream(compiled: CompiledPolicy, catalog: Catalog, policyFile: string): void {
  const problems = upstreamPolicyProblems(compiled, catalog);
  if (problems.length) throw policyConfigError(policyFile, problems);
}
