// What a statement does to the state of the upstream session that pgveil
// must track: the prepared statements and portals it creates, uses or drops
// (one namespace each, as in PostgreSQL: SQL PREPARE and protocol Parse make
// statements, SQL DECLARE and protocol Bind make portals), and whether it
// may change search_path or end a transaction (which undoes SET LOCAL and
// SETs made in a rolled-back transaction).

export type ObjectKind = 'statement' | 'portal';

export type ObjectEffect =
  | { op: 'create'; kind: ObjectKind; name: string; holdable: boolean; statement: number }
  | { op: 'use'; kind: ObjectKind; name: string; statement: number }
  /** `name` null: every object of the kind (DEALLOCATE ALL, CLOSE ALL, DISCARD ALL). */
  | { op: 'drop'; kind: ObjectKind; name: string | null; statement: number };

export interface SessionEffects {
  /** Running it may change search_path (SET, RESET ALL, DISCARD ALL, set_config …). */
  changesSearchPath: boolean;
  /** COMMIT, ROLLBACK [TO], PREPARE TRANSACTION: undoes what the transaction SET, if anything. */
  endsTransaction: boolean;
  /** In statement order; `statement` is the index of the statement in its message. */
  objects: ObjectEffect[];
}

export const noObjects: readonly ObjectEffect[] = Object.freeze([]);
