// Property-based test of the X-Forwarded-Uri canonicaliser (src/verify/canonical-uri.ts) against
// reference decoders. For every generated URI, canonicalize() either rejects it, or:
//   (i)  the canonical path is exactly what a WHATWG URL parser plus per-segment
//        decodeURIComponent yields for the path (so no dot segment was removed, no '//' collapsed,
//        no encoded '/' decoded into a separator on either side); and
//   (ii) the route chosen for the canonical path is the route that every modelled upstream would
//        reach: the WHATWG reference, and servers that decode then normalise (Node's naive
//        decode + path.normalize), decode twice, treat '\' as '/', strip ';' path parameters after
//        decoding (Spring, Tomcat-style), apply Unicode NFKC (IIS best fit, some frameworks), or
//        decode and then read the path as a URL again, ending it at a decoded '?' or '#' (Apache's
//        mod_rewrite, CVE-2024-38474; a handler that parses decodeURIComponent(req.url)).
// A route decision that could differ from an upstream's view must have been a 400.
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { canonicalize } from '../../src/verify/canonical-uri.ts';
import { RouteTable } from '../../src/verify/route-table.ts';
import { urlEnd } from '../../src/pdp/rules.ts';
import { GoldpathError } from '../../src/errors.ts';
import type { RouteConfig } from '../../src/config/types.ts';

// Nested and overlapping prefixes, with a catch-all public route: the layout where a confusion
// between two views of a path turns into an authorisation bypass.
const route = (name: string, prefix: string, auth: 'session' | 'public'): RouteConfig => ({ name, prefix, auth, audience: undefined });
const TABLE = new RouteTable([
  route('api-public', '/api', 'public'),
  route('orders', '/api/orders', 'session'),
  route('orders-admin', '/api/orders/admin', 'session'),
  route('public', '/api/public', 'public'),
  route('docs', '/docs', 'public'),
]);
const decision = (p: string | undefined) => (p === undefined ? 'rejected-by-upstream' : TABLE.match(p)?.name ?? 'no-route');

/** Runs `f`; a throw means "this upstream would refuse the request" (undefined). */
function attempt(f: () => string): string | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

const pathOf = (uri: string) => uri.split('?')[0]!.split('#')[0]!;
const decodeSegments = (p: string) => p.split('/').map((s) => decodeURIComponent(s)).join('/');

/** The brief's reference: WHATWG URL (as fetch, Deno, Node's URL see it) + per-segment decode. */
function whatwg(uri: string): string | undefined {
  return attempt(() => decodeSegments(new URL(uri, 'http://upstream.test').pathname));
}

