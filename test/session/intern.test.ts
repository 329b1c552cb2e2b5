// src/session/intern.ts: the shared strings of decrypted sessions are de-duplicated in place,
// without changing any value.
import assert from 'node:assert/strict';
import { intern, internedCount, internSecrets } from '../../src/session/intern.ts';
import type { SessionSecrets } from '../../src/session/types.ts';
import { newSession } from '../helpers/sessions.ts';

describe('session string interning', function () {
  it('leaves every value of parsed secrets as it was, whatever their shape', function () {
    const secrets = newSession({ roles: ['reader', 'admin'] }).secrets;
    const json = JSON.stringify(secrets);
    const parsed = JSON.parse(json) as SessionSecrets;
    assert.equal(internSecrets(parsed), parsed, 'in place');
    assert.equal(JSON.stringify(parsed), json);
    // Odd shapes (old or hand-made sessions) pass through untouched instead of throwing.
    for (const odd of [{}, { user: null, tokens: null }, { user: { roles: 'x' }, tokens: { a: null, b: 1 } }]) {
      const before = JSON.stringify(odd);
      internSecrets(odd as unknown as SessionSecrets);
      assert.equal(JSON.stringify(odd), before);
    }
  });

  it('returns equal strings for any input, and never holds more than 4,096 or long ones', function () {
    for (let i = 0; i < 10_000; i++) {
      assert.equal(intern(`role-${i}`), `role-${i}`);
      assert.ok(internedCount() <= 4096, `${internedCount()} strings held`);
    }
    const before = internedCount();
    const long = 'x'.repeat(65);
    assert.equal(intern(long), long);
    assert.equal(internedCount(), before, 'a long string is not held');
    assert.equal(intern(''), '');
  });
});
