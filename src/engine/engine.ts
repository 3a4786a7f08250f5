// The one place a statement is decided. The policy every session applies
// is one immutable snapshot per generation: the compiled policy, the
// upstream catalog it was checked against, and the rewrite cache. A reload
// builds the next snapshot aside and swaps it in one assignment; an invalid
// one leaves the old in place. `decide` is the cached path sessions use;
// `explain` the uncached one with the full outcome (pgveil explain), both
// over the same snapshot and the same rewrite input.
import type { Config, PolicyFile, User, UsersFile } from '../config/types.js';
import type { Catalog } from '../catalog/types.js';
import { loadCatalog } from '../catalog/load.js';
import { profileFor, type CompiledPolicy } from '../policy/compile.js';
import { checkAgainstUpstream, compileCheckedPolicy } from '../policy/check.js';
import type { Profile } from '../policy/types.js';
import { RewriteCache } from '../cache/rewrite-cache.js';
import { scanShape } from '../cache/shape.js';
import { fillTemplate, makeTemplate, slotsFromMap, type Template } from '../cache/template.js';
import { parameterForm, type ParameterForm } from '../cache/parameter-form.js';
import { lengthRefusal } from '../rewrite/budget.js';
import { rewriteSql, type Outcome, type StatementRules } from '../rewrite/rewrite.js';
import { effectsOf, type SessionEffects } from './effects.js';
import { auditFactsOf, warmFingerprint, type AuditFacts, type AuditFactsWanted } from './audit-facts.js';
import { openServiceClient } from '../upstream/service-client.js';
import { checkScrambleHelpers, policyUsesKeyedMasks, UpstreamSetupError } from '../policy/scramble-install.js';
import { SealedValueError } from '../secrets/seal.js';
import { PgError, SqlState } from '../errors.js';
import type { Logger } from '../observe/log.js';

/** The upstream could not be reached to read its catalog (retryable, unlike a bad policy). */
export class CatalogUnavailableError extends Error {}

export interface Snapshot {
  generation: number;
  compiled: CompiledPolicy;
  catalog: Catalog;
  /** functions.allow and channels.listen, for every statement's analysis. */
  rules: StatementRules;
}

type Forwarded = Extract<Outcome, { kind: 'forward' }>;
type Rewritten = Extract<Outcome, { kind: 'rewrite' }>;
type Refused = Extract<Outcome, { kind: 'refuse' }>;

/**
 * What an allowed decision carries besides its kind, taken from the
 * outcome: its effects on the session (rare: absent on the hot path) and
 * whether it names a relation without its schema.
 */
type AllowedFacts = Pick<Outcome, 'usesSearchPath'> & { effects?: SessionEffects } & AuditFacts;

/**
 * A rewrite of a cached shape whose constants may all go upstream as
 * parameters: the session may run it as a prepared statement of `form.text`
 * with the statement's `constants` (its shape's) bound in `form.order`.
 */
export interface Reusable { form: ParameterForm; constants: Int32Array }

/** What the session does with a statement (with what its audit record says of it, when there is an audit log). */
export type Decision =
  | (Pick<Forwarded, 'kind'> & AllowedFacts)
  | (Pick<Rewritten, 'kind' | 'sql'> & AllowedFacts & { reusable?: Reusable; /** one plain SELECT (see Rewritten.plainSelect) */ plainSelect?: boolean })
  | (Pick<Refused, 'kind' | 'error'> & AuditFacts);

/** A decision as the cache holds it: a rewrite cached by shape is a template, filled per text. */
type Cached = Decision | ({ kind: 'template'; template: Template; form?: ParameterForm; plainSelect: boolean } & AllowedFacts);

/** The application_name prefix a user's sessions keep (`pgveil:<user>:`). */
export function applicationNamePrefix(userName: string): string {
  return `pgveil:${userName}:`;
}

export class DecisionEngine {
  private snapshot?: Snapshot;
  readonly cache: RewriteCache<Cached>;
  /** Last catalog failure, for /readyz and for refusals while none is loaded. */
  catalogError?: string;
  /** Called with the reason whenever the verifier catches an analyzer gap. */
  onVerifierRefusal?: (detail: string) => void;

