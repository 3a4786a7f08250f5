// The upstream schema and base policy of the threat tests of section A
// (a-reaching-rows.test.ts), shared with the differential test of upstream
// statement reuse (session/statement-reuse-threats.test.ts), which runs the
// threat suites' statements over them.
import { policyDefaults } from '../helpers/harness.js';

// ── the upstream schema ─────────────────────────────────────────────────────
// Every value of organization globex carries SECRETX (or a salary 424242 /
// 434343); the serial sequence's last_value is set to 770013. None of these
// may ever reach alice@acme.com.
export const threatSchemaSql = `
DROP TABLE crm.employees;
CREATE TABLE crm.employees (id serial PRIMARY KEY, org_id text NOT NULL, name text, ssn text, salary numeric);
INSERT INTO crm.employees (org_id, name, ssn, salary) VALUES
  ('acme',   'Ann',          '111-22-3333',      90000),
  ('globex', 'Gus SECRETX',  'SECRETX-SSN-4455', 424242),
  ('acme',   'Carl',         '222-33-4444',      80000),
  ('globex', 'Gina SECRETX', 'SECRETX-SSN-6677', 434343);
SELECT setval('crm.employees_id_seq', 770013);

-- A same-named, unprotected decoy in public (A2, A8).
CREATE TABLE public.employees (id int, name text);
INSERT INTO public.employees VALUES (1, 'public-decoy');

-- A4: a partitioned table (two levels) and an inheritance tree.
CREATE TABLE crm.events (id int, org_id text NOT NULL, detail text) PARTITION BY LIST (org_id);
CREATE TABLE crm.events_acme PARTITION OF crm.events FOR VALUES IN ('acme');
CREATE TABLE crm.events_globex PARTITION OF crm.events FOR VALUES IN ('globex') PARTITION BY RANGE (id);
CREATE TABLE crm.events_globex_low PARTITION OF crm.events_globex FOR VALUES FROM (0) TO (1000);
INSERT INTO crm.events VALUES (1, 'acme', 'acme-event-1'), (2, 'acme', 'acme-event-2'), (3, 'acme', 'acme-event-3'),
  (10, 'globex', 'SECRETX-event-10'), (11, 'globex', 'SECRETX-event-11');
CREATE TABLE crm.people (id int, org_id text NOT NULL, name text);
CREATE TABLE crm.contractors (agency text) INHERITS (crm.people);
INSERT INTO crm.people VALUES (1, 'acme', 'acme-person'), (2, 'globex', 'SECRETX-person');
INSERT INTO crm.contractors VALUES (3, 'acme', 'acme-contractor', 'AgencyA'), (4, 'globex', 'SECRETX-contractor', 'SECRETX-agency');
-- An unprotected parent over a protected child.
CREATE TABLE crm.notes_base (id int, org_id text NOT NULL, body text);
CREATE TABLE crm.notes_private () INHERITS (crm.notes_base);
INSERT INTO crm.notes_base VALUES (1, 'acme', 'acme-public-note');
INSERT INTO crm.notes_private VALUES (2, 'globex', 'SECRETX-note'), (3, 'acme', 'acme-private-note');

-- A5: indirect readers.
CREATE VIEW crm.emp_view AS SELECT id, org_id, name FROM crm.employees;
CREATE VIEW public.emp_view2 AS SELECT * FROM crm.emp_view;
CREATE MATERIALIZED VIEW crm.emp_mv AS SELECT org_id, name FROM crm.employees;
CREATE VIEW crm.emp_covered AS SELECT id, org_id, name FROM crm.employees;   -- covered by the policy
CREATE FUNCTION public.emp_names_sql() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT name FROM crm.employees $$;
CREATE FUNCTION public.emp_names_atomic() RETURNS SETOF text LANGUAGE sql STABLE BEGIN ATOMIC SELECT name FROM crm.employees; END;
CREATE FUNCTION public.emp_names_plpgsql() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN QUERY SELECT name FROM crm.employees; END $$;
CREATE FUNCTION public.emp_row(int) RETURNS crm.employees LANGUAGE sql STABLE AS $$ SELECT * FROM crm.employees WHERE id = $1 $$;
-- A generic helper a DBA might have: dynamic SQL over a relation name given at run time.
CREATE FUNCTION public.dump_rows(rel text) RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT t::text FROM ' || rel || ' t'; END $$;
-- Called without a FuncCall node: functional notation (l.lookup_extra) and an operator.
CREATE FUNCTION public.lookup_extra(public.lookup) RETURNS text LANGUAGE sql STABLE AS $$ SELECT string_agg(name, ',') FROM crm.employees $$;
CREATE FUNCTION public.name_of(a int, b int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT name FROM crm.employees WHERE id = b $$;
CREATE OPERATOR public.##> (LEFTARG = int, RIGHTARG = int, FUNCTION = public.name_of);
-- A boolean oracle: does row $1 belong to org $2?
CREATE FUNCTION public.emp_in_org(int, text) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT EXISTS (SELECT 1 FROM crm.employees WHERE id = $1 AND org_id = $2) $$;
CREATE OPERATOR public.@@@ (LEFTARG = int, RIGHTARG = text, FUNCTION = public.emp_in_org);
-- Reached through type machinery: a cast and a domain CHECK.
CREATE CAST (public.lookup AS text) WITH FUNCTION public.lookup_extra(public.lookup);
CREATE DOMAIN public.globex_emp_id AS int CHECK (public.emp_in_org(VALUE, 'globex'));
-- Writes to unprotected tables that run code reading the protected one.
CREATE TABLE public.audit (id int, note text);
CREATE FUNCTION public.audit_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'audit: %', (SELECT string_agg(name, ',') FROM crm.employees); RETURN NEW; END $$;
CREATE TRIGGER audit_t BEFORE INSERT ON public.audit FOR EACH ROW EXECUTE FUNCTION public.audit_trg();
CREATE FUNCTION public.all_ssns() RETURNS text LANGUAGE sql STABLE AS $$ SELECT string_agg(ssn, ',') FROM crm.employees $$;
CREATE TABLE public.inbox (id int, msg text DEFAULT public.all_ssns());
CREATE TABLE public.req (id int);
CREATE TABLE public.req_log (txt text);
CREATE RULE req_copy AS ON INSERT TO public.req DO ALSO INSERT INTO public.req_log SELECT name FROM crm.employees;
CREATE PROCEDURE public.leak_proc() LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(name, ',') FROM crm.employees); END $$;

GRANT INSERT ON public.audit, public.inbox, public.req TO pgveil_service;
GRANT SELECT ON ALL TABLES IN SCHEMA crm, public TO pgveil_service;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA crm TO pgveil_service;
`;

export const threatPolicy = `${policyDefaults}tables:
  crm.employees:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.events:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.people:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.notes_private:
    ownership:
      - filter: "org_id = \${user.org}"
  crm.emp_covered:
    ownership:
      - filter: "org_id = \${user.org}"
`;
