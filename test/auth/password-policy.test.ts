import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPasswordPolicy } from '../../src/auth/password-policy.js';
import { createVerifier } from '../../src/auth/scram-verifier.js';

const policy = { minLength: 12, minClasses: 3, maxAgeDays: 90, history: 2 };

test('a good password has no problems', () => {
  assert.equal(checkPasswordPolicy('Correct-horse-7', policy, []), []);
});

test('too short', () => {
  const problems = checkPasswordPolicy('Ab1!', policy, []);
  assert.is(problems.length, 1);
  assert.match(problems[0], /too short/);
  assert.match(problems[0], /12/);
  assert.not.ok(problems[0].includes('Ab1!'), 'the password is never in a message');
});

test('length counts characters, not UTF-16 units', () => {
  const p = { ...policy, minLength: 4, minClasses: 1 };
  assert.equal(checkPasswordPolicy('\u{1F642}\u{1F642}\u{1F642}\u{1F642}', p, []), []);
  assert.is(checkPasswordPolicy('\u{1F642}\u{1F642}', p, []).length, 1);
});

test('character classes: lower, upper, digit, other', () => {
  assert.match(checkPasswordPolicy('alllowercaseletters', policy, [])[0], /1 of the character classes/);
  assert.match(checkPasswordPolicy('lowerUPPERletters', policy, [])[0], /2 of the character classes/);
  assert.equal(checkPasswordPolicy('lowerUPPER12345', policy, []), []);
  assert.equal(checkPasswordPolicy('lower UPPER spaces', policy, []), [], 'a space is "other"');
  assert.equal(checkPasswordPolicy('\u00FCber\u00C4rger\u00DF\u00DF99', policy, []), [], 'non-ASCII letters count as letters');
  const both = checkPasswordPolicy('abc', policy, []);
  assert.is(both.length, 2, 'every problem is listed');
});

test('history: not one of the last `history` passwords', () => {
  const previous = [createVerifier('Current-pass-1'), createVerifier('Older-pass-2'), createVerifier('Oldest-pass-3')];
  assert.match(checkPasswordPolicy('Current-pass-1', policy, previous)[0], /used recently/);
  assert.match(checkPasswordPolicy('Older-pass-2', policy, previous)[0], /used recently/);
  assert.equal(checkPasswordPolicy('Oldest-pass-3', policy, previous), [], 'beyond history: 2');
  assert.equal(checkPasswordPolicy('Brand-new-pass-4', policy, previous), []);
  assert.equal(checkPasswordPolicy('Current-pass-1', { ...policy, history: 0 }, previous), []);
  assert.equal(checkPasswordPolicy('Brand-new-pass-4', policy, ['not a verifier']), [], 'malformed entries never match');
});

test.run();
