// The schema the catalog tests (and bench/catalog.ts) load: every shape the
// catalog must recognise around a few protected tables, and unrelated
// objects that must stay unprotected. Run as superuser.

export const SERVICE_ROLE = 'catalog_svc';

/** Policy keys (canonical form) of the protected relations. */
export const PROTECTED = ['app.people', 'app.events', '"Sales"."Orders"', 'app.logs_acme'];

export function fixtureSql(password: string): string {
  return `
CREATE ROLE ${SERVICE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '${password.replace(/'/g, "''")}';
CREATE SCHEMA app;
CREATE SCHEMA other;
CREATE SCHEMA "Sales";
CREATE SCHEMA hidden;

CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE DOMAIN app.short_code AS varchar(8);
CREATE DOMAIN app.code2 AS app.short_code;
CREATE TYPE app.pair AS (a int, b int);
CREATE SEQUENCE app.shared_seq;

CREATE TABLE app.people (
  id     serial PRIMARY KEY,
  code   varchar(20) NOT NULL,
  amount numeric(10,2),
  n4     int4,
  gone   int,
  n8     int8 NOT NULL DEFAULT nextval('app.shared_seq'),
  born   date,
  seen   timestamptz,
  email  app.email,
  tags   text[],
  short  app.code2
);
ALTER TABLE app.people DROP COLUMN gone;

-- An inheritance child, and a child of two parents (one unprotected).
CREATE TABLE app.people_archive (archived_at timestamptz) INHERITS (app.people);
CREATE TABLE app.plain (note text);
CREATE TABLE app.multi () INHERITS (app.plain, app.people);

-- LIST partitions, one of them sub-partitioned; an identity column (its sequence is 'i'-owned).
CREATE TABLE app.events (org text NOT NULL, id int8 GENERATED ALWAYS AS IDENTITY, kind text, at timestamptz) PARTITION BY LIST (org);
CREATE TABLE app.events_acme PARTITION OF app.events FOR VALUES IN ('acme');
CREATE TABLE app.events_globex PARTITION OF app.events FOR VALUES IN ('globex') PARTITION BY LIST (kind);
CREATE TABLE app.events_globex_login PARTITION OF app.events_globex FOR VALUES IN ('login');
CREATE TABLE app.events_globex_other PARTITION OF app.events_globex DEFAULT;

-- A protected partition under an unprotected parent.
CREATE TABLE app.logs (org text, msg text) PARTITION BY LIST (org);
CREATE TABLE app.logs_acme PARTITION OF app.logs FOR VALUES IN ('acme') PARTITION BY LIST (msg);
CREATE TABLE app.logs_acme_x PARTITION OF app.logs_acme DEFAULT;
CREATE TABLE app.logs_globex PARTITION OF app.logs FOR VALUES IN ('globex');

-- Readers.
CREATE VIEW app.people_v AS SELECT id, code FROM app.people;
CREATE VIEW app.people_vv AS SELECT id FROM app.people_v;
CREATE MATERIALIZED VIEW app.people_mv AS SELECT count(*) AS n FROM app.people;
CREATE VIEW app.acme_events_v AS SELECT * FROM app.events_acme;
CREATE TABLE app.audit (x int);
CREATE RULE audit_peek AS ON INSERT TO app.audit DO ALSO SELECT count(*) FROM app.people;
CREATE FUNCTION app.count_people() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM app.people';
CREATE FUNCTION app.count_people_atomic() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM app.people; END;
CREATE FUNCTION app."Loud"() RETURNS SETOF text LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT code::text FROM APP.PEOPLE; END $$;
CREATE FUNCTION app.via_view() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM app.people_vv';
CREATE FUNCTION app.calls_reader() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN RETURN app.count_people(); END $$;
CREATE VIEW app.fn_view AS SELECT app.count_people_atomic() AS n;
CREATE TABLE "Sales"."Orders" ("OrderId" int, "Total" numeric(12,2), "Customer Name" text);
CREATE VIEW "Sales"."Big Orders" AS SELECT * FROM "Sales"."Orders" WHERE "Total" > 100;
CREATE VIEW hidden.people_leak AS SELECT * FROM app.people;
CREATE VIEW "Sales"."Order View" AS SELECT "OrderId" FROM "Sales"."Orders";
CREATE FUNCTION "Sales".ov() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM "Sales"."Order View"';

-- Unrelated: must not be readers.
CREATE TABLE app.lookup (code text PRIMARY KEY, label text);
CREATE VIEW app.lookup_v AS SELECT * FROM app.lookup;
CREATE FUNCTION app.lookup_label(c text) RETURNS text LANGUAGE sql STABLE AS 'SELECT label FROM app.lookup WHERE code = c';
CREATE FUNCTION app.add_one(i int) RETURNS int LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT i + 1; END;
CREATE SEQUENCE app.free_seq;
CREATE FUNCTION app.neg_lp(int4) RETURNS int4 LANGUAGE sql IMMUTABLE LEAKPROOF AS 'SELECT -$1';
CREATE OPERATOR app.!- (RIGHTARG = int4, FUNCTION = app.neg_lp);
CREATE FOREIGN DATA WRAPPER dummy_fdw;
CREATE SERVER dummy_srv FOREIGN DATA WRAPPER dummy_fdw;
CREATE FOREIGN TABLE app.remote (a int) SERVER dummy_srv;

-- The same name in other schemas: one visible, one without USAGE.
CREATE TABLE other.people (id int);
CREATE TABLE hidden.people (id int);

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA app, other, "Sales" TO ${SERVICE_ROLE};
GRANT SELECT ON ALL TABLES IN SCHEMA app, other, "Sales" TO ${SERVICE_ROLE};
`;
}