  /** What cached decisions carry for audit records (see audit-facts.ts). */
  private readonly auditFacts: AuditFactsWanted;

  constructor(private readonly config: Config, private readonly upstreamPassword: string | undefined, private readonly logger: Logger) {
    this.cache = new RewriteCache<Cached>(config.cache.maxEntries, config.cache.maxBytes);
    this.auditFacts = !config.audit ? 'none' : config.audit.statements === 'fingerprint' ? 'fingerprint' : 'relations';
    if (this.auditFacts === 'fingerprint') warmFingerprint();
  }

  get current(): Snapshot | undefined {
    return this.snapshot;
  }

  get generation(): number {
    return this.snapshot?.generation ?? 0;
  }

  /**
   * Compiles users + policy, reads the catalog for it, checks every mask
   * against its column's type, and swaps the result in. Throws (leaving the
   * active snapshot untouched) when anything is wrong. With `share` (the
   * shadow policy loading beside the active one), that snapshot's catalog is
   * reused when both protect the same relations (what the catalog is read
   * for), so upstream is not read twice; otherwise this engine reads its own.
   */
  async load(users: UsersFile, policy: PolicyFile, share?: Snapshot): Promise<Snapshot> {
    const generation = this.generation + 1;
    const compiled = compileCheckedPolicy(policy, users, generation);
    const shared = share && sameRelations(share.compiled, compiled) ? share.catalog : undefined;
    let catalog: Catalog;
    try {
      if (shared && !policyUsesKeyedMasks(compiled)) catalog = shared;
      else {
        const client = await openServiceClient(this.config.upstream, this.upstreamPassword);
        try {
          catalog = shared ?? await loadCatalog(client, { protectedRelations: [...compiled.tables.keys()], serviceRole: this.config.upstream.user });
          await checkScrambleHelpers(client, compiled, policy, this.config.secrets, this.config.file);
        } finally {
          await client.end().catch(() => {});
        }
      }
    } catch (err) {
      // Too old an upstream, helpers missing, a sealed key that does not open: retrying cannot help.
      if (err instanceof UpstreamSetupError || err instanceof SealedValueError) throw err;
      this.catalogError = err instanceof Error ? err.message : String(err);
      throw new CatalogUnavailableError(`could not read the upstream catalog: ${this.catalogError}`);
    }
    checkAgainstUpstream(compiled, catalog, policy.file);
    const rules: StatementRules = { allowedFunctions: new Set(policy.functions?.allow ?? []), listenChannels: new Set(policy.channels?.listen ?? []) };
    const next: Snapshot = { generation, compiled, catalog, rules };
    this.snapshot = next;
    this.catalogError = undefined;
    this.cache.newGeneration(generation);
    return next;
  }

  profileFor(user: User): Profile | undefined {
    return this.snapshot ? profileFor(this.snapshot.compiled, user) : undefined;
  }

  /**
   * The full outcome for one statement, uncached and with the rules applied
   * and the relations touched: what `decide` would act on, for an operator
   * (pgveil explain) or a tool comparing policies. Undefined before a load.
   */
  explain(sql: string, profile: Profile, searchPath: string[], applicationNamePrefix?: string): Outcome | undefined {
    const snapshot = this.snapshot;
    return snapshot ? rewrite(snapshot, sql, profile, searchPath, true, applicationNamePrefix) : undefined;
  }

