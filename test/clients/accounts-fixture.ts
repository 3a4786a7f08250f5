// The catalog-browsing fixture the JDBC and Python tests share: crm.accounts
// (a foreign key to crm.employees, so metadata calls have keys to list) in
// allowlist mode, so every other relation must stay out of the listings.
import { employeesPolicy } from '../helpers/harness.js';

/** SQL creating crm.accounts, filled by `rowsSql` (an INSERT), readable by the service role. */
export function accountsSql(rowsSql: string): string {
  return `
      CREATE TABLE crm.accounts (id int PRIMARY KEY, org_id text, owner_id int REFERENCES crm.employees(id), name text);
      ${rowsSql}
      GRANT SELECT ON crm.accounts TO pgveil_service;`;
}

/** Allowlist policy: employees and accounts filtered by org, ssn partially masked, plus `employeeMasks` (YAML lines under redaction). */
export function accountsPolicy(employeeMasks = ''): string {
  return `
defaults: { unlistedRelations: deny }${employeesPolicy}${employeeMasks}  crm.accounts:
    ownership:
      - filter: "org_id = \${user.org}"
`;
}
