// The Prometheus metrics of one pgveil process (README, Observability). One registry per
// proxy so tests can run several proxies in one process.
import client from 'prom-client';
import { CountingCounter, CountingHistogram } from './counting-metrics.js';

const STATEMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// The metrics the primary of `workers: N` also keeps in its own registry (it
// takes the lockouts, serves the admin API and writes the audit log), summed
// with the workers' at scrape time: defined once for both.
export function lockoutsCounter(registry: client.Registry) {
  return new client.Counter({ name: 'pgveil_auth_lockouts_total', help: 'Users locked out after too many failures', registers: [registry] });
}

export function adminActionsCounter(registry: client.Registry) {
  return new client.Counter({ name: 'pgveil_admin_actions_total', help: 'Admin API actions, by action and outcome', labelNames: ['action', 'outcome'] as const, registers: [registry] });
}

/** The audit log's counters (blocked: the max across processes). */
export function auditMetrics(registry: client.Registry) {
  return {
    auditRecords: new client.Counter({ name: 'pgveil_audit_records_total', help: 'Audit records written', registers: [registry] }),
    auditWriteFailures: new client.Counter({ name: 'pgveil_audit_write_failures_total', help: 'Failed writes of the audit file (each failed batch counts once)', registers: [registry] }),
    auditBlocked: new client.Gauge({ name: 'pgveil_audit_blocked', help: '1 while the audit file cannot be written and onFailure: block refuses new statements', registers: [registry], aggregator: 'max' }),
  };
}

export class ProxyMetrics {
  readonly registry = new client.Registry();
  readonly connectionsCurrent = new client.Gauge({ name: 'pgveil_connections_current', help: 'Client connections open now', registers: [this.registry] });
  readonly connectionsTotal = new client.Counter({ name: 'pgveil_connections_total', help: 'Client connections accepted', registers: [this.registry] });
  readonly auth = new client.Counter({ name: 'pgveil_auth_total', help: 'Authentication attempts by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly connectionsRefused = new client.Counter({ name: 'pgveil_connections_refused_total', help: 'Connections refused at accept, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly lockouts = lockoutsCounter(this.registry);
  // Counted per statement: without allocation (counting-metrics.ts).
  readonly statements = new CountingCounter('pgveil_statements_total', 'Statements by outcome', 'outcome', this.registry);
  readonly analysisSeconds = new CountingHistogram('pgveil_rewrite_seconds', 'Time to analyse (and rewrite) one statement',
    [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05], this.registry);
  readonly upstreamErrors = new client.Counter({ name: 'pgveil_upstream_errors_total', help: 'Failed upstream connects and lost upstream connections', registers: [this.registry] });
  readonly upstreamConnections = new client.Counter({
    name: 'pgveil_upstream_connections_total', help: 'Upstream connections handed to new sessions: new logins, or pooled ones reused after a reset', labelNames: ['how'] as const, registers: [this.registry],
  });
  readonly upstreamResets = new client.Counter({
    name: 'pgveil_upstream_resets_total', help: 'Resets of upstream connections after a session: clean (pooled) or dropped (closed: a reset, check or claim failed)', labelNames: ['outcome'] as const, registers: [this.registry],
  });
  readonly upstreamStatements = new CountingCounter('pgveil_upstream_statements_total',
    'Simple-protocol statements run as pgveil\'s own prepared statements upstream: prepared (Parse sent) or reused (Bind only)', 'how', this.registry);
  readonly upstreamIdle = new client.Gauge({ name: 'pgveil_upstream_idle_connections', help: 'Reset, checked upstream connections waiting in the pool now', registers: [this.registry] });
  readonly policyGeneration = new client.Gauge({ name: 'pgveil_policy_generation', help: 'Generation of the active policy (starts at 1, +1 per accepted reload)', registers: [this.registry], aggregator: 'min' });
  // Observed per statement: counted without allocation (counting-metrics.ts).
  readonly statementSeconds = new CountingHistogram('pgveil_statement_seconds',
    'End-to-end time of one statement: from the client message to the last answer pgveil sends for it', STATEMENT_BUCKETS, this.registry);
  readonly upstreamSeconds = new CountingHistogram('pgveil_upstream_seconds',
    'Time upstream took for one statement: from forwarding it to upstream\'s last answer', STATEMENT_BUCKETS, this.registry);
  readonly refusals = new client.Counter({ name: 'pgveil_refusals_total', help: 'Statements refused by pgveil, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly disconnects = new client.Counter({ name: 'pgveil_disconnects_total', help: 'Client sessions ended, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  private readonly audit = auditMetrics(this.registry);
  readonly auditRecords = this.audit.auditRecords;
  readonly auditWriteFailures = this.audit.auditWriteFailures;
  readonly auditBlocked = this.audit.auditBlocked;
  readonly shadowDifferences = new client.Counter({ name: 'pgveil_shadow_differences_total', help: 'Statements the shadow policy decides differently, by kind', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly shadowSkipped = new client.Counter({ name: 'pgveil_shadow_skipped_total', help: 'Statements not decided under the shadow policy (its queue was full, or a reload came in between)', registers: [this.registry] });
  readonly shadowGeneration = new client.Gauge({ name: 'pgveil_shadow_generation', help: 'Generation of the shadow policy (0 = none loaded; +1 per accepted load)', registers: [this.registry], aggregator: 'min' });
  readonly adminActions = adminActionsCounter(this.registry);
  readonly reloadFailures = new client.Counter({ name: 'pgveil_reload_failures_total', help: 'Rejected reloads of users or policy, and rejected loads of the shadow policy', registers: [this.registry] });

  /**
   * Exposes the rewrite cache's own counts, read at scrape time. The cache
   * counts since start, so each counter is set to its count on collect
   * (reset + inc keeps the counter type, which rate() needs).
   */
  watchCache(stats: () => { hits: number; misses: number; evictions: number; entries: number; missMs: number }): void {
    const counter = (name: string, help: string, pick: (s: ReturnType<typeof stats>) => number) =>
      new client.Counter({ name, help, registers: [this.registry], collect() { this.reset(); this.inc(pick(stats())); } });
    counter('pgveil_cache_hits_total', 'Rewrite cache hits', (s) => s.hits);
    counter('pgveil_cache_misses_total', 'Rewrite cache misses', (s) => s.misses);
    counter('pgveil_cache_evictions_total', 'Rewrite cache evictions', (s) => s.evictions);
    counter('pgveil_cache_miss_seconds_total', 'Time spent analysing and rewriting on cache misses', (s) => s.missMs / 1000);
    new client.Gauge({ name: 'pgveil_cache_entries', help: 'Rewrite cache entries now', registers: [this.registry], collect() { this.set(stats().entries); } });
  }

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'pgveil_' });
    this.policyGeneration.set(1);
    for (const outcome of ['success', 'failure', 'password_expired']) this.auth.inc({ outcome }, 0);
    for (const reason of ['too_many_clients', 'address_blocked', 'draining']) this.connectionsRefused.inc({ reason }, 0);
    for (const outcome of ['forwarded', 'rewritten', 'refused', 'syntax_error']) this.statements.count(outcome, 0);
    for (const kind of ['newly_refused', 'newly_allowed', 'rewritten_differently']) this.shadowDifferences.inc({ kind }, 0);
  }
}
