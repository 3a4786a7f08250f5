// The upstream half of the keyed masks (scramble, hash; threats B7/B8 in docs/threat-model.md).
// The key must never appear in SQL that pgveil sends (EXPLAIN VERBOSE,
// pg_stat_activity, error contexts would show it), so it lives upstream: a
// DBA runs the SQL made here once; it creates
//   - role pgveil_owner (NOLOGIN) owning schema pgveil;
//   - table pgveil.scramble_key holding the HMAC pads of the key, readable by
//     pgveil_owner only (no statistics are gathered on it);
//   - SECURITY DEFINER functions pgveil.scramble(text|int2|int4|int8|numeric|uuid),
//     pgveil.hash(text) and pgveil.key_id(), executable by the service role only.
// pgveil then emits `pgveil.scramble("t"."col")` and nothing else; the
// rewriter refuses any user call of pgveil.*.
//
// The keyed function is HMAC-SHA256 built from pg_catalog.sha256 (no
// pgcrypto). Integers go through a keyed Feistel network over all bits of
// their type: a permutation, so distinct inputs give distinct outputs of the
// same type. Function bodies are SQL-standard (RETURN …, PostgreSQL 14+):
// parsed once at install under search_path = pg_catalog, so neither a
// session's search_path nor standard_conforming_strings can change them.
import { createHmac, createHash } from 'node:crypto';
import { dollarQuote, quoteIdent, sqlLiteral } from './literals.js';

export const HELPER_SCHEMA = 'pgveil';
export const DEFAULT_OWNER_ROLE = 'pgveil_owner';
/** Feistel rounds; more than the 4 of Luby–Rackoff because int2 halves are only 8 bits. */
const ROUNDS = 6;

export interface ScrambleInstallOptions {
  /** The role pgveil connects upstream as: gets USAGE on the schema and EXECUTE on the public functions. */
  serviceRole: string;
  /** NOLOGIN role owning the schema, the key table and the functions. Default pgveil_owner. */
  ownerRole?: string;
}

/** The 32-byte key from policy.secrets.scrambleKey (after unsealing): any text works, its bytes are hashed. */
export function scrambleKeyFromSecret(secret: string): Buffer {
  return createHmac('sha256', 'pgveil/scramble-key/v1').update(secret, 'utf8').digest();
}

/** What pgveil.key_id() returns for this key: lets pgveil check the installed key without reading it. */
export function scrambleKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('K:pgveil key id', 'utf8').digest('hex').slice(0, 16);
}

/** HMAC's inner and outer pads (RFC 2104): the key XOR 0x36…, XOR 0x5c…, over 64 bytes. */
function pads(key: Buffer): { ipad: Buffer; opad: Buffer } {
  const k = Buffer.alloc(64);
  (key.length > 64 ? createHash('sha256').update(key).digest() : key).copy(k);
  return { ipad: Buffer.from(k.map((b) => b ^ 0x36)), opad: Buffer.from(k.map((b) => b ^ 0x5c)) };
}

