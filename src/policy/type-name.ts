// The type a mask casts its result to, so that `SELECT *` through a masked
// column keeps the column's type OID and typmod in RowDescription.
//
// format_type's text (`integer`, `character varying(20)`) is not used for
// built-in types: names like `text`, `date` or `uuid` in it are looked up on
// search_path, where pg_temp or an earlier schema could shadow them (threat
// C5). Built-in types are written `pg_catalog.<typname>(<modifiers>)` with the
// modifiers decoded from the typmod. Other types (domains, enums, types of
// extensions) use the catalog's sqlType, which the catalog loader produces
// with search_path = pg_catalog so that they come out schema-qualified.
import type { CatalogColumn } from '../catalog/types.js';

/** OIDs below this are assigned by genbki: built-in types of pg_catalog. */
const FIRST_GENBKI_OBJECT_ID = 10000;
const VARHDRSZ = 4;
const plain = /^[a-z_][a-z0-9_]*$/;

export class TypeNameError extends Error {}

export function isBuiltinType(column: CatalogColumn): boolean {
  return column.typeOid < FIRST_GENBKI_OBJECT_ID;
}

/** `pg_catalog.varchar(20)`, `pg_catalog._numeric(10,2)`, `crm.ssn_t` … */
export function castTypeName(column: CatalogColumn): string {
  if (!isBuiltinType(column)) return column.sqlType;
  const name = plain.test(column.baseType) ? column.baseType : `"${column.baseType.replace(/"/g, '""')}"`;
  const element = column.category === 'A' && column.baseType.startsWith('_') ? column.baseType.slice(1) : column.baseType;
  const mods = typmodArgs(element, column.typmod);
  return `pg_catalog.${name}${mods.length ? `(${mods.join(',')})` : ''}`;
}

/** The arguments of the type's typmodin that give back `typmod` (inverse of varchartypmodin, numerictypmodin …). */
export function typmodArgs(typname: string, typmod: number): number[] {
  if (typmod < 0) return [];
  switch (typname) {
    case 'varchar': case 'bpchar':
      return [typmod - VARHDRSZ];
    case 'numeric': {
      const t = typmod - VARHDRSZ;
      // The scale is an 11-bit signed field since PostgreSQL 15 (numeric(2,-3)).
      return [(t >> 16) & 0xffff, ((t & 0x7ff) ^ 1024) - 1024];
    }
    case 'time': case 'timetz': case 'timestamp': case 'timestamptz': case 'bit': case 'varbit':
      return [typmod];
    case 'interval': {
      const range = (typmod >> 16) & 0x7fff;
      const precision = typmod & 0xffff;
      return precision === 0xffff ? [range] : [range, precision];
    }
    default:
      throw new TypeNameError(`cannot spell type ${typname} with typmod ${typmod}`);
  }
}
