// The lexical helpers the splicer uses to find where names end, and the
// splicer itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModule, parseSync } from 'libpg-query';
import { SqlText, closeParens, constantEnd, identifierEnd, keywordBefore, matchingParen, qualifiedNameEnd, skipSpace } from '../../src/rewrite/sql-text.js';
import { splice } from '../../src/rewrite/splice.js';

test.before(async () => { await loadModule(); });

test('A1 qualified names end where Postgres says, whatever the spelling', () => {
  const cases: Array<[string, string]> = [
    ['select * from crm.employees e', 'crm.employees'],
    ['select * from "crm"."employees" e', '"crm"."employees"'],
    ['select * from CRM.EMPLOYEES', 'CRM.EMPLOYEES'],
    ['select * from crm . /**/ employees where 1=1', 'crm . /**/ employees'],
    ['select * from U&"\\0063rm".employees', 'U&"\\0063rm".employees'],
    ['select * from "we""ird"."t" x', '"we""ird"."t"'],
    ['select * from crm.employees_é', 'crm.employees_é'],
    ["select 'é', * from crm.employees", 'crm.employees'],
    // `--` comments end at \r as at \n, as PostgreSQL's lexer has it
    ['select * from crm --c\r.employees e', 'crm --c\r.employees'],
    ['select * from crm --c\r\n. /* a /* b */ */ employees e', 'crm --c\r\n. /* a /* b */ */ employees'],
    ['select * from U&"c!0072m" UESCAPE \'!\' . employees', 'U&"c!0072m" UESCAPE \'!\' . employees'],
  ];
  for (const [sql, name] of cases) {
    const stmt = parseSync(sql).stmts![0].stmt as { SelectStmt: { fromClause: Array<{ RangeVar: { location: number } }> } };
    const text = new SqlText(sql);
    const start = text.index(stmt.SelectStmt.fromClause[0].RangeVar.location);
    const end = qualifiedNameEnd(sql, start, 2);
    assert.is(sql.slice(start, end), name, sql);
  }
});

test('identifierEnd, skipSpace, keywordBefore and closeParens', () => {
  assert.is(identifierEnd('abc def', 0), 3);
  assert.is(identifierEnd('"a""b" x', 0), 6);
  assert.is(identifierEnd('1abc', 0), -1);
  assert.is(skipSpace('  -- c\n /* a /* nested */ b */ x', 0), 31);
  assert.equal(keywordBefore('select * from only ( crm.t )', 21, 'only'), { start: 14, parens: 1 });
  assert.is(keywordBefore('select * from donly crm.t', 20, 'only'), undefined);
  assert.is(closeParens('crm.t ) )', 5, 2), 9);
  assert.is(closeParens('crm.t x', 5, 1), -1);
  assert.is(skipSpace('-- c\r\fx', 0), 6);
  assert.is(skipSpace('/* unterminated', 0), 15);
});

test('constantEnd and matchingParen read literals as PostgreSQL does', () => {
  const end = (sql: string) => sql.slice(0, constantEnd(sql, 0));
  assert.is(end("'a'\n'b' x"), "'a'\n'b'"); // one literal across a newline
  assert.is(end("E'a\\'b' x"), "E'a\\'b'");
  assert.is(end('0x1F x'), '0x1F');
  assert.is(end('1.5e3 x'), '1.5e3');
  assert.is(end('$12 x'), '$12');
  assert.is(constantEnd('$$a$$', 0), -1); // left where it is, as before
  assert.is(constantEnd('x', 0), -1);
  assert.is(constantEnd('123abc', 0), -1);
  const paren = (sql: string) => sql.slice(0, matchingParen(sql, 0));
  assert.is(paren("(E'\\')', $$)$$, \"x)\", ')' -- )\r) x"), "(E'\\')', $$)$$, \"x)\", ')' -- )\r)");
  assert.is(paren('((a) /* ) */ b) c'), '((a) /* ) */ b)');
  assert.is(matchingParen("('x", 0), -1);
});

test('SqlText maps parser byte offsets to string indices', () => {
  const sql = "select 'é😀', x from t";
  const stmt = parseSync(sql).stmts![0].stmt as { SelectStmt: { fromClause: Array<{ RangeVar: { location: number } }> } };
  const idx = new SqlText(sql).index(stmt.SelectStmt.fromClause[0].RangeVar.location);
  assert.is(sql.slice(idx), 't');
});

test('splice keeps everything outside the edits and maps indices', () => {
  const sql = 'select a, 1 from crm.t /* keep */ where b = 2';
  const start = sql.indexOf('crm.t');
  const s = splice(sql, [{ start, end: start + 5, text: '(SELECT 1) AS "t"', generated: true }]);
  assert.is(s.sql, 'select a, 1 from (SELECT 1) AS "t" /* keep */ where b = 2');
  assert.equal(s.generated, [start, start + 17]);
  const two = sql.indexOf('2');
  assert.is(s.sql[s.map(two)], '2');
  assert.is(s.map(sql.indexOf('1')), sql.indexOf('1'));
  assert.throws(() => splice(sql, [{ start: 0, end: 5, text: 'x', generated: false }, { start: 3, end: 6, text: 'y', generated: false }]));
});

test.run();
