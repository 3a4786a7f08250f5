// Per-session policy state around the rewriter: the user's profile for the
// current generation, the search_path upstream reports (PostgreSQL 18 sends
// it as ParameterStatus, so SET, SET LOCAL, RESET, rollbacks and functions
// are all reflected exactly), and which prepared statements and cursors were
// made under which policy generation (THREATS A8, C3).
import type { UsersFile } from '../config/types.js';
import { parseSearchPath } from '../catalog/resolve.js';
import type { Profile } from '../policy/types.js';
import { PgError, SqlState } from '../errors.js';
import type { ActivePolicy, Decision } from './active-policy.js';

const defaultSearchPath = '"$user", public';

interface Named {
  generation: number;
  searchPath: string;
  /** Running it may change search_path (its text has set_config, EXECUTE, FETCH …). */
  changesSearchPath: boolean;
  /** It names a relation without its schema: Postgres re-resolves it when search_path changes. */
  usesSearchPath: boolean;
  /** Cursors only: WITH HOLD survives the end of its transaction. */
  holdable: boolean;
}

export class StatementGate {
  private searchPathText = defaultSearchPath;
  private searchPath = parseSearchPath(defaultSearchPath);
  /** True once upstream has reported search_path (PostgreSQL 18+). */
  private searchPathReported = false;
  /** search_path is uncertain until this many query cycles have completed. */
  private settledAfter = 0;
  private cyclesSent = 0;
  private cyclesDone = 0;
  private profile?: Profile;
  private profileGeneration = -1;
  /**
   * Prepared statements (`statement:x`, SQL PREPARE and protocol Parse share
   * one namespace in Postgres) and portals (`cursor:x`, SQL DECLARE and
   * protocol Bind share one too) → the policy generation and search_path
   * they were rewritten under.
   */
  private readonly named = new Map<string, Named>();

  constructor(private readonly policy: ActivePolicy, private readonly userName: string, private readonly users: () => UsersFile) {}

  onParameterStatus(name: string, value: string): void {
    if (name !== 'search_path') return;
    this.searchPathReported = true;
    if (value === this.searchPathText) return;
    try {
      this.searchPath = parseSearchPath(value);
      this.searchPathText = value;
    } catch {
      this.settledAfter = Number.MAX_SAFE_INTEGER; // unparseable: stay uncertain, unqualified names refused
    }
  }

  cycleSent(): void { this.cyclesSent++; }
  cycleDone(): void { this.cyclesDone++; }

  /** The decision for one statement, with the session-state checks the cache cannot know about. */
  decide(sql: string): Decision {
    const profile = this.currentProfile();
    if (!profile) return { kind: 'refuse', error: new PgError(SqlState.InvalidAuthorizationSpecification, `user "${this.userName}" no longer exists`) };
    const known = this.cyclesDone >= this.settledAfter;
    const decision = this.policy.decide(sql, profile, this.searchPath, this.searchPathText, known, `pgveil:${this.userName}:`);
    if (decision.kind === 'refuse' || !decision.effects) return decision;
    const effects = decision.effects;
    if (effects.changesSearchPath && !this.searchPathReported) {
      return refuse('changing search_path needs an upstream that reports it (PostgreSQL 18 or later)', 'Schema-qualify table names instead.');
    }
    for (const name of effects.uses) {
      const problem = this.checkUse(name);
      if (problem) return { kind: 'refuse', error: problem };
    }
    for (const name of effects.creates) {
      // Postgres refuses an existing name (42P05/42P03) and keeps the old object: so must pgveil's bookkeeping.
      if (this.named.has(name.replace(/^holdable-/, '')) && !effects.drops.includes(name)) return duplicate(name.replace(/^holdable-/, ''));
    }
    for (const name of effects.drops) this.drop(name);
    for (const name of effects.creates) {
      this.remember(name.replace(/^holdable-/, ''), effects.changesSearchPath, name.startsWith('holdable-'), decision.usesSearchPath ?? true);
    }
    for (const name of effects.uses) if (this.named.get(name)?.changesSearchPath) this.settledAfter = this.cyclesSent + 1;
    // The change takes effect upstream when the current cycle completes.
    if (effects.changesSearchPath) this.settledAfter = this.cyclesSent + 1;
    return decision;
  }

