// Per-session policy state around the engine: the user's profile for the
// current generation, the upstream session's real search_path, and the
// prepared statements and portals upstream holds (threats A2, A8, C3 in docs/threat-model.md). A
// session decides a statement only through its gate, which counts it in
// the statement metrics.
//
// search_path is taken from upstream, never assumed: at session start from
// its ParameterStatus (PostgreSQL 18 reports it) or by asking it; after a
// statement that may change or undo it, from the next ParameterStatus (18)
// or by asking again once that statement's cycle is over (14–17). Until
// then the session holds the client's next query cycle, and statements in
// the same cycle may not name relations without their schema.
import type { UsersFile } from '../config/types.js';
import { parseSearchPath } from '../catalog/resolve.js';
import type { Profile } from '../policy/types.js';
import { PgError, SqlState } from '../errors.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import type { ObjectEffect, ObjectKind } from './effects.js';
import { applicationNamePrefix, type DecisionEngine, type Decision } from './engine.js';
import type { ShadowHook } from './shadow.js';
import { decisionLabel } from './decision-compare.js';
import { reservedStatementName } from './reserved-names.js';
import { Confirmation, shownName, upstreamKey, UpstreamObjects, type PendingChange, type Stamp } from './upstream-objects.js';

/** known: as upstream has it; settling: a change is in flight; probe/probing: asking upstream; lost: could not ask. */
type PathState = 'known' | 'settling' | 'probe' | 'probing' | 'lost';

/** What an Execute's audit record says of the statement it runs: its Parse's decision (with relations and fingerprint) and text. */
export interface ExecutedStatement {
  readonly decided?: Allowed;
  readonly text?: string;
}

interface ParsedStatement extends Stamp, ExecutedStatement {
  endsTransaction: boolean;
  /** Objects running it uses (a prepared `EXECUTE p`): checked when it is bound and executed. */
  uses?: ReadonlyArray<{ kind: ObjectKind; key: string }>;
}

type Allowed = Exclude<Decision, { kind: 'refuse' }>;

/** The statement counters and the analysis-time histogram the gate feeds. */
export type StatementMetrics = Pick<ProxyMetrics, 'statements' | 'analysisSeconds'>;

export interface InitialSearchPath {
  value: string;
  /** Upstream reports changes as ParameterStatus (PostgreSQL 18 and later). */
  reported: boolean;
}

export class StatementGate {
  readonly objects = new UpstreamObjects();
  private searchPathText: string;
  private searchPath: string[];
  private pathState: PathState = 'known';
  private reported: boolean;
  /** The cycle after whose ReadyForQuery search_path must be read again. */
  private settleCycle = -1;
  /** The open transaction ran something that may have changed search_path: its end may undo that. */
  private txTouchedPath = false;
  /** Query cycles (a Query, or extended messages up to Sync) sent, and answered with ReadyForQuery. */
  private cyclesSent = 0;
  private cyclesDone = 0;
  /** Executes sent in the current cycle: the index of the next one's completion. */
  private executesSent = 0;
  private profile?: Profile;
  private profileGeneration = -1;
  /** `pgveil:<user>:`, kept in front of application_name values the user sets. */
  private readonly applicationNamePrefix: string;
  /** Set when a shadow policy runs: handed each decision of the active policy after it is made (shadow.ts). */
  shadow?: ShadowHook;
  /** When the last decide() finished (performance.now()): the statement goes upstream right after. */
  decidedAt = 0;
  /** The statement the last allowed Execute runs; undefined when upstream may bind one of several. */
  lastExecuted?: ExecutedStatement;

  constructor(
    private readonly engine: DecisionEngine,
    private readonly userName: string,
    private readonly users: () => UsersFile,
    private readonly metrics: StatementMetrics,
    initial: InitialSearchPath,
  ) {
    this.applicationNamePrefix = applicationNamePrefix(userName);
    this.reported = initial.reported;
    this.searchPathText = initial.value;
    try {
      this.searchPath = parseSearchPath(initial.value);
    } catch {
      this.searchPath = [];
      this.pathState = 'lost'; // unparseable: unqualified names refused until upstream says otherwise
    }
  }

  // ── search_path ──────────────────────────────────────────────────────────

  onParameterStatus(name: string, value: string): void {
    if (name !== 'search_path') return;
    this.reported = true;
    this.setPath(value);
  }

