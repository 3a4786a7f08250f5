// Captures the statements that reached upstream (PostgreSQL started with
// log_statement = all), so a test can look at pgveil's rewrite from the
// server's side — e.g. EXPLAIN it as the superuser, since EXPLAIN through
// pgveil is refused over protected tables.
import type pg from 'pg';

/** What every guarded subquery pgveil sends holds: its relation, schema-qualified and quoted. */
const GUARDED = /FROM (ONLY )?"[^"]+"\."/;

export class UpstreamLog {
  private text = '';
  readonly settings = { log_statement: 'all' };
  readonly onLog = (chunk: string) => { this.text += chunk; };

  clear(): void { this.text = ''; }

  /**
   * The last statement logged since clear() that contains `marker` (by
   * default a guarded subquery's `FROM "schema"."table"`, fenced or not), with
   * `prepare name(...) as` stripped. The server's log arrives through a pipe,
   * a moment after the answer: wait for it up to two seconds.
   */
  async last(marker: string | RegExp = GUARDED): Promise<string> {
    const holds = (line: string) => (typeof marker === 'string' ? line.includes(marker) : marker.test(line));
    for (let waited = 0; ; waited += 20) {
      // `statement:` (simple), `execute <name>:` (extended; pgveil's own statements are named pgveil:<n>), `prepare:` (the DETAIL of a SQL EXECUTE)
      const all = this.text.split('\n');
      let at = all.length - 1;
      while (at >= 0 && !(holds(all[at]) && /(statement|execute \S*|prepare): /.test(all[at]))) at--;
      const line = all[at];
      if (line) {
        const text = line.replace(/^.*?(?:statement|execute \S*?|prepare): /, '').replace(/^prepare\s+\w+(\([^)]*\))?\s+as\s+/i, '');
        return /execute pgveil:\d+: /.test(line) ? inlineParameters(text, all[at + 1] ?? '') : text;
      }
      if (waited >= 2000) throw new Error(`no upstream statement containing ${marker} was logged`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * A statement pgveil ran as its own prepared statement (upstream statement
 * reuse: the client's numbers bound as $1 …) with the numbers put back from
 * the log's `DETAIL:  parameters: $1 = '5', …` line: the statement as the
 * client's text would have run inline.
 */
function inlineParameters(text: string, detail: string): string {
  const values = new Map([...detail.matchAll(/\$(\d+) = '([^']*)'/g)].map((m) => [m[1], m[2]]));
  return text.replace(/\$(\d+)\b/g, (whole, n: string) => values.get(n) ?? whole);
}

/** EXPLAIN (COSTS OFF) of a statement as the superuser; `$n` parameters are bound from `values`. */
export async function explainAsSuperuser(client: pg.Client, sql: string, values: unknown[] = []): Promise<string> {
  if (!values.length) {
    const r = await client.query(`explain (costs off) ${sql}`);
    return r.rows.map((row: Record<string, string>) => row['QUERY PLAN']).join('\n');
  }
  await client.query(`prepare pgveil_probe as ${sql}`);
  try {
    const args = values.map((v) => `'${String(v).replace(/'/g, "''")}'`).join(', ');
    const r = await client.query(`explain (costs off) execute pgveil_probe(${args})`);
    return r.rows.map((row: Record<string, string>) => row['QUERY PLAN']).join('\n');
  } finally {
    await client.query('deallocate pgveil_probe');
  }
}
