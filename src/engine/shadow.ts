// The shadow policy (`shadow:` in pgveil.yaml): a candidate policy every
// statement is also decided under, never enforced and never sent upstream.
// The active decision is made and acted on exactly as without a shadow; the
// session only hands it here afterwards. The candidate decides later, off
// the session's path (a bounded queue drained on the event loop's check
// phase), with its own decision engine and rewrite cache over the active
// policy's catalog when both protect the same relations. Differences are
// counted (pgveil_shadow_differences_total{kind}) and written to the audit
// log; nothing of the candidate ever reaches the client.
import { fingerprintSync } from 'libpg-query';
import type { Config, PolicyFile, User, UsersFile } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { noAudit, type AuditEvent, type AuditSink } from '../audit/record.js';
import type { Profile } from '../policy/types.js';
import type { StatementRules } from '../rewrite/rewrite.js';
import { applicationNamePrefix, DecisionEngine, type Decision, type Snapshot } from './engine.js';
import { decisionLabel, differenceOf, refusalText, ruleChanges, type DifferenceKind } from './decision-compare.js';

/** Statements waiting for their candidate decision; past this, new ones are skipped (and counted). */
const QUEUE_LIMIT = 1024;
/** Candidate decisions per turn of the event loop, so sessions' I/O runs in between. */
const BATCH = 32;

/** Called by a session's statement gate with each decision of the active policy, after it is made. */
export type ShadowHook = (sql: string, active: Decision, searchPath: string[], searchPathText: string, searchPathKnown: boolean) => void;

export interface ShadowDeps {
  config: Config;
  upstreamPassword: string | undefined;
  logger: Logger;
  metrics: Pick<ProxyMetrics, 'shadowDifferences' | 'shadowSkipped' | 'shadowGeneration'>;
  /** Where differences are recorded (the proxy's audit log, or noAudit). */
  audit: AuditSink;
  /** The engine the sessions' statements are decided and enforced by. */
  active: DecisionEngine;
}

interface Job {
  sql: string;
  session: string;
  user: User;
  candidate: Profile;
  searchPath: string[];
  searchPathText: string;
  searchPathKnown: boolean;
  prefix: string;
  active: Decision;
  /** The two snapshots the job was queued under: a reload in between drops it. */
  activeSnapshot: Snapshot;
  shadowSnapshot: Snapshot;
}

/** Per user: the candidate profile, or undefined when the candidate cannot decide anything differently for them. */
interface Verdict { activeSnapshot: Snapshot; shadowSnapshot: Snapshot; candidate?: Profile }

export class ShadowPolicy {
  readonly engine: DecisionEngine;
  private queue: Job[] = [];
  private scheduled = false;
  private closed = false;
  private readonly verdicts = new WeakMap<User, Verdict>();

  constructor(private readonly deps: ShadowDeps) {
    this.engine = new DecisionEngine(deps.config, deps.upstreamPassword, deps.logger);
    this.engine.onVerifierRefusal = (detail) => deps.logger.warn('rewrite verification refused a statement under the shadow policy (analyzer gap)', { relation: detail });
  }

  get generation(): number {
    return this.engine.generation;
  }

  /**
   * Compiles the candidate and checks it against upstream as a policy load
   * does, over the active policy's catalog when it fits; throws (the previous
   * candidate stays) when anything is wrong. Call after the active policy loaded.
   */
  async load(users: UsersFile, policy: PolicyFile): Promise<void> {
    await this.engine.load(users, policy, this.deps.active.current);
    this.deps.metrics.shadowGeneration.set(this.engine.generation);
  }

  /** The hook one session's gate calls; `session` is the session id audit records name. */
  forSession(userName: string, users: () => UsersFile, session: string): ShadowHook {
    const prefix = applicationNamePrefix(userName);
    return (sql, active, searchPath, searchPathText, searchPathKnown) => {
      if (this.closed) return;
      const user = users().users.get(userName);
      const verdict = user && this.verdictFor(user);
      if (!user || !verdict?.candidate) return;
      if (this.queue.length >= QUEUE_LIMIT) {
        this.deps.metrics.shadowSkipped.inc();
        return;
      }
      this.queue.push({
        sql, session, user, candidate: verdict.candidate, searchPath, searchPathText, searchPathKnown, prefix, active,
        activeSnapshot: verdict.activeSnapshot, shadowSnapshot: verdict.shadowSnapshot,
      });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    };
  }

