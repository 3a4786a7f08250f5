// Which numeric constants may go upstream as parameters (upstream statement
// reuse): only operands of a comparison, IN list or BETWEEN against a plain
// column, in WHERE / JOIN … ON conditions of one plain SELECT — never where
// PostgreSQL matches expressions by equality, reads a constant as a column
// position, folds constants, or plans by the value. The differential test
// (session/statement-reuse.test.ts) proves the answers; this pins the rule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, parseSync } from 'libpg-query';
import { parameterSafeConstants } from '../../src/rewrite/parameter-slots.js';
import { SqlText } from '../../src/rewrite/sql-text.js';

await loadModule();

/** The constants found safe, as the text at each index up to the next space, comma or parenthesis. */
function safe(sql: string): string[] | undefined {
  const found = parameterSafeConstants(parseSync(sql).stmts ?? [], new SqlText(sql));
  return found && [...found].sort((a, b) => a - b).map((i) => /^[^\s,)]+/.exec(sql.slice(i))![0]);
}

test('comparisons, IN lists and BETWEEN against a column in WHERE and ON are safe; the constants are found where they stand', () => {
  assert.equal(safe('select a from t join u on u.x = 5 where t.b in (1, 2.5) and (c between 3 and 4 or 6 <> d) and not e >= 3000000000'), ['5', '1', '2.5', '3', '4', '6', '3000000000']);
  assert.equal(safe('select * from (select a from t where a < 7) s where exists (select 1 from u where u.id = 8) union select a from v where a = 9'), ['7', '8', '9']);
  assert.equal(safe('with c as (select a from t where a = 1) select * from c where a > 2'), ['1', '2']);
  assert.equal(safe('select a from t where é = 1 and b = 2'), ['1', '2'], 'string indices, not UTF-8 byte offsets');
});

test('constants elsewhere stay inline: target list, GROUP BY, HAVING, ORDER BY, LIMIT, folded or negated numbers, strings, non-comparisons', () => {
  assert.equal(safe('select a = 1, 2 from t group by a = 3 having a = 4 order by 1 limit 5 offset 6'), []);
  assert.equal(safe('select a from t where a = 1 / 0 and b = -3 and c = +4 and d = 5::int and e + 1 = 2 and f = abs(7) and g = \'8\' and h like 9'), []);
  assert.equal(safe('select a from t where a = b and 1 = 2 and a is distinct from 3 and a = any(array[4])'), []);
  assert.equal(safe('select (select count(*) from t where a = 1) from u'), [], 'a subquery in the target list is matched by equality with GROUP BY');
});

test('only one plain SELECT qualifies', () => {
  assert.is(safe('update t set a = 1 where b = 2'), undefined);
  assert.is(safe('select a into newtable from t where a = 1'), undefined);
  assert.is(safe('select a from t where a = 1; select 2'), undefined);
  assert.equal(safe('select 1'), []);
});

test('a statement that refers to a parameter ($1) gets no parameter form, wherever the $1 stands; a $ that is no parameter does not stop one', () => {
  assert.is(safe('select a from t where a = $1 and b = 2'), undefined);
  assert.is(safe('select a from t where b = 2 and c in (select $1::int)'), undefined);
  assert.equal(safe('select a, $$x$$ from t where b = 2'), ['2']);
  assert.equal(safe('select "$a" from t where b = 3'), ['3']);
});

test.run();