  /** The client's next cycle must wait: search_path may have changed and upstream has not said to what. */
  get mustHold(): boolean {
    return this.pathState === 'settling' || this.pathState === 'probe' || this.pathState === 'probing';
  }

  /** True when the session should now ask upstream for search_path (nothing else is in flight). */
  get wantsProbe(): boolean {
    return this.pathState === 'probe' && this.cyclesDone === this.cyclesSent;
  }

  probeSent(): void { this.pathState = 'probing'; }

  /** The answer to `current_setting('search_path')`; undefined when it failed (an aborted transaction). */
  probeAnswered(value: string | undefined, idle: boolean): void {
    if (value === undefined) { this.pathState = 'lost'; return; }
    this.pathState = 'known';
    this.setPath(value);
    if (idle) this.txTouchedPath = false;
  }

  private setPath(value: string): void {
    if (value === this.searchPathText && this.pathState !== 'lost') return;
    try {
      this.searchPath = parseSearchPath(value);
      this.searchPathText = value;
    } catch {
      this.pathState = 'lost';
    }
  }

  private pathMayChange(cycle: number): void {
    this.settleCycle = Math.max(this.settleCycle, cycle);
    this.pathState = 'settling';
    this.txTouchedPath = true;
  }

  // ── cycles and upstream's answers ────────────────────────────────────────

  cycleSent(): void {
    this.cyclesSent++;
    this.executesSent = 0;
  }

  /** ReadyForQuery. */
  cycleDone(idle: boolean): void {
    const cycle = this.cyclesDone++;
    this.objects.cycleEnded(cycle, idle);
    if (this.pathState === 'settling' && cycle >= this.settleCycle) {
      if (this.reported) this.pathState = 'known'; // ParameterStatus, if it changed, came before ReadyForQuery
      else this.pathState = 'probe';
    } else if (this.pathState === 'lost' && idle) {
      this.pathState = 'probe';
    }
    if (idle && this.pathState === 'known') this.txTouchedPath = false;
  }

  confirmed(confirmation: Confirmation): void { this.objects.confirmMessage(confirmation); }

  /** CommandComplete or EmptyQueryResponse (`completed`), or PortalSuspended. */
  completion(completed: boolean): void { this.objects.completion(this.cyclesDone, completed); }

  /** ErrorResponse: the rest of the current cycle is skipped upstream. */
  failed(): void { this.objects.failed(this.cyclesDone); }

  // ── decisions ────────────────────────────────────────────────────────────

  /** A simple Query (`statementName` undefined) or a protocol Parse: decided, timed from `started` (performance.now()) and counted. */
  decide(sql: string, statementName: string | undefined, started: number, parameterTypes = ''): Decision {
    const decision = statementName === undefined ? this.decideQuery(sql) : this.decideParse(statementName, sql, parameterTypes);
    this.decidedAt = performance.now();
    this.metrics.analysisSeconds.observe((this.decidedAt - started) / 1000);
    this.metrics.statements.count(decisionLabel(decision));
    return decision;
  }

  /** A simple Query: its statements' effects on prepared statements and cursors checked and recorded. */
  private decideQuery(sql: string): Decision {
    const decision = this.decideText(sql);
    if (decision.kind === 'refuse' || !decision.effects) return decision;
    const cycle = this.cyclesSent;
    const { objects, changesSearchPath, endsTransaction } = decision.effects;
    const made: Array<PendingChange & { statement: number }> = [];
    let runsPathChange = changesSearchPath || (endsTransaction && this.mayUndoPath());
    for (const effect of objects) {
      const reserved = effect.kind === 'statement' ? reservedStatementName(effect.name) : undefined;
      if (reserved) return { kind: 'refuse', error: reserved };
      const key = upstreamKey(effect.name ?? '');
      if (effect.op === 'use') {
        const local = findLast(made, effect.kind, key);
        const stamps = local ? (local.stamp ? [local.stamp] : []) : this.objects.possible(effect.kind, key, cycle);
        const problem = this.checkUsable(effect.kind, key, stamps, effect.kind === 'statement');
        if (problem) return { kind: 'refuse', error: problem };
        if (stamps.some((s) => s.changesSearchPath)) runsPathChange = true;
        continue;
      }
      made.push({ ...this.changeOf(effect, decision), statement: effect.statement });
    }
    for (const change of made) this.objects.sentStatement(cycle, change.statement, [change]);
    if (runsPathChange) this.pathMayChange(cycle);
    return decision;
  }