  /** Protocol-level Parse: refused for an existing name (Postgres keeps the old statement); else remembered. */
  parse(statement: string, changesSearchPath: boolean, usesSearchPath: boolean): PgError | undefined {
    if (statement && this.named.has(`statement:${statement}`)) return duplicate(`statement:${statement}`).error;
    this.remember(`statement:${statement}`, changesSearchPath, false, usesSearchPath);
    return undefined;
  }

  /**
   * Protocol-level Bind: refused when its statement was rewritten under an
   * older policy, or under another search_path (Postgres re-resolves a
   * prepared statement's names when search_path changes; pgveil's rewrite
   * would no longer match). The portal it creates is remembered.
   */
  bind(statement: string, portal: string): PgError | undefined {
    if (this.cyclesDone < this.settledAfter && statement && this.named.get(`statement:${statement}`)?.usesSearchPath !== false) {
      return new PgError(SqlState.InsufficientPrivilege, `cannot bind prepared statement "${statement}" while search_path is changing`, {
        hint: 'Postgres would re-resolve its names under the new search_path; Sync after the SET first.',
      });
    }
    const problem = this.checkUse(`statement:${statement}`);
    if (problem) return problem;
    const changes = this.named.get(`statement:${statement}`)?.changesSearchPath ?? false;
    this.remember(`cursor:${portal}`, changes, false);
    return undefined;
  }

  /** Protocol-level Execute of a portal (possibly a SQL cursor). */
  execute(portal: string): PgError | undefined {
    const problem = this.checkUse(`cursor:${portal}`);
    if (!problem && this.named.get(`cursor:${portal}`)?.changesSearchPath) this.settledAfter = this.cyclesSent + 1;
    return problem;
  }

  /** At the end of every transaction non-holdable cursors and all protocol portals are gone upstream. */
  transactionEnded(): void {
    for (const [key, value] of this.named) if (key.startsWith('cursor:') && !value.holdable) this.named.delete(key);
  }

  /** Protocol-level Close of a statement ('S') or portal ('P'). */
  closed(kind: 'S' | 'P', name: string): void {
    this.named.delete(`${kind === 'S' ? 'statement' : 'cursor'}:${name}`);
  }

  private remember(name: string, changesSearchPath: boolean, holdable: boolean, usesSearchPath = true): void {
    this.named.set(name, { generation: this.policy.generation, searchPath: this.searchPathText, changesSearchPath, holdable, usesSearchPath });
  }

  private checkUse(name: string): PgError | undefined {
    const made = this.named.get(name);
    if (!made) return undefined;
    if (made.generation !== this.policy.generation) return stale(name, 'an older policy').error;
    if (name.startsWith('statement:') && made.usesSearchPath && made.searchPath !== this.searchPathText) return stale(name, 'another search_path').error;
    return undefined;
  }

  private drop(name: string): void {
    if (!name.endsWith(':*')) { this.named.delete(name); return; }
    const prefix = name.slice(0, -1);
    for (const key of [...this.named.keys()]) if (key.startsWith(prefix)) this.named.delete(key);
  }

  private currentProfile(): Profile | undefined {
    if (this.profileGeneration !== this.policy.generation) {
      const account = this.users().users.get(this.userName);
      this.profile = account && !account.disabled ? this.policy.profileFor(account) : undefined;
      this.profileGeneration = this.policy.generation;
    }
    return this.profile;
  }
}

function duplicate(name: string): Decision & { kind: 'refuse' } {
  const [kind, id] = [name.slice(0, name.indexOf(':')), name.slice(name.indexOf(':') + 1)];
  return {
    kind: 'refuse',
    error: kind === 'cursor'
      ? new PgError('42P03', `cursor "${id}" already exists`)
      : new PgError('42P05', `prepared statement "${id}" already exists`),
  };
}

function refuse(message: string, hint?: string): Decision & { kind: 'refuse' } {
  return { kind: 'refuse', error: new PgError(SqlState.InsufficientPrivilege, message, { hint }) };
}

function stale(name: string, under: string): Decision & { kind: 'refuse' } {
  const [kind, id] = [name.slice(0, name.indexOf(':')), name.slice(name.indexOf(':') + 1)];
  const what = kind === 'cursor' ? `cursor "${id}"` : `prepared statement "${id}"`;
  return {
    kind: 'refuse',
    error: new PgError('26000', `${what} was made under ${under} and cannot be used`, {
      hint: kind === 'cursor' ? 'Declare the cursor again.' : 'Prepare the statement again (DEALLOCATE it first, or use a new name).',
    }),
  };
}