  /** Stops deciding: queued statements are dropped. */
  close(): void {
    this.closed = true;
    this.queue = [];
  }

  /**
   * Whether the candidate can decide anything differently for this user,
   * worked out once per user and pair of snapshots: over the same catalog,
   * with the same function and channel rules and an equal profile, every
   * decision is the same, and the user's statements are not queued at all.
   */
  private verdictFor(user: User): Verdict | undefined {
    const activeSnapshot = this.deps.active.current;
    const shadowSnapshot = this.engine.current;
    if (!activeSnapshot || !shadowSnapshot) return undefined;
    const memo = this.verdicts.get(user);
    if (memo?.activeSnapshot === activeSnapshot && memo.shadowSnapshot === shadowSnapshot) return memo;
    const activeProfile = this.deps.active.profileFor(user)!;
    const candidate = this.engine.profileFor(user)!;
    // Profile keys are short hashes; the canonical content behind each is compared, not the key.
    const same = activeSnapshot.catalog === shadowSnapshot.catalog
      && sameRules(activeSnapshot.rules, shadowSnapshot.rules)
      && activeSnapshot.compiled.keys.get(activeProfile.key) === shadowSnapshot.compiled.keys.get(candidate.key);
    const verdict: Verdict = { activeSnapshot, shadowSnapshot, candidate: same ? undefined : candidate };
    this.verdicts.set(user, verdict);
    return verdict;
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, BATCH);
    for (const job of batch) {
      try {
        this.decide(job);
      } catch (err) {
        this.deps.logger.error('shadow policy could not decide a statement', { user: job.user.name, error: err instanceof Error ? err.message : String(err) });
      }
    }
    if (this.queue.length && !this.closed) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private decide(job: Job): void {
    if (job.activeSnapshot !== this.deps.active.current || job.shadowSnapshot !== this.engine.current) {
      this.deps.metrics.shadowSkipped.inc(); // the pair of decisions would not describe one moment
      return;
    }
    const candidate = this.engine.decide(job.sql, job.candidate, job.searchPath, job.searchPathText, job.searchPathKnown, job.prefix);
    const kind = differenceOf(job.active, candidate);
    if (!kind) return;
    this.deps.metrics.shadowDifferences.inc({ kind });
    const audit = this.deps.audit;
    if (audit === noAudit) return;
    audit.record({
      event: 'shadow_difference', session: job.session, user: job.user.name, ...statementRef(audit.statements, job),
      active: decisionLabel(job.active), candidate: decisionLabel(candidate), kind, reason: this.reasonFor(job, candidate, kind),
    });
  }

  /** What the client would have met: the candidate's refusal, the active one lifted, or the rules that changed. */
  private reasonFor(job: Job, candidate: Decision, kind: DifferenceKind): string {
    if (kind === 'newly_refused' && candidate.kind === 'refuse') return refusalText(candidate.error);
    if (kind === 'newly_allowed' && job.active.kind === 'refuse') return `the active policy refuses it: ${refusalText(job.active.error)}`;
    // With an audit log the cached decisions carry the relations; otherwise (rare: only on a difference) the uncached path names them.
    let relations = [...job.active.relations ?? [], ...candidate.relations ?? []];
    if (!relations.length) relations = this.engine.explain(job.sql, job.candidate, job.searchPath, job.prefix)?.relations ?? [];
    const activeProfile = this.deps.active.profileFor(job.user);
    const changes = activeProfile ? ruleChanges(activeProfile, job.candidate, relations, { filterText: false }) : [];
    return changes.length ? changes.join('; ') : 'the rewrite differs';
  }
}

/** The statement as statement records name it: its text (statements: full), its fingerprint, or nothing. */
function statementRef(statements: AuditSink['statements'], job: Job): Pick<Extract<AuditEvent, { event: 'shadow_difference' }>, 'text' | 'fingerprint'> {
  if (statements === 'full') return { text: job.sql };
  if (statements !== 'fingerprint') return {};
  if (job.active.fingerprint) return { fingerprint: job.active.fingerprint }; // worked out once per cache entry
  try {
    return { fingerprint: fingerprintSync(job.sql) };
  } catch {
    return {}; // a text that does not parse has no fingerprint
  }
}

function sameRules(a: StatementRules, b: StatementRules): boolean {
  return sameSet(a.allowedFunctions, b.allowedFunctions) && sameSet(a.listenChannels, b.listenChannels);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