  /** Protocol Parse: the statement's stamp is recorded once upstream answers ParseComplete. */
  private decideParse(name: string, sql: string, parameterTypes: string): Decision {
    const reserved = reservedStatementName(name);
    if (reserved) return { kind: 'refuse', error: reserved };
    const decision = this.decideText(sql, parameterTypes);
    if (decision.kind === 'refuse') return decision;
    const effects = decision.effects;
    const hasObjects = Boolean(effects?.objects.length);
    // Built whole in one literal: one object shape for every Parse (no spread, no fields added later).
    const stamp: ParsedStatement = {
      generation: this.engine.generation,
      searchPath: this.searchPathText,
      usesSearchPath: decision.usesSearchPath ?? true,
      changesSearchPath: effects?.changesSearchPath ?? false,
      holdable: false,
      runs: hasObjects ? effects!.objects.filter((e) => e.op !== 'use').map((e) => this.changeOf(e, decision)) : undefined,
      endsTransaction: effects?.endsTransaction ?? false,
      decided: decision,
      text: sql,
      uses: hasObjects ? effects!.objects.filter((e) => e.op === 'use').map((e) => ({ kind: e.kind, key: upstreamKey(e.name ?? '') })) : undefined,
    };
    this.objects.sentMessage(Confirmation.Parse, this.cyclesSent, { kind: 'statement', key: upstreamKey(name), stamp });
    return decision;
  }

  /**
   * Protocol Bind: refused unless every statement upstream may bind is known
   * and was rewritten under the current policy and search_path (Postgres
   * re-resolves a prepared statement's names when search_path changes).
   */
  bind(statement: string, portal: string): PgError | undefined {
    const reserved = reservedStatementName(statement);
    if (reserved) return reserved;
    const key = upstreamKey(statement);
    const stamps = this.objects.possible('statement', key, this.cyclesSent) as ParsedStatement[];
    const problem = this.checkUsable('statement', key, stamps, true) ?? this.checkUses(stamps);
    if (problem) return problem;
    if (stamps.length > 1 && stamps.some((s) => s.runs || s.uses)) {
      return new PgError(SqlState.InsufficientPrivilege, `cannot bind prepared statement "${shownName(key)}" while an earlier change of it is unconfirmed`, { hint: 'Sync first.' });
    }
    // Every possible statement is fresh; a portal is checked only for its generation, so one stamp serves.
    const stamp: ParsedStatement = stamps.length === 1 ? stamps[0] : {
      generation: this.engine.generation,
      searchPath: this.searchPathText,
      usesSearchPath: false,
      changesSearchPath: stamps.some((s) => s.changesSearchPath),
      holdable: false,
      runs: undefined,
      endsTransaction: stamps.some((s) => s.endsTransaction),
      decided: undefined,
      text: undefined,
      uses: undefined,
    };
    this.objects.sentMessage(Confirmation.Bind, this.cyclesSent, { kind: 'portal', key: upstreamKey(portal), stamp });
    return undefined;
  }

  /** Protocol Execute of a portal (a protocol portal or a SQL cursor). */
  execute(portal: string): PgError | undefined {
    const key = upstreamKey(portal);
    const cycle = this.cyclesSent;
    const stamps = this.objects.possible('portal', key, cycle) as ParsedStatement[];
    const problem = this.checkUsable('portal', key, stamps, false) ?? this.checkUses(stamps);
    if (problem) return problem;
    const index = this.executesSent++;
    this.lastExecuted = stamps.length === 1 ? stamps[0] : undefined;
    const runs = stamps.length === 1 ? stamps[0].runs : undefined;
    if (runs) this.objects.sentStatement(cycle, index, runs);
    const usedChange = stamps.some((s) => s.uses?.some((u) => this.objects.possible(u.kind, u.key, cycle).some((p) => p.changesSearchPath)));
    if (usedChange || stamps.some((s) => s.changesSearchPath || (s.endsTransaction && this.mayUndoPath()))) this.pathMayChange(cycle);
    return undefined;
  }

