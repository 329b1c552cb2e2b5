// The sidecar reads its ten headers from rawHeaders itself (src/verify/request-headers.ts): it
// must see exactly what Node's req.headers would show, for any casing and any repetition.
import assert from 'node:assert/strict';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import fc from 'fast-check';
import { readRequestHeaders, type RequestHeaders } from '../../src/verify/request-headers.ts';

const FIELDS: [keyof RequestHeaders, string][] = [
  ['method', 'x-forwarded-method'], ['uri', 'x-forwarded-uri'], ['cookie', 'cookie'], ['requestId', 'x-request-id'],
  ['origin', 'origin'], ['secFetchMode', 'sec-fetch-mode'], ['secFetchSite', 'sec-fetch-site'], ['csrfToken', 'x-csrf-token'],
  ['preflightMethod', 'access-control-request-method'], ['webSocketKey', 'sec-websocket-key'],
];
const OTHERS = ['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'user-agent', 'x-origin', 'cookie2', 'authorization'];

/** What Node's own req.headers holds for these raw headers. */
function nodeHeaders(raw: string[]): Record<string, string | string[] | undefined> {
  const m = new IncomingMessage(new Socket()) as IncomingMessage & { _addHeaderLines(h: string[], n: number): void };
  m._addHeaderLines(raw, raw.length); // what Node's HTTP parser calls with the header lines it read
  return m.headers;
}

describe('verify: request headers from rawHeaders', function () {
  it('match req.headers for every casing and repetition (property)', function () {
    const casing = (name: string) => fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length })
      .map((up) => [...name].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
    const header = fc.constantFrom(...FIELDS.map(([, n]) => n), ...OTHERS).chain((n) => fc.tuple(casing(n), fc.string({ maxLength: 12 })));
    fc.assert(fc.property(fc.array(header, { maxLength: 14 }), (pairs) => {
      const raw = pairs.flat();
      const ours = readRequestHeaders(raw);
      const node = nodeHeaders(raw);
      for (const [field, name] of FIELDS) assert.equal(ours[field], node[name], `${name} in ${JSON.stringify(pairs)}`);
    }), { numRuns: 500 });
  });

  it('reads Traefik\'s canonical spellings and lower case alike', function () {
    const h = readRequestHeaders(['X-Forwarded-Uri', '/a', 'x-forwarded-method', 'POST', 'X-Csrf-Token', 't', 'X-CSRF-TOKEN', 'u', 'cookie', 'a=1', 'Cookie', 'b=2']);
    assert.equal(h.uri, '/a');
    assert.equal(h.method, 'POST');
    assert.equal(h.csrfToken, 't, u');
    assert.equal(h.cookie, 'a=1; b=2');
    assert.equal(h.origin, undefined);
  });
});

describe('verify: look-alikes of the headers the sidecar sets', function () {
  // CGI-style servers (RFC 3875 4.1.18: Rack, WSGI, PHP, …) turn every character of a header name
  // that is not a letter or a digit into "_": for them all these spellings are HTTP_X_AUTH_USER, so
  // a client could send one past Traefik, which replaces only X-Auth-User (authResponseHeaders).
  it('flags every separator spelling of X-Auth-User, X-Auth-Roles, X-Request-Id and the method overrides', function () {
    for (const name of ['X_Auth_User', 'X.Auth.User', 'x~auth~user', 'X+Auth+User', 'X!Auth!User', "X'Auth'User", 'X-Auth.User',
      'X|Auth|User', 'X^Auth^User', 'X`Auth`User', 'X#Auth#User', 'X$Auth$User', 'X%Auth%User', 'X&Auth&User', 'X*Auth*User',
      'X.Auth.Roles', 'X.Request.Id', 'X.HTTP.Method.Override', 'X.Method.Override', 'X.HTTP.Method']) {
      assert.equal(readRequestHeaders([name, 'admin']).confusing, name, name);
    }
  });

  it('leaves the real names and near misses alone', function () {
    for (const name of ['X-Auth-User', 'x-auth-user', 'X-Auth-Roles', 'X-Request-Id', 'X.Auth.Users', 'X_Auth_User_', 'XAuthUser.',
      'X-Auth-Usex', 'X1Auth1User', 'Http_X_Auth_User']) {
      assert.equal(readRequestHeaders([name, 'admin']).confusing, undefined, name);
    }
  });
});
