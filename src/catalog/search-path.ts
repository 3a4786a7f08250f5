// Parses a search_path value the way the server does (SplitIdentifierString
// in varlena.c), so pgveil and PostgreSQL agree on the schema list whether the
// value came from SHOW, a ParameterStatus message or set_config(): names are
// comma-separated, whitespace around them is ignored, double-quoted names keep
// their case and collapse "" to ", unquoted names are folded to lower case
// (ASCII only, as for a UTF-8 database) and run to the next comma or blank,
// and every name is truncated to 63 bytes (NAMEDATALEN - 1).

const MAX_IDENTIFIER_BYTES = 63;

/** scanner_isspace(): the blanks the SQL scanner skips. */
function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/** truncate_identifier(): cut to 63 bytes without splitting a UTF-8 character. */
function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name, 'utf8') <= MAX_IDENTIFIER_BYTES) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const len = Buffer.byteLength(ch, 'utf8');
    if (bytes + len > MAX_IDENTIFIER_BYTES) break;
    out += ch;
    bytes += len;
  }
  return out;
}

/**
 * The schema names of a search_path value in order, `$user` and `pg_temp` kept as written (their meaning
 * is applied at resolution). Throws on a value the server would reject (unbalanced quotes, empty unquoted
 * name, missing comma): callers must treat that as "cannot tell" and refuse.
 */
export function parseSearchPath(value: string): string[] {
  const names: string[] = [];
  let i = 0;
  const skipSpaces = (): void => {
    while (i < value.length && isSpace(value[i])) i++;
  };
  skipSpaces();
  if (i === value.length) return names; // the empty string is an empty list
  for (;;) {
    let name: string;
    if (value[i] === '"') {
      name = '';
      i++;
      for (;;) {
        const end = value.indexOf('"', i);
        if (end < 0) throw new Error(`search_path: unterminated quoted name in ${JSON.stringify(value)}`);
        name += value.slice(i, end);
        i = end + 1;
        if (value[i] !== '"') break;
        name += '"';
        i++;
      }
    } else {
      const start = i;
      while (i < value.length && value[i] !== ',' && !isSpace(value[i])) i++;
      if (i === start) throw new Error(`search_path: empty name in ${JSON.stringify(value)}`);
      name = value.slice(start, i).replace(/[A-Z]/g, (c) => c.toLowerCase());
    }
    names.push(truncateIdentifier(name));
    skipSpaces();
    if (i === value.length) return names;
    if (value[i] !== ',') throw new Error(`search_path: expected a comma at offset ${i} in ${JSON.stringify(value)}`);
    i++;
    skipSpaces();
  }
}