const UPSTREAMS: Record<string, (uri: string) => string | undefined> = {
  whatwg,
  'decode then path.normalize': (uri) => attempt(() => path.posix.normalize(decodeURIComponent(pathOf(uri)))),
  'decode twice': (uri) => attempt(() => decodeSegments(decodeSegments(pathOf(uri)))),
  "'\\' is a separator": (uri) => attempt(() => path.posix.normalize(decodeURIComponent(pathOf(uri)).replaceAll('\\', '/'))),
  "';' parameters stripped after decoding": (uri) => attempt(() => decodeSegments(pathOf(uri)).split('/').map((s) => s.split(';')[0]).join('/')),
  'Unicode NFKC': (uri) => attempt(() => path.posix.normalize(decodeSegments(pathOf(uri)).normalize('NFKC'))),
  "decoded '?' or '#' ends the path": (uri) => attempt(() => decodeSegments(pathOf(uri)).split(/[?#]/)[0]!),
};

/**
 * The canonical path, or undefined when step 1 (canonicalize) refuses it, or step 2 does for a path
 * that a decoded '?' or '#' would cut into another route: a 400 (cutAmbiguous), or the 404 of no
 * route when only the cut path has one.
 */
function accepted(uri: string): string | undefined {
  try {
    const p = canonicalize(uri).path;
    const r = TABLE.match(p);
    if (r === undefined) return urlEnd(p) >= 0 && TABLE.match(p.slice(0, urlEnd(p))) !== undefined ? undefined : p;
    return TABLE.cutAmbiguous(p, r) ? undefined : p;
  } catch (err) {
    assert.ok(err instanceof GoldpathError, `canonicalize threw ${String(err)} for ${JSON.stringify(uri)}`);
    assert.ok(err.status === 400 || err.status === 414, `status ${err.status}`);
    return undefined;
  }
}

/** The property: accepted ⇒ (i) equals the WHATWG reference and (ii) every upstream routes alike. */
function check(uri: string): void {
  const canonical = accepted(uri);
  if (canonical === undefined) return;
  assert.equal(canonical, whatwg(uri), `(i) canonical path differs from the WHATWG reference for ${JSON.stringify(uri)}`);
  const ours = decision(canonical);
  for (const [name, view] of Object.entries(UPSTREAMS)) {
    const theirs = view(uri);
    if (theirs === undefined) continue; // that upstream refuses the request itself: no confusion
    assert.equal(decision(theirs), ours, `(ii) route differs for ${JSON.stringify(uri)}: we see ${JSON.stringify(canonical)}, "${name}" sees ${JSON.stringify(theirs)}`);
  }
}

// Building blocks rich in what confuses path handling.
const TOKENS = [
  '/', '/', '/', '.', '..', '%', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '2e', '2f', '5c', '\\', ';', '%3b', '%3B', '?', '#', '%3f', '%3F', '%23',
  '%25', '%252e', '%252f', '%00', '%0a', '%7f', '%C0%AF', '%C0%AE', '%E2%80%AE', '%EF%BC%8F', '%EF%BC%8E', '%E2%80%A5', '%C2%85',
  '%EF%BC%9B', '%EF%BC%BC', '%EF%BD%8Frders', '%EF%AC%81', 'e%CC%81', '%C2%B2', '%20', ' ', '\t', '\n', '\r', '\0', '\x7f', 'é', '\u00a0', '+', '&', '=', ':', '@', '~', '!', '$', "'",
  '*', ',', '(', ')', '%41', '%6f', '%6F', '%2', '%zz', 'api', 'api', 'orders', 'orders', 'admin', 'public', 'docs', 'a', '1', 'x%2e',
];
const token = fc.constantFrom(...TOKENS);
/** Free-form: any sequence of tokens and arbitrary latin1 characters (header values are latin1). */
const anyUri = fc.array(fc.oneof({ weight: 4, arbitrary: token }, { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }), { maxLength: 14 }).map((p) => '/' + p.join(''));
/** Route-shaped: a real prefix followed by confusing segments, so route decisions are exercised. */
const routed = fc.tuple(
  fc.constantFrom('/api', '/api/orders', '/api/public', '/api/orders/admin', '/docs', '/api/%6Frders', '/api/orders%2Fadmin'),
  fc.array(fc.tuple(fc.constantFrom('/', '/', '\\', '%2f', '%5c', ';', '%3b'), fc.array(token, { maxLength: 3 })).map(([sep, t]) => sep + t.join('')), { maxLength: 5 }),
).map(([prefix, rest]) => prefix + rest.join(''));

describe('verify: canonical URI (property-based)', function () {
  this.timeout(60_000);

  it('accepts only URIs whose canonical path equals the WHATWG reference and routes like every modelled upstream', function () {
    const decisions = new Map<string, number>();
    fc.assert(fc.property(fc.oneof(anyUri, routed), (uri) => {
      check(uri);
      const p = accepted(uri);
      const d = p === undefined ? 'rejected' : decision(p);
      decisions.set(d, (decisions.get(d) ?? 0) + 1);
    }), { numRuns: 20_000 });
    // Not vacuous: thousands accepted, and every route (and no route) decided at least once.
    for (const d of ['rejected', 'no-route', 'api-public', 'orders', 'orders-admin', 'public', 'docs']) {
      assert.ok((decisions.get(d) ?? 0) > 20, `${d}: ${JSON.stringify([...decisions])}`);
    }
  });

  it('accepts the plain and percent-encoded paths that real SPAs send (the property is not vacuous)', function () {
    const ok = ['/api/orders/1', '/api/orders/caf%C3%A9', '/api/%6Frders/1', '/api/public/a%20b?x=%2F', '/api/orders/', '/docs/a.b/c..d',
      "/api/orders/1;", '/api/orders/a%3Fb', '/api/orders/%E2%9C%93'];
    const expected = ['/api/orders/1', '/api/orders/café', '/api/orders/1', '/api/public/a b', '/api/orders/', '/docs/a.b/c..d',
      undefined, '/api/orders/a?b', '/api/orders/✓'];
    ok.forEach((uri, i) => {
      assert.equal(accepted(uri), expected[i], uri);
      check(uri);
    });
    let n = 0;
    fc.assert(fc.property(routed, (uri) => {
      if (accepted(uri) !== undefined) n++;
    }), { numRuns: 2000 });
    assert.ok(n > 100, `only ${n} of 2000 route-shaped URIs were accepted`);
  });

  // Counterexamples found by the property, kept as fixed cases.
  const counterexamples: [string, string][] = [
    ['/api/orders%3Bx/1', "encoded ';': a Spring/Tomcat-style upstream strips ';x' after decoding and serves /api/orders/1 while we saw the public /api route"],
    ['/api/orders%3b/admin', "lower-case %3b is the same"],
    ['/api/public/%EF%BC%8E%EF%BC%8E/orders/1', 'fullwidth full stops: NFKC turns the segment into ..'],
    ['/api/public/%E2%80%A5/orders/1', 'U+2025 TWO DOT LEADER: NFKC turns it into ..'],
    ['/api/orders%EF%BC%8Fadmin', 'U+FF0F FULLWIDTH SOLIDUS: NFKC turns it into /'],
    ['/api/orders%EF%BC%BCadmin', 'U+FF3C FULLWIDTH REVERSE SOLIDUS: NFKC turns it into \\'],
    ['/api/orders%EF%BC%9Bx/admin', 'U+FF1B FULLWIDTH SEMICOLON: NFKC turns it into ;'],
    ['/api/%EF%BD%8Frders/1', "U+FF4F FULLWIDTH o: NFKC turns the segment into 'orders' while we saw the public /api route"],
    ['/api/public/..%20/orders/1', "'.. ': Windows-style servers drop trailing dots and spaces"],
    ['/api/public/.../orders', "'...': only dots"],
  ];
  for (const [uri, why] of counterexamples) {
    it(`400 for ${JSON.stringify(uri)} (${why})`, function () {
      assert.equal(accepted(uri), undefined);
    });
  }
});