/** Idempotent install/rotate SQL. Run once by a DBA as a superuser; it contains the key, so do not keep it. */
export function scrambleInstallSql(key: Buffer, opts: ScrambleInstallOptions): string {
  if (key.length < 16) throw new Error('the scramble key must be at least 16 bytes');
  const owner = opts.ownerRole ?? DEFAULT_OWNER_ROLE;
  if (owner === opts.serviceRole) throw new Error('the owner role must not be the service role: the service role must not read the key');
  const o = quoteIdent(owner);
  const svc = quoteIdent(opts.serviceRole);
  const s = quoteIdent(HELPER_SCHEMA);
  const { ipad, opad } = pads(key);
  const definer = 'STABLE STRICT PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp';
  const publicFns = ['scramble(pg_catalog.text)', 'scramble(pg_catalog.int2)', 'scramble(pg_catalog.int4)', 'scramble(pg_catalog.int8)',
    'scramble(pg_catalog.numeric)', 'scramble(pg_catalog.uuid)', 'hash(pg_catalog.text)', 'key_id()'];
  const internalFns = ['_hmac(pg_catalog.bytea, pg_catalog.bytea, pg_catalog.bytea)', '_word(pg_catalog.bytea)', '_signed(pg_catalog.int8, pg_catalog.int4)',
    '_mac(pg_catalog.text, pg_catalog.bytea)', '_feistel(pg_catalog.int8, pg_catalog.int4, pg_catalog.int4)'];
  const createRole = dollarQuote(`BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(owner)}) THEN
    EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', ${sqlLiteral(owner)});
  END IF;
END`);
  const warnings = dollarQuote(`BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = ${sqlLiteral(opts.serviceRole)}) THEN
    RAISE WARNING 'service role % is a superuser: it can read the scramble key', ${sqlLiteral(opts.serviceRole)};
  ELSIF pg_catalog.pg_has_role(${sqlLiteral(opts.serviceRole)}, ${sqlLiteral(owner)}, 'MEMBER') THEN
    RAISE WARNING 'service role % is a member of %: it can read the scramble key', ${sqlLiteral(opts.serviceRole)}, ${sqlLiteral(owner)};
  END IF;
END`);
  return `-- pgveil helper schema for the scramble and hash masks (README.md, "Scramble and hash: the keyed helpers").
-- It contains the scramble key: run it once as a superuser, e.g.
--   psql -v ON_ERROR_STOP=1 -X -f pgveil-helpers.sql "dbname=analytics"
-- then delete the file. Running it again (same or new key) is safe.
BEGIN;
SET LOCAL search_path = pg_catalog, pg_temp;
DO ${createRole};
CREATE SCHEMA IF NOT EXISTS ${s} AUTHORIZATION ${o};
ALTER SCHEMA ${s} OWNER TO ${o};
REVOKE ALL ON SCHEMA ${s} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${s} TO ${svc};
SET LOCAL ROLE ${o};

CREATE TABLE IF NOT EXISTS ${s}.scramble_key (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  ipad bytea NOT NULL,
  opad bytea NOT NULL
);
REVOKE ALL ON TABLE ${s}.scramble_key FROM PUBLIC, ${svc};
ALTER TABLE ${s}.scramble_key ALTER COLUMN singleton SET STATISTICS 0, ALTER COLUMN ipad SET STATISTICS 0, ALTER COLUMN opad SET STATISTICS 0;
INSERT INTO ${s}.scramble_key (singleton, ipad, opad)
  VALUES (true, pg_catalog.decode('${ipad.toString('hex')}', 'hex'), pg_catalog.decode('${opad.toString('hex')}', 'hex'))
  ON CONFLICT (singleton) DO UPDATE SET ipad = EXCLUDED.ipad, opad = EXCLUDED.opad;

-- HMAC-SHA256 (RFC 2104) from the pads.
CREATE OR REPLACE FUNCTION ${s}._hmac(ipad bytea, opad bytea, msg bytea) RETURNS bytea
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN pg_catalog.sha256(opad || pg_catalog.sha256(ipad || msg));

-- The first 32 bits of a digest as a non-negative bigint.
CREATE OR REPLACE FUNCTION ${s}._word(d bytea) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN ('x' || pg_catalog.encode(pg_catalog.substring(d, 1, 4), 'hex'))::pg_catalog.bit(32)::bigint;

-- An unsigned bits-wide value as the signed integer with the same bits.
CREATE OR REPLACE FUNCTION ${s}._signed(u bigint, bits integer) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN CASE WHEN u >= (1::bigint << (bits - 1)) THEN u - (1::bigint << bits) ELSE u END;

-- HMAC under the installed key; tags (two characters) keep the uses apart.
CREATE OR REPLACE FUNCTION ${s}._mac(tag text, msg bytea) RETURNS bytea
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  RETURN (SELECT ${s}._hmac(k.ipad, k.opad, pg_catalog.convert_to(tag, 'UTF8') || msg) FROM ${s}.scramble_key k);

-- A keyed permutation of 2h-bit values: ${ROUNDS} Feistel rounds on h-bit halves, round
-- function HMAC("F:" ‖ tag·256+round ‖ half). PL/pgSQL: a loop of simple expressions
-- runs about 15 times faster than the same rounds as nested SQL functions.
CREATE OR REPLACE FUNCTION ${s}._feistel(u bigint, h integer, tag integer) RETURNS bigint
  LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS ${dollarQuote(`
DECLARE
  m bigint := (1::bigint << h) - 1;
  l bigint := (u >> h) & m;
  r bigint := u & m;
  t bigint;
  ip bytea;
  op bytea;
BEGIN
  SELECT k.ipad, k.opad INTO ip, op FROM ${s}.scramble_key k;
  IF ip IS NULL THEN
    RETURN NULL;
  END IF;
  FOR i IN 0..${ROUNDS - 1} LOOP
    t := r;
    r := l # (${s}._word(${s}._hmac(ip, op, pg_catalog.convert_to('F:', 'UTF8') || pg_catalog.int4send(tag * 256 + i) || pg_catalog.int8send(r))) & m);
    l := t;
  END LOOP;
  RETURN (l << h) | r;
END
`)};

CREATE OR REPLACE FUNCTION ${s}.scramble(v text) RETURNS text
  LANGUAGE sql ${definer}
  RETURN pg_catalog.left(pg_catalog.encode(${s}._mac('S:', pg_catalog.convert_to(v, 'UTF8')), 'hex'), 16);

CREATE OR REPLACE FUNCTION ${s}.scramble(v smallint) RETURNS smallint
  LANGUAGE sql ${definer}
  RETURN ${s}._signed(${s}._feistel(v::bigint & 65535, 8, 2), 16)::smallint;

CREATE OR REPLACE FUNCTION ${s}.scramble(v integer) RETURNS integer
  LANGUAGE sql ${definer}
  RETURN ${s}._signed(${s}._feistel(v::bigint & 4294967295, 16, 4), 32)::integer;

CREATE OR REPLACE FUNCTION ${s}.scramble(v bigint) RETURNS bigint
  LANGUAGE sql ${definer}
  RETURN ${s}._feistel(v, 32, 8);

-- Whole numbers in the bigint range are permuted like bigint (so they join with
-- scrambled bigint columns); others get a keyed value of the same scale; NaN and
-- infinities become NULL.
CREATE OR REPLACE FUNCTION ${s}.scramble(v numeric) RETURNS numeric
  LANGUAGE sql ${definer}
  RETURN CASE
    WHEN v = pg_catalog.trunc(v) AND v >= -9223372036854775808 AND v <= 9223372036854775807
      THEN ${s}._feistel(v::bigint, 32, 8)::numeric
    ELSE pg_catalog.round((${s}._word(${s}._mac('N:', pg_catalog.convert_to(v::text, 'UTF8'))) - 2147483648)::numeric
      / (10::numeric ^ pg_catalog.scale(v)), pg_catalog.scale(v))
  END;

CREATE OR REPLACE FUNCTION ${s}.scramble(v uuid) RETURNS uuid
  LANGUAGE sql ${definer}
  RETURN pg_catalog.encode(pg_catalog.substring(${s}._mac('U:', pg_catalog.uuid_send(v)), 1, 16), 'hex')::pg_catalog.uuid;

-- Keyed: an unkeyed digest of a short value (an SSN) is reversed by trying them all.
CREATE OR REPLACE FUNCTION ${s}.hash(v text) RETURNS text
  LANGUAGE sql ${definer}
  RETURN pg_catalog.encode(${s}._mac('H:', pg_catalog.convert_to(v, 'UTF8')), 'hex');

-- Identifies the installed key without revealing it (scrambleKeyId() in pgveil).
CREATE OR REPLACE FUNCTION ${s}.key_id() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  RETURN pg_catalog.left(pg_catalog.encode(${s}._mac('K:', pg_catalog.convert_to('pgveil key id', 'UTF8')), 'hex'), 16);

REVOKE ALL ON FUNCTION ${[...internalFns, ...publicFns].map((f) => `${s}.${f}`).join(', ')} FROM PUBLIC;
REVOKE ALL ON FUNCTION ${internalFns.map((f) => `${s}.${f}`).join(', ')} FROM ${svc};
GRANT EXECUTE ON FUNCTION ${publicFns.map((f) => `${s}.${f}`).join(', ')} TO ${svc};
RESET ROLE;
DO ${warnings};
COMMIT;
`;
}
