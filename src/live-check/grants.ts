// How the service role holds a privilege, and the SQL that takes it away.
// A role holds what PUBLIC holds, what was granted to it or to any role it
// is a member of (at any depth), and everything on what it or such a role
// owns. Memberships count whether or not they are inherited: pgveil refuses
// SET ROLE, but a route the rewriter missed could use one.
//
// Sources are read from the ACLs (aclexplode over the ACL or its default),
// not from has_*_privilege(): for a superuser every privilege check says yes,
// but the ACLs still tell what remains once it is made an ordinary role.

/**
 * The roles the current user is a member of, itself included: (oid, the
 * member the grant names, null for itself). The owner of the database is
 * implicitly pg_database_owner (which owns schema public from 15 on).
 */
export const memberOfCte = `member_of(oid, via) AS (
    SELECT r.oid, NULL::pg_catalog.name FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER
    UNION ALL
    SELECT 'pg_database_owner'::pg_catalog.regrole::pg_catalog.oid, r.rolname
      FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
     WHERE d.datname = pg_catalog.current_database() AND r.rolname = CURRENT_USER
    UNION
    SELECT m.roleid, mr.rolname FROM pg_catalog.pg_auth_members m
      JOIN member_of mo ON m.member = mo.oid
      JOIN pg_catalog.pg_roles mr ON mr.oid = m.member)`;

/**
 * A JSON array of GrantSource for privilege `privilege` (e.g. 'SELECT') on an
 * object with ACL `acl`, default-ACL kind `kind` ('r' relation, 's' sequence,
 * 'f' function, 'n' schema, 'd' database; or an SQL expression of type
 * "char") and owner `owner`. Needs member_of.
 */
export function grantSourcesSql(acl: string, kind: string, owner: string, privilege: string): string {
  const kindSql = /^[a-z]$/.test(kind) ? `'${kind}'::pg_catalog."char"` : kind;
  return `(SELECT pg_catalog.json_agg(DISTINCT pg_catalog.jsonb_build_object(
        'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(g.rolname) END,
        'owner', a.grantee = ${owner},
        'via', (SELECT pg_catalog.quote_ident(mo.via) FROM member_of mo WHERE mo.oid = a.grantee AND mo.via IS NOT NULL LIMIT 1)))
      FROM pg_catalog.aclexplode(COALESCE(${acl}, pg_catalog.acldefault(${kindSql}, ${owner}))) a
      LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
     WHERE a.privilege_type = '${privilege}' AND (a.grantee = 0 OR a.grantee IN (SELECT oid FROM member_of)))`;
}

/** The service role and its database, quoted (quote_ident). */
export interface Grantee { role: string; database: string }

export interface GrantSource {
  /** A quoted role name, or PUBLIC. */
  grantee: string;
  /** The grantee owns the object: its privileges come with ownership. */
  owner: boolean;
  /** When the grantee is a role the service role is a member of: the member that role was granted to (quoted). */
  via: string | null;
}

/** Parses a grantSourcesSql() value as node-postgres returns it (json is parsed already; null when none). */
export function grantSources(value: unknown): GrantSource[] {
  return Array.isArray(value) ? (value as GrantSource[]) : [];
}

/**
 * In words: "PUBLIC", "a direct grant", "membership in etl", "owning it".
 * pg_database_owner is no membership anyone granted: it comes with owning the database.
 */
export function describeSources(sources: readonly GrantSource[], role: string): string {
  return sources.map((s) => {
    if (s.owner && s.grantee === 'pg_database_owner') return 'owning the database (its owner is pg_database_owner)';
    if (s.owner) return s.grantee === role ? `owning it` : `membership in its owner ${s.grantee}`;
    if (s.grantee === 'PUBLIC') return 'PUBLIC';
    return s.grantee === role ? 'a direct grant' : `membership in ${s.grantee}`;
  }).join(', ');
}

/**
 * The statements that take a privilege away: one REVOKE from every grantee,
 * and for ownership either a new owner (placeholder `<owner>`) or the end of
 * the membership in the owning role.
 */
export function revokeStatements(privilege: string, objectType: string, objectName: string, sources: readonly GrantSource[], who: Grantee): string[] {
  const role = who.role;
  const out: string[] = [];
  const grantees = [...new Set(sources.filter((s) => !s.owner).map((s) => s.grantee))];
  if (grantees.length) out.push(`REVOKE ${privilege} ON ${objectType} ${objectName} FROM ${grantees.join(', ')};`);
  for (const s of sources.filter((x) => x.owner)) {
    if (s.grantee === role) out.push(`ALTER ${objectType} ${objectName} OWNER TO <owner>;`);
    else if (s.grantee === 'pg_database_owner') out.push(`ALTER DATABASE ${who.database} OWNER TO <owner>;`);
    else out.push(`REVOKE ${s.grantee} FROM ${s.via ?? role};`);
  }
  return out;
}
