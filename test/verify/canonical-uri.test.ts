import assert from 'node:assert/strict';
import { canonicalize, MAX_URI_BYTES } from '../../src/verify/canonical-uri.ts';
import { GoldpathError } from '../../src/errors.ts';

function status(uri: string | undefined): number {
  try {
    canonicalize(uri);
    return 200;
  } catch (e) {
    assert.ok(e instanceof GoldpathError);
    return e.status;
  }
}

describe('verify: canonical URI', function () {
  it('keeps plain paths as they are', function () {
    assert.deepEqual(canonicalize('/api/orders/1?x=%20y'), { path: '/api/orders/1', raw: '/api/orders/1?x=%20y' });
    assert.equal(canonicalize('/api/orders/').path, '/api/orders/');
  });
  it('decodes percent-encoded segments, including UTF-8', function () {
    assert.equal(canonicalize('/api/orders/caf%C3%A9').path, '/api/orders/café');
    assert.equal(canonicalize('/api/%6Frders').path, '/api/orders');
    assert.equal(canonicalize('/api/a%3Fb').path, '/api/a?b');
  });
  it('rejects raw control bytes, spaces, non-ASCII, fragments and tabs anywhere', function () {
    for (const c of ['\0', '\x01', '\t', '\n', '\r', ' ', '\x7f', '\x80', 'é', '#']) {
      assert.equal(status(`/api/orders/a${c}b`), 400, JSON.stringify(c));
      assert.equal(status(`/api/orders/1?q=a${c}b`), 400, JSON.stringify(c));
    }
  });
  it('rejects encoded C1 controls and every encoded slash or backslash', function () {
    for (const u of ['/a/%C2%85', '/a/%2f', '/a/%2F', '/a/%5C', '/a/%5c', '/a/b%2Fc']) assert.equal(status(u), 400, u);
  });
  it('rejects missing, relative and absolute-form URIs', function () {
    for (const u of [undefined, '', 'api/x', 'http://evil/api', '*']) assert.equal(status(u), 400, String(u));
  });
  it('names why a segment is refused: a dot segment, or one of spaces only', function () {
    const why = (uri: string) => {
      try {
        canonicalize(uri);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    for (const u of ['/a/..', '/a/%2e%2E/b', '/a/.%20', '/a/...']) assert.match(why(u), /dot segment/, u);
    for (const u of ['/a/%20', '/a/%20%20/b']) assert.match(why(u), /all-space segment/, u);
  });
  it('414 only beyond 8 KiB', function () {
    assert.equal(status('/' + 'a'.repeat(MAX_URI_BYTES - 1)), 200);
    assert.equal(status('/' + 'a'.repeat(MAX_URI_BYTES)), 414);
  });
});
