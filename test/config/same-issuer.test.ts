// sameIssuer compares a logout token's unverified `iss` (anyone's to send) with each IdP's issuer.
import assert from 'node:assert/strict';
import { sameIssuer } from '../../src/config/idps.ts';

describe('sameIssuer', () => {
  it('ignores trailing slashes on either side, and only those', () => {
    assert.ok(sameIssuer('https://idp.example', 'https://idp.example/'));
    assert.ok(sameIssuer('https://idp.example//', 'https://idp.example'));
    assert.ok(sameIssuer('', '///'));
    assert.ok(!sameIssuer('https://idp.example/a', 'https://idp.example'));
    assert.ok(!sameIssuer('https://idp.example/', 'https://idp.example/x/'));
  });

  it('takes linear time over a long run of slashes that does not end the string (no regex backtracking)', () => {
    const hostile = `${'/'.repeat(100_000)}x`;
    const started = performance.now();
    assert.ok(!sameIssuer('https://idp.example', hostile));
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `${ms.toFixed(0)} ms`);
  });
});
