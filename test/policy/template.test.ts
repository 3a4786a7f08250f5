// Policy filter templates are lexed as PostgreSQL lexes them: a `--` comment
// ends at \r as at \n, so text after a \r is kept, not dropped with the
// comment (which would loosen the filter the DBA wrote).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTemplate } from '../../src/policy/template.js';

test('a -- comment ends at \\r, \\r\\n or \\n: what follows stays in the filter', () => {
  for (const eol of ['\r', '\r\n', '\n']) {
    const { template, problems } = parseTemplate(`org_id = \${user.org} -- note${eol} AND active`, { column: false });
    assert.equal(problems, []);
    assert.ok(template!.parts.join('').includes('AND active'), JSON.stringify(eol));
    assert.not.ok(template!.parts.join('').includes('note'), 'the comment itself is dropped');
  }
});

test('a placeholder after a \\r-ended comment is live, not commented out', () => {
  const { template, problems } = parseTemplate('org_id = -- c\r${user.org}', { column: false });
  assert.equal(problems, []);
  assert.equal(template!.slots, ['user.org']);
});

test.run();
