// SQL for the demo database: a small two-tenant CRM/HR sample in schema
// `crm` (orgs `acme` and `globex`) and the least-privileged service role
// pgveil connects as. All data is deterministic so the demo, the docs and the
// tests see the same rows on every run. SSNs use the 9xx area, which is never
// issued; e-mail domains are under the reserved `.example` TLD.
import { runsSqlFromStringSql, sqlFromStringFunctions } from '../live-check/privileges.js';

export const SAMPLE_SCHEMA = 'crm';
export const SERVICE_ROLE = 'pgveil_service';
/** The tables the policy protects; the partitions of crm.events are not granted on their own. */
export const SAMPLE_TABLES = ['crm.employees', 'crm.accounts', 'crm.events'];

interface OrgSample {
  id: string;
  domain: string;
  ssnArea: number;
  empNoBase: number;
  salaryBase: number;
  regions: string[];
  firstNames: string[];
  lastNames: string[];
  accounts: string[];
}

const ORGS: OrgSample[] = [
  {
    id: 'acme',
    domain: 'acme.example',
    ssnArea: 901,
    empNoBase: 10000,
    salaryBase: 48000,
    regions: ['EU', 'EU', 'US', 'APAC'],
    firstNames: ['Anna', 'Bruno', 'Chloé', 'Dmitri', 'Elif', 'Felix', 'Greta', 'Hugo', 'Ines', 'Jonas',
      'Katja', 'Luca', 'Marta', 'Nils', 'Olga', 'Pieter', 'Quinn', 'Rosa', 'Sven', 'Tomasz'],
    lastNames: ['Keller', 'Moreau', 'Novak', 'Jansen', 'Rossi', 'Lindqvist', 'Dubois', 'Weber', 'Costa', 'Horvat',
      'Schmidt', 'Berg', 'Ferrari', 'Nowak', 'Petrov', 'Visser', "O'Neill", 'García', 'Larsen', 'Kowalski'],
    accounts: ['Initech GmbH', 'Umbrella Logistics', 'Stark Components', 'Wayne Foods', 'Tyrell Optics',
      'Cyberdyne Retail', 'Soylent Farms', 'Hooli Europe'],
  },
  {
    id: 'globex',
    domain: 'globex.example',
    ssnArea: 902,
    empNoBase: 20000,
    salaryBase: 55000,
    regions: ['US', 'US', 'EU', 'LATAM'],
    firstNames: ['Aaron', 'Beatriz', 'Carlos', 'Dana', 'Ethan', 'Fatima', 'George', 'Hiro', 'Isabel', 'Jamal',
      'Kim', 'Leah', 'Mateo', 'Nora', 'Omar', 'Priya', 'Ravi', 'Sofia', 'Tyler', 'Uma'],
    lastNames: ['Smith', 'Johnson', 'Silva', 'Nguyen', 'Brown', 'Khan', 'Miller', 'Tanaka', 'Lopez', 'Wright',
      'Park', 'Cohen', 'Hernández', 'Walsh', 'Haddad', 'Patel', 'Iyer', 'Martins', 'Reed', 'Shah'],
    accounts: ['Acme Anvils Inc', 'Massive Dynamic', 'Vandelay Industries', 'Oceanic Airlines', 'Pied Piper',
      'Gringotts Holdings', 'Monarch Solutions', 'Duff Beverages'],
  },
];

const NOTES = [
  'Quarterly review: exceeds expectations; discussed promotion to team lead in Q3.',
  'On parental leave until next spring; backfill arranged with the staffing agency.',
  'Relocation request to the Lisbon office approved by HR, pending visa paperwork.',
  null,
  'Performance improvement plan closed successfully after six months.',
  'Requested part-time schedule (80%) for medical reasons; see HR case file.',
  null,
  'Top seller two years running; retention bonus agreed, details confidential.',
];

/** A SQL string literal: the only way data text enters the generated SQL. */
function lit(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`;
}

function asciiLower(s: string): string {
  return s.normalize('NFD').replace(/[^A-Za-z]/g, '').toLowerCase();
}

function isoDate(base: string, plusDays: number): string {
  const d = new Date(`${base}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + plusDays);
  return d.toISOString().slice(0, 10);
}

export const EMPLOYEES_PER_ORG = 20;
export const ACCOUNTS_PER_ORG = 8;
export const EVENTS_PER_ORG = 150;

function employeeRows(): string[] {
  const rows: string[] = [];
  ORGS.forEach((org, o) => {
    for (let i = 0; i < EMPLOYEES_PER_ORG; i++) {
      const id = o * 100 + i + 1;
      const first = org.firstNames[i];
      const last = org.lastNames[(i * 7) % EMPLOYEES_PER_ORG];
      const email = `${asciiLower(first)}.${asciiLower(last)}@${org.domain}`;
      const ssn = `${org.ssnArea}-${String(10 + i).padStart(2, '0')}-${String(1000 + ((i * 4733) % 9000)).padStart(4, '0')}`;
      const salary = (org.salaryBase + ((i * 7919) % 23) * 2500 + (i % 3) * 125.5).toFixed(2);
      const empNo = org.empNoBase + 101 + i * 3;
      const hired = isoDate('2014-03-03', (i * 211 + o * 57) % 3650);
      rows.push(`(${id}, ${lit(org.id)}, ${lit(`${first} ${last}`)}, ${lit(email)}, ${lit(ssn)}, ${salary}, ${empNo}, ` +
        `${lit(hired)}, ${lit(org.regions[i % org.regions.length])}, ${lit(NOTES[(i + o) % NOTES.length])})`);
    }
  });
  return rows;
}

