// return_to is a same-origin relative path or '/': unit and property tests.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { safeReturnTo } from '../../src/bff/return-to.ts';
import { MAX_URI_BYTES } from '../../src/verify/canonical-uri.ts';

describe('safeReturnTo', () => {
  it('keeps same-origin relative paths (with query and fragment)', () => {
    assert.equal(safeReturnTo('/'), '/');
    assert.equal(safeReturnTo('/orders/7?tab=lines#x'), '/orders/7?tab=lines#x');
    assert.equal(safeReturnTo('/a/./b/../c'), '/a/c');
    // Encoded slashes in the query or fragment are data: the page a login began on comes back.
    assert.equal(safeReturnTo('/app?next=%2Fhome'), '/app?next=%2Fhome');
    assert.equal(safeReturnTo('/app#/x%2Fy%5Cz'), '/app#/x%2Fy%5Cz');
  });

  it('keeps any path the sidecar lets through (up to its 8 KiB URI limit): a long link survives the sign-in', () => {
    const long = '/app/report?q=' + 'a'.repeat(MAX_URI_BYTES - 14);
    assert.equal(long.length, MAX_URI_BYTES);
    assert.equal(safeReturnTo(long), long);
    // Longer than that once encoded (é is six characters as %C3%A9): '/', never an unbounded Location.
    const grown = safeReturnTo('/' + '\u00e9'.repeat(1500));
    assert.ok(grown === '/', `kept, ${grown.length} characters long`);
  });

  it('turns everything else into /', () => {
    for (const bad of [
      undefined, 42, '', 'orders', '//evil.com', '///evil.com', '/\\evil.com', '\\\\evil.com', 'https://evil.com',
      'http:/evil.com', 'javascript:alert(1)', 'data:text/html,x', '/%2F%2Fevil.com', '/%2fevil.com', '/%5cevil.com', '/a%2F/evil?x', '/%2F#x',
      '/\t/evil.com', '/\n/evil.com', '/\r//evil.com', '/ /evil.com', '/x\u0000y', '/x\u007f', '/a\\b', '/' + 'a'.repeat(MAX_URI_BYTES),
    ]) {
      assert.equal(safeReturnTo(bad), '/', JSON.stringify(bad));
    }
  });

  it('turns a path under /auth/ (the BFF\'s, no page to come back to) into /, however spelled', () => {
    for (const bad of ['/auth/login', '/auth/login?return_to=/auth/login%3Freturn_to%3D%2F', '/auth/logout', '/auth/callback?state=x&code=y',
      '/auth/session', '/auth/', '/a/../auth/logout', '/%61uth/login', '/auth/%6cogin', '/./auth/login#x']) {
      assert.equal(safeReturnTo(bad), '/', bad);
    }
    // The edge's `auth` router is /auth/... exactly (case-sensitive): these are the SPA's.
    for (const ok of ['/auth', '/authors/1', '/Auth/x', '/app/auth/login', '/app?next=/auth/login', '/app#/auth/login']) {
      assert.equal(safeReturnTo(ok), ok, ok);
    }
  });

  it('property: any input resolves to a path on our own origin', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.string().map((s) => '/' + s), fc.string().map((s) => '//' + s)), (input) => {
      const out = safeReturnTo(input);
      assert.ok(out.startsWith('/'));
      assert.ok(!out.startsWith('//') && !out.startsWith('/\\'));
      const base = 'https://app.example.test';
      assert.equal(new URL(out, base).origin, base);
      // Idempotent: what we redirect to is itself a valid return_to.
      assert.equal(safeReturnTo(out), out);
    }), { numRuns: 2000 });
  });
});