  /**
   * The decision for one statement: a cache hit costs a shape scan and a map
   * lookup; a miss parses, analyses, splices and verifies. The only decide:
   * sessions reach it through their StatementGate.
   */
  decide(sql: string, profile: Profile, searchPath: string[], searchPathKey: string, searchPathKnown: boolean, applicationNamePrefix?: string, parameterTypes = ''): Decision {
    const snapshot = this.snapshot;
    if (!snapshot) {
      return { kind: 'refuse', error: new PgError(SqlState.CannotConnectNow, 'pgveil has not read the upstream catalog yet', { hint: 'The upstream server may be unreachable; try again shortly.' }) };
    }
    // Over the length budget: refused before the shape scan, and never cached (threat E2).
    const tooLong = lengthRefusal(sql);
    if (tooLong) return { kind: 'refuse', error: tooLong };
    const gen = snapshot.generation;
    // Declared parameter types can change the rewrite (pushdown.ts, fence.ts): their own cache entries.
    const spKey = (searchPathKnown ? searchPathKey : '\u0001') + (parameterTypes ? `\u0002${parameterTypes}` : '');
    const shape = scanShape(sql);
    if (shape) {
      const hit = this.cache.getShape(gen, profile.key, spKey, shape.key);
      if (hit?.kind === 'template') {
        return {
          kind: 'rewrite', sql: fillTemplate(hit.template, sql, shape), effects: hit.effects, usesSearchPath: hit.usesSearchPath,
          relations: hit.relations, fingerprint: hit.fingerprint, reusable: hit.form ? { form: hit.form, constants: shape.constants } : undefined,
          plainSelect: hit.plainSelect,
        };
      }
      if (hit?.kind === 'forward') return hit;
    }
    const exact = this.cache.getExact(gen, profile.key, spKey, sql);
    if (exact) return exact.kind === 'template' ? { kind: 'refuse', error: internalError() } : exact;

    const started = performance.now();
    const outcome = rewrite(snapshot, sql, profile, searchPath, searchPathKnown, applicationNamePrefix, parameterTypes);
    this.cache.recordMiss(performance.now() - started);
    const effects = effectsOf(outcome);
    const usesSearchPath = outcome.usesSearchPath;
    // Texts of one shape differ only in constants, which neither the relations nor the fingerprint depend on.
    const { relations, fingerprint } = auditFactsOf(outcome, sql, this.auditFacts);
    if (outcome.perUser && outcome.kind === 'rewrite') return { kind: 'rewrite', sql: outcome.sql, effects, usesSearchPath, relations, fingerprint };
    if (outcome.kind === 'refuse') {
      if (outcome.internal) this.onVerifierRefusal?.(outcome.internal);
      const cached: Cached = { kind: 'refuse', error: outcome.error, relations, fingerprint };
      this.cache.setExact(gen, profile.key, spKey, sql, cached);
      return cached;
    }
    if (outcome.kind === 'forward') {
      const cached: Cached = { kind: 'forward', effects, usesSearchPath, relations, fingerprint };
      if (shape && outcome.shapeSafe) this.cache.setShape(gen, profile.key, spKey, shape.key, cached);
      else this.cache.setExact(gen, profile.key, spKey, sql, cached);
      return cached;
    }
    const rewritten: Decision = { kind: 'rewrite', sql: outcome.sql, effects, usesSearchPath, relations, fingerprint, plainSelect: outcome.plainSelect };
    if (shape && outcome.shapeSafe) {
      try {
        const template = makeTemplate(outcome.sql, slotsFromMap(shape, outcome.mapIndex), { sql, shape });
        const form = outcome.parameterSafe ? parameterForm(template, shape, outcome.parameterSafe) : undefined;
        this.cache.setShape(gen, profile.key, spKey, shape.key, { kind: 'template', template, form, plainSelect: outcome.plainSelect, effects, usesSearchPath, relations, fingerprint });
        if (form) rewritten.reusable = { form, constants: shape.constants };
        return rewritten;
      } catch (err) {
        this.logger.warn('rewrite not cacheable by shape', { error: err instanceof Error ? err.message : String(err) });
      }
    }
    this.cache.setExact(gen, profile.key, spKey, sql, rewritten);
    return rewritten;
  }
}

/** The rewrite input both paths build, from one snapshot: they can never disagree. */
function rewrite(snapshot: Snapshot, sql: string, profile: Profile, searchPath: string[], searchPathKnown: boolean, applicationNamePrefix?: string, parameterTypes = ''): Outcome {
  return rewriteSql(sql, { profile, catalog: snapshot.catalog, searchPath, searchPathKnown, rules: snapshot.rules, applicationNamePrefix, parameterTypes });
}

/** Both policies protect the same relations: the catalog read for one serves the other. */
function sameRelations(a: CompiledPolicy, b: CompiledPolicy): boolean {
  if (a.tables.size !== b.tables.size) return false;
  for (const key of a.tables.keys()) if (!b.tables.has(key)) return false;
  return true;
}

function internalError(): PgError {
  return new PgError(SqlState.InternalError, 'internal error in pgveil', { hint: 'The pgveil log has the details.' });
}