function accountRows(): string[] {
  const rows: string[] = [];
  ORGS.forEach((org, o) => {
    org.accounts.forEach((name, i) => {
      const id = o * 100 + i + 1;
      const owner = o * 100 + ((i * 3) % EMPLOYEES_PER_ORG) + 1;
      const revenue = (25000 + ((i * 104729 + o * 7) % 97) * 12500).toFixed(2);
      rows.push(`(${id}, ${lit(org.id)}, ${lit(name)}, ${owner}, ${revenue})`);
    });
  });
  return rows;
}

/** The events are generated by the server: deterministic arithmetic over generate_series. */
function eventInserts(): string[] {
  return ORGS.map((org, o) => `INSERT INTO crm.events (id, org_id, account_id, kind, occurred_at, amount)
SELECT ${o * 1000} + g, ${lit(org.id)}, ${o * 100} + 1 + (g * 5) % ${ACCOUNTS_PER_ORG},
       (ARRAY['login', 'export', 'invoice', 'meeting', 'support_ticket'])[1 + g % 5],
       timestamptz '2025-01-06 08:00:00+00' + g * interval '7 hours 13 minutes',
       CASE WHEN g % 5 = 2 THEN ((g * 37) % 500 + 20) * 10.00 END
FROM generate_series(1, ${EVENTS_PER_ORG}) AS g;`);
}

/** Schema, tables and rows. Run as the owner (the superuser), in the demo database. */
export function sampleDataSql(): string {
  return `CREATE SCHEMA crm;

CREATE TABLE crm.employees (
  id       integer PRIMARY KEY,
  org_id   text    NOT NULL,
  name     text    NOT NULL,
  email    text    NOT NULL,
  ssn      text    NOT NULL,
  salary   numeric(10,2),
  emp_no   integer NOT NULL,
  hired    date    NOT NULL,
  region   text    NOT NULL,
  notes    text
);

CREATE TABLE crm.accounts (
  id       integer PRIMARY KEY,
  org_id   text    NOT NULL,
  name     text    NOT NULL,
  owner_id integer REFERENCES crm.employees (id),
  revenue  numeric(14,2)
);

-- Partitioned by tenant: pgveil must apply the parent's policy to the partitions.
CREATE TABLE crm.events (
  id          integer     NOT NULL,
  org_id      text        NOT NULL,
  account_id  integer     REFERENCES crm.accounts (id),
  kind        text        NOT NULL,
  occurred_at timestamptz NOT NULL,
  amount      numeric(12,2),
  PRIMARY KEY (org_id, id)
) PARTITION BY LIST (org_id);
CREATE TABLE crm.events_acme   PARTITION OF crm.events FOR VALUES IN ('acme');
CREATE TABLE crm.events_globex PARTITION OF crm.events FOR VALUES IN ('globex');

INSERT INTO crm.employees (id, org_id, name, email, ssn, salary, emp_no, hired, region, notes) VALUES
${employeeRows().join(',\n')};

INSERT INTO crm.accounts (id, org_id, name, owner_id, revenue) VALUES
${accountRows().join(',\n')};

${eventInserts().join('\n\n')}

ANALYZE crm.employees, crm.accounts, crm.events;
`;
}

export interface ServiceRoleOptions {
  database: string;
  password: string;
  role?: string;
}

/**
 * The service role pgveil logs in as, with only what pgveil needs: CONNECT,
 * USAGE on crm, SELECT on the three tables. No superuser, no CREATE anywhere,
 * no TEMP (a temp function or table would shadow names before pgveil's
 * filters run), no EXECUTE on SQL-executing functions, no planner statistics
 * (pg_stats). SELECT on crm.events
 * covers its partitions when read through the parent (Postgres checks only
 * the parent); the partitions themselves get no grant, so a route that
 * names one directly and slips past pgveil meets `permission denied`.
 * Run as superuser in `database`.
 */
export function serviceRoleSql(opts: ServiceRoleOptions): string {
  const role = opts.role ?? SERVICE_ROLE;
  if (!/^[a-z_][a-z0-9_]*$/.test(role) || !/^[a-z_][a-z0-9_]*$/.test(opts.database)) {
    throw new Error('serviceRoleSql: role and database must be plain lower-case identifiers');
  }
  const fnList = sqlFromStringFunctions.map(lit).join(', ');
  // The server hashes the password with password_encryption (scram-sha-256);
  // statements are not logged by default, so the literal stays in this session.
  return `CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
  PASSWORD ${lit(opts.password)};

REVOKE ALL ON DATABASE ${opts.database} FROM PUBLIC;
GRANT CONNECT ON DATABASE ${opts.database} TO ${role};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT USAGE ON SCHEMA crm TO ${role};
GRANT SELECT ON ${SAMPLE_TABLES.join(', ')} TO ${role};

DO $revoke$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
           WHERE p.pronamespace = 'pg_catalog'::regnamespace AND ${runsSqlFromStringSql('p', `ARRAY[${fnList}]`)}
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$revoke$;
-- Planner statistics hold raw sample values of every org's rows.
REVOKE SELECT ON pg_catalog.pg_stats FROM PUBLIC;
`;
}