  /** Protocol Close of a statement or portal: forgotten once upstream answers CloseComplete. */
  close(kind: ObjectKind, name: string): void {
    this.objects.sentMessage(Confirmation.Close, this.cyclesSent, { kind, key: upstreamKey(name) });
  }

  private mayUndoPath(): boolean {
    return this.txTouchedPath || this.pathState !== 'known';
  }

  /** What a statement decided now is stamped with: the current policy and search_path. */
  private stampOf(decision: Allowed, holdable: boolean): Stamp {
    return {
      generation: this.engine.generation,
      searchPath: this.searchPathText,
      usesSearchPath: decision.usesSearchPath ?? true,
      changesSearchPath: decision.effects?.changesSearchPath ?? false,
      holdable,
    };
  }

  /** The record change a create or drop makes once upstream confirms it (a drop of `null`: every object of the kind). */
  private changeOf(effect: ObjectEffect, decision: Allowed): PendingChange {
    return {
      kind: effect.kind,
      key: effect.op === 'drop' && effect.name === null ? null : upstreamKey(effect.name ?? ''),
      stamp: effect.op === 'create' ? this.stampOf(decision, effect.holdable) : undefined,
    };
  }

  private checkUses(stamps: ParsedStatement[]): PgError | undefined {
    for (const s of stamps) {
      for (const u of s.uses ?? []) {
        const problem = this.checkUsable(u.kind, u.key, this.objects.possible(u.kind, u.key, this.cyclesSent), u.kind === 'statement');
        if (problem) return problem;
      }
    }
    return undefined;
  }

  /**
   * An object is usable when upstream may hold it in no state but fresh ones:
   * made under the current policy and, for a statement that names relations
   * without their schema, under the current (and settled) search_path.
   */
  private checkUsable(kind: ObjectKind, key: string, stamps: readonly Stamp[], statement: boolean): PgError | undefined {
    if (!stamps.length) return new PgError(kind === 'portal' ? '34000' : '26000', `${described(kind, key)} does not exist`);
    for (const s of stamps) {
      if (s.generation !== this.engine.generation) return stale(kind, described(kind, key), 'an older policy');
      if (statement && s.usesSearchPath) {
        if (this.pathState !== 'known') {
          return new PgError(SqlState.InsufficientPrivilege, `cannot use ${described(kind, key)} while search_path is changing`, {
            hint: 'Postgres would re-resolve its names under the new search_path; Sync after the SET first.',
          });
        }
        if (s.searchPath !== this.searchPathText) return stale(kind, described(kind, key), 'another search_path');
      }
    }
    return undefined;
  }

  private decideText(sql: string, parameterTypes = ''): Decision {
    const profile = this.currentProfile();
    if (!profile) return { kind: 'refuse', error: new PgError(SqlState.InvalidAuthorizationSpecification, `user "${this.userName}" no longer exists`) };
    const known = this.pathState === 'known';
    const decision = this.engine.decide(sql, profile, this.searchPath, this.searchPathText, known, this.applicationNamePrefix, parameterTypes);
    this.shadow?.(sql, decision, this.searchPath, this.searchPathText, known);
    return decision;
  }

  private currentProfile(): Profile | undefined {
    if (this.profileGeneration !== this.engine.generation) {
      const account = this.users().users.get(this.userName);
      this.profile = account && !account.disabled ? this.engine.profileFor(account) : undefined;
      this.profileGeneration = this.engine.generation;
    }
    return this.profile;
  }
}

function findLast(made: ReadonlyArray<PendingChange>, kind: ObjectKind, key: string): PendingChange | undefined {
  for (let i = made.length - 1; i >= 0; i--) if (made[i].kind === kind && (made[i].key === key || made[i].key === null)) return made[i];
  return undefined;
}

/** The object as an error message names it (made only for an error: Bind and Execute check objects on every statement). */
function described(kind: ObjectKind, key: string): string {
  return kind === 'portal' ? `cursor "${shownName(key)}"` : `prepared statement "${shownName(key)}"`;
}

function stale(kind: ObjectKind, what: string, under: string): PgError {
  return new PgError('26000', `${what} was made under ${under} and cannot be used`, {
    hint: kind === 'portal' ? 'Declare the cursor again.' : 'Prepare the statement again (DEALLOCATE it first, or use a new name).',
  });
}
