// The text and JSON a DBA and a CI job read from `pgveil check --live`, and
// the SQL built from how the service role holds a privilege. Pure: no server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exitCodeOf, type Finding, type LiveReport } from '../../src/live-check/finding.js';
import { describeSources, revokeStatements } from '../../src/live-check/grants.js';
import { renderJson, renderText } from '../../src/live-check/render.js';
import { sqlFromStringFunctions } from '../../src/live-check/privileges.js';

const upstream = { version: '16.3', versionNum: 160003, role: 'pgveil_service', database: 'analytics' };
const upstreamFinding: Finding = { check: 'role-bypassrls', kind: 'upstream', subject: 'the service role pgveil_service has BYPASSRLS', why: 'row security does not apply', sql: ['ALTER ROLE pgveil_service NOBYPASSRLS;'] };
const policyFinding: Finding = { check: 'policy-unknown-table', kind: 'policy', subject: 'policy.yaml:4:3: tables."crm.x": no such table upstream: crm.x', why: 'serve refuses it', sql: [], fix: 'correct the key' };

test('one block per finding: FIX <check>: subject, then why, one sql line per statement, fix; a summary last', () => {
  const report: LiveReport = { upstream, governed: 2, findings: [policyFinding, upstreamFinding] };
  assert.is(renderText(report), [
    'FIX policy-unknown-table: policy.yaml:4:3: tables."crm.x": no such table upstream: crm.x',
    '  why: serve refuses it',
    '  fix: correct the key',
    '',
    'FIX role-bypassrls: the service role pgveil_service has BYPASSRLS',
    '  why: row security does not apply',
    '  sql: ALTER ROLE pgveil_service NOBYPASSRLS;',
    '',
    'live check: 1 to fix upstream, 1 in the policy file (serve refuses it) (PostgreSQL 16.3, database analytics, service role pgveil_service, 2 protected relations)',
  ].join('\n'));
  assert.is(renderText({ upstream, governed: 1, findings: [] }), 'live check: clean (PostgreSQL 16.3, database analytics, service role pgveil_service, 1 protected relation)');
});

test('exit codes: 0 clean, 1 only upstream findings, 2 when the policy does not fit (serve would refuse it)', () => {
  assert.is(exitCodeOf([]), 0);
  assert.is(exitCodeOf([upstreamFinding]), 1);
  assert.is(exitCodeOf([upstreamFinding, policyFinding]), 2);
  const doc = JSON.parse(renderJson({ upstream, governed: 2, findings: [upstreamFinding] })) as { exitCode: number; findings: Finding[] };
  assert.is(doc.exitCode, 1);
  assert.equal(doc.findings, [upstreamFinding]);
});

const who = { role: 'pgveil_service', database: 'analytics' };

test('a privilege from PUBLIC and from grants is revoked from each grantee in one statement', () => {
  const sources = [{ grantee: 'PUBLIC', owner: false, via: null }, { grantee: 'pgveil_service', owner: false, via: null }, { grantee: 'etl', owner: false, via: 'pgveil_service' }];
  assert.equal(revokeStatements('CREATE', 'SCHEMA', 'crm', sources, who), ['REVOKE CREATE ON SCHEMA crm FROM PUBLIC, pgveil_service, etl;']);
  assert.is(describeSources(sources, 'pgveil_service'), 'PUBLIC, a direct grant, membership in etl');
});

test('a privilege from ownership: a new owner (placeholder), the owning role\'s membership revoked, or the database given away', () => {
  assert.equal(revokeStatements('ALL', 'TABLE', 'crm.v', [{ grantee: 'pgveil_service', owner: true, via: null }], who), ['ALTER TABLE crm.v OWNER TO <owner>;']);
  assert.equal(revokeStatements('ALL', 'TABLE', 'crm.v', [{ grantee: 'app_owner', owner: true, via: 'etl' }], who), ['REVOKE app_owner FROM etl;']);
  assert.equal(revokeStatements('CREATE', 'SCHEMA', 'public', [{ grantee: 'pg_database_owner', owner: true, via: 'pgveil_service' }], who), ['ALTER DATABASE analytics OWNER TO <owner>;']);
  assert.is(describeSources([{ grantee: 'pg_database_owner', owner: true, via: 'pgveil_service' }], 'pgveil_service'), 'owning the database (its owner is pg_database_owner)');
});

test('the SQL-executing functions checked are the ones pgveil refuses for running SQL from a string', () => {
  for (const fn of ['query_to_xml', 'table_to_xml', 'cursor_to_xml', 'ts_stat', 'ts_rewrite', 'dblink', 'dblink_exec']) assert.ok(sqlFromStringFunctions.includes(fn), fn);
  assert.not.ok(sqlFromStringFunctions.includes('pg_read_file'));
});

test.run();
