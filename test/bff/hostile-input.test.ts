// Hostile input to the BFF, by property (fast-check) over real HTTP against a real IdP and Redis:
//   return_to           any string → the path it means on our origin, or '/'; never another origin
//   /auth/callback      random, repeated and huge state/code/iss/error/... → 400, never 5xx or a hang
//   backchannel-logout  random strings, JWT-shaped junk, well-signed tokens with a wrong or missing
//                       claim → 400 {"error":"invalid_request"}, and nothing is deleted
//   /auth/logout        random content types and bodies → 4xx, and the session survives
// Runs are bounded so the file stays well under 30 s.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { SignJWT, importJWK, type JWK } from 'jose';
import { takeTransaction } from '../../src/bff/transaction.ts';
import { generateSigningKey } from '../../src/dev/idp.ts';
import { capturingLogger, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { CookieJar, httpCall, type HttpResponse } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';

const BASE = 'https://app.example';
/** Longest a hostile request may take: bad input is refused, never waited on. */
const SLOW_MS = 2_000;

/** Pieces that make URL parsers (and people) disagree. */
const NASTY = [
  '/', '//', '\\', '/\\', '\\/', '%2f', '%2F', '%5c', '%5C', '%252f', '\t', '\n', '\r', ' ', '\u0000', '\u007f', '\u00a0',
  '\u2028', '\u3002', '\uff0f', '\uff3c', '@', ':', '.', '..', '%2e', '%2e%2e', '?', '#', '&', '=', 'evil.com', 'evil.com:443',
  'javascript:', 'https:', 'http:', 'data:', '//evil.com', '/evil', 'ｅvil.com', '%00', '%0a', '%09', '%', '%zz', 'a', 'x y',
];
const nastyString = fc.array(fc.constantFrom(...NASTY), { maxLength: 8 }).map((a) => a.join(''));
const anyString = fc.oneof(
  fc.string(), fc.string({ unit: 'binary' }), fc.webUrl(), fc.webPath(), nastyString,
  nastyString.map((s) => `/${s}`), fc.tuple(fc.webPath(), nastyString).map(([a, b]) => a + b),
);
/** Header-safe text (visible ASCII and spaces): what an HTTP client can actually send. */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });

function assertQuick(r: HttpResponse & { ms: number }, what: string): void {
  assert.ok(r.ms < SLOW_MS, `${what}: took ${Math.round(r.ms)} ms`);
  assert.ok(r.status < 500, `${what}: ${r.status} ${r.body.slice(0, 200)}`);
}

async function timed(call: Promise<HttpResponse>): Promise<HttpResponse & { ms: number }> {
  const start = performance.now();
  const r = await call;
  return { ...r, ms: performance.now() - start };
}

describe('hostile input to the BFF', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let signingKey: JWK;
  const captured = capturingLogger('info');
  /** Why the BFF refused each callback so far ("login failed" log lines). */
  const failureReasons = () => new Set(captured.lines.filter((l) => l.includes('"login failed"')).map((l) => JSON.parse(l).reason as string));

  before(async () => {
    redis = await RedisServer.start();
    signingKey = await generateSigningKey();
    // par: never, so the authorization URL (and its state) is visible to the test.
    env = await startIdpBff({ redis, log: captured.log, idps: [{ config: { par: 'never' }, devIdp: { keys: [signingKey] } }] });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });

  /** GET /auth/login; returns the state and the browser jar (transaction cookie). */
  async function startLogin(query: string, jar = new CookieJar()): Promise<{ state: string; jar: CookieJar; res: HttpResponse }> {
    const res = await httpCall(`${env.url}/auth/login${query}`, { jar, headers: { accept: 'text/html' } });
    assert.equal(res.status, 302, res.body.slice(0, 200));
    const state = new URL(String(res.headers.location)).searchParams.get('state');
    assert.ok(state, 'the authorization URL carries state');
    return { state, jar, res };
  }

  /** The return_to the login transaction kept (and so consumed), found as the callback finds it. */
  async function keptReturnTo(login: { state: string; jar: CookieJar }): Promise<string> {
    const taken = await takeTransaction(env.store, login.state, login.jar.get('goldpath_tx')?.value);
    assert.ok(taken.ok, 'the transaction is found with the state and the browser\'s cookie');
    return taken.tx.returnTo;
  }

  describe('return_to', () => {
    it('property: any string is stored as the path it means on our origin, or as /', async () => {
      let kept = 0;
      await fc.assert(fc.asyncProperty(anyString, async (input) => {
        const out = await keptReturnTo(await startLogin(`?return_to=${encodeURIComponent(input)}`));
        // Never another origin: neither as a relative reference nor glued after our origin.
        assert.equal(new URL(out, BASE).origin, BASE, `${JSON.stringify(input)} → ${JSON.stringify(out)}`);
        assert.equal(new URL(`${BASE}${out}`).origin, BASE);
        assert.equal(new URL(`${env.url}${out}`).origin, env.url);
        assert.ok(out.startsWith('/') && !out.startsWith('//'), out);
        if (out !== '/') {
          kept++;
          // Kept only when it is itself a same-origin relative path, and it means exactly that.
          assert.equal(new URL(input, BASE).origin, BASE, `kept a foreign ${JSON.stringify(input)}`);
          assert.equal(new URL(out, BASE).href, new URL(input, BASE).href, `${JSON.stringify(input)} changed meaning`);
        }
      }), { numRuns: 500 });
      assert.ok(kept > 20, `ordinary paths are kept (${kept})`);
    });

    it('property: ordinary same-origin paths are kept exactly', async () => {
      const segment = fc.string({ unit: fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@'.split('')), minLength: 1, maxLength: 10 })
        .filter((s) => s !== '.' && s !== '..');
      const path = fc.tuple(fc.array(segment, { minLength: 1, maxLength: 5 }), fc.option(fc.webQueryParameters()), fc.option(fc.webFragments()))
        .map(([segs, q, h]) => `/${segs.join('/')}${q === null ? '' : `?${q}`}${h === null ? '' : `#${h}`}`)
        .filter((p) => !/%(2f|5c)/i.test(p) && !p.includes('\\'));
      await fc.assert(fc.asyncProperty(path, async (input) => {
        const out = await keptReturnTo(await startLogin(`?return_to=${encodeURIComponent(input)}`));
        assert.equal(new URL(out, BASE).href, new URL(input, BASE).href);
      }), { numRuns: 100 });
    });

    it('dot segments that collapse into //host are refused (found by the property above)', async () => {
      for (const input of ['/%2e//evil.com', '/.//evil.com', '/a/..//evil.com', '/a/%2e%2e//evil.com', '/%2E%2E//evil.com']) {
        const out = await keptReturnTo(await startLogin(`?return_to=${encodeURIComponent(input)}`));
        assert.equal(out, '/', `${input} → ${out}`);
      }
    });

    it('after a full login the browser lands on our origin, for hostile return_to values', async () => {
      for (const input of ['//evil.com', '/%2e//evil.com', '/\\evil.com', '/%2F%2Fevil.com', '/\t/evil.com', 'https://evil.com', '/ok?x=1#y', '/%E2%80%A8x', '\u3002evil.com']) {
        const r = await env.login('alice', { returnTo: input });
        assert.equal(r.status, 302, input);
        assert.equal(new URL(r.location!).origin, env.url, `${JSON.stringify(input)} → ${r.location}`);
      }
    });
  });

  describe('the authorization request', () => {
    it('property: whatever return_to and idp say, it is a code flow with PKCE S256, fresh state and nonce, and the one exact redirect_uri', async () => {
      const seen = new Set<string>();
      await fc.assert(fc.asyncProperty(anyString, fc.option(fc.oneof(fc.constant('dev'), anyString), { nil: undefined }), async (returnTo, idp) => {
        const q = new URLSearchParams({ return_to: returnTo });
        if (idp !== undefined) q.set('idp', idp);
        const res = await timed(httpCall(`${env.url}/auth/login?${q}`, { headers: { accept: 'application/json' } }));
        assertQuick(res, q.toString().slice(0, 120));
        if (idp !== undefined && idp !== 'dev') {
          assert.equal(res.status, 400, `idp=${JSON.stringify(idp)} → ${res.status}`);
          return;
        }
        assert.equal(res.status, 302);
        const u = new URL(String(res.headers.location));
        assert.equal(u.origin + u.pathname, `${env.idp.issuer}/auth`);
        const p = u.searchParams;
        assert.equal(p.get('response_type'), 'code', 'code flow only: no implicit or hybrid');
        assert.equal(p.get('redirect_uri'), `${env.url}/auth/callback`, 'exactly the registered redirect URI');
        assert.equal(p.get('code_challenge_method'), 'S256');
        assert.match(p.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
        assert.equal(p.get('client_id'), 'goldpath');
        for (const k of ['state', 'nonce']) {
          const v = p.get(k) ?? '';
          assert.ok(v.length >= 22 && !seen.has(v), `a fresh ${k}`);
          seen.add(v);
        }
        assert.equal(p.get('return_to'), null, 'return_to stays server-side');
        assert.equal(res.headers['referrer-policy'], 'no-referrer');
      }), { numRuns: 150 });
    });
  });

  describe('/auth/callback parameters', () => {
    const NAMES = ['state', 'code', 'iss', 'error', 'error_description', 'error_uri', 'session_state', 'response', 'id_token'];
    const value = fc.oneof(
      { weight: 4, arbitrary: fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 200 }), nastyString) },
      { weight: 1, arbitrary: fc.integer({ min: 513, max: 6000 }).map((n) => 'A'.repeat(n)) },
    );
    const param = fc.tuple(fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 12 })), value);
    /** Bad percent-encoding, appended raw (URLSearchParams would escape it). */
    const rawTail = fc.constantFrom('', '&state=%zz', '&code=%', '&iss=%ff%fe', '&%00=1', '&error=%E2%82', '&&&', '&=');

    it('property: random, repeated and huge parameters without a live login → 400, quickly', async () => {
      await fc.assert(fc.asyncProperty(fc.array(param, { maxLength: 8 }), rawTail, fc.boolean(), async (params, tail, html) => {
        const q = new URLSearchParams(params).toString() + tail;
        const r = await timed(httpCall(`${env.url}/auth/callback?${q}`, { headers: { accept: html ? 'text/html' : 'application/json' } }));
        assertQuick(r, q.slice(0, 120));
        // Past Node's 16 KiB header limit the HTTP server itself answers 431: still a 4xx.
        if (r.status === 431 && q.length > 15_000) return;
        assert.equal(r.status, 400, `${q.slice(0, 120)} → ${r.status}`);
        assert.equal(r.headers['cache-control'], 'no-store');
        // The callback URL carries a code and state: no Referer may take them anywhere.
        assert.equal(r.headers['referrer-policy'], 'no-referrer');
        assert.equal(r.headers['set-cookie']?.some((c) => c.startsWith('goldpath=')) ?? false, false);
        assert.equal(r.headers['x-frame-options'], 'DENY');
        if (html) assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
        else assert.equal(typeof JSON.parse(r.body).error, 'string');
      }), { numRuns: 400 });
    });

    it('property: a live login with random code/iss/error values (and repeats) → 400, never a session', async () => {
      const iss = () => env.idp.issuer;
      const live = fc.record({
        code: fc.option(fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 100 }), fc.constant(''), fc.constant('A'.repeat(4000))), { nil: undefined }),
        iss: fc.oneof({ weight: 4, arbitrary: fc.constant('right') }, fc.constant('absent'), fc.string(), fc.webUrl()),
        error: fc.option(fc.oneof(fc.constantFrom('access_denied', 'server_error', 'login_required'), fc.string(), nastyString), { nil: undefined, freq: 2 }),
        description: fc.option(fc.oneof(fc.string(), fc.string({ unit: 'binary', maxLength: 400 })), { nil: undefined }),
        repeat: fc.option(fc.constantFrom('code', 'iss', 'error', 'state'), { nil: undefined }),
      });
      await fc.assert(fc.asyncProperty(live, async (p) => {
        const { state, jar } = await startLogin('');
        const q = new URLSearchParams({ state });
        if (p.code !== undefined) q.append('code', p.code);
        if (p.iss === 'right') q.append('iss', iss());
        else if (p.iss !== 'absent') q.append('iss', p.iss);
        if (p.error !== undefined) q.append('error', p.error);
        if (p.description !== undefined) q.append('error_description', p.description);
        if (p.repeat !== undefined) q.append(p.repeat, p.repeat === 'state' ? state : 'again');
        const r = await timed(httpCall(`${env.url}/auth/callback?${q}`, { jar, headers: { accept: 'text/html' } }));
        assertQuick(r, JSON.stringify(p).slice(0, 200));
        assert.equal(r.status, 400, `${JSON.stringify(p).slice(0, 200)} → ${r.status}: ${r.body.slice(0, 200)}`);
        assert.match(String(r.headers['content-type']), /text\/html/);
        assert.equal(jar.get('goldpath'), undefined, 'no session cookie');
      }), {
        numRuns: 150,
        // One of each refusal path for certain (the random ones reach each in most runs, not all:
        // the token endpoint's, about 1 run in 20, was missed once in a CI run).
        examples: [
          [{ code: 'bogus', iss: 'right', error: undefined, description: undefined, repeat: undefined }],
          [{ code: 'bogus', iss: 'absent', error: undefined, description: undefined, repeat: undefined }],
          [{ code: 'bogus', iss: 'https://evil.example', error: undefined, description: undefined, repeat: undefined }],
          [{ code: undefined, iss: 'right', error: 'access_denied', description: undefined, repeat: undefined }],
        ],
      });
      // Every refusal path was reached, including the IdP's token endpoint (invalid_grant).
      for (const reason of ['issuer_mismatch', 'issuer_missing', 'idp_error', 'token_error']) {
        assert.ok(failureReasons().has(reason), `no callback was refused for ${reason}: ${[...failureReasons()].join(', ')}`);
      }
    });

    it('a URL too large for the HTTP server is a 4xx, not a 5xx or a hang', async () => {
      const r = await timed(httpCall(`${env.url}/auth/callback?state=${'A'.repeat(40_000)}`));
      assertQuick(r, 'huge URL');
      assert.ok(r.status >= 400 && r.status < 500, String(r.status));
    });
  });

  describe('/auth/backchannel-logout tokens', () => {
    let victim: { id: string; sid: string };
    const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

    before(async () => {
      const r = await env.login('victim');
      assert.equal(r.status, 302);
      const s = (await env.store.get(r.sessionCookie!))!;
      victim = { id: s.id, sid: s.sid! };
    });
    afterEach(async () => {
      assert.ok(await env.store.getById(victim.id), 'no refused logout token deleted the session');
    });

    async function post(token: string, type = 'application/x-www-form-urlencoded', body?: string): Promise<HttpResponse & { ms: number }> {
      return timed(httpCall(`${env.url}/auth/backchannel-logout`, {
        method: 'POST', body: body ?? new URLSearchParams({ logout_token: token }).toString(), headers: { 'content-type': type },
      }));
    }

    function assertInvalid(r: HttpResponse & { ms: number }, what: string): void {
      assertQuick(r, what);
      assert.equal(r.status, 400, `${what} → ${r.status} ${r.body}`);
      assert.deepEqual(JSON.parse(r.body).error, 'invalid_request', what);
      assert.equal(r.headers['cache-control'], 'no-store');
    }

    it('property: random strings → 400 invalid_request', async () => {
      await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ minLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), nastyString.filter(Boolean)), async (t) => {
        assertInvalid(await post(t), JSON.stringify(t));
      }), { numRuns: 100 });
    });

    it('property: JWT-shaped junk (any header, any payload, any signature) → 400 invalid_request', async () => {
      const header = fc.oneof(
        fc.jsonValue(),
        fc.record({
          alg: fc.oneof(fc.constantFrom('RS256', 'none', 'HS256', 'ES256', 'PS256', 'EdDSA'), fc.jsonValue()),
          kid: fc.oneof(fc.constant(signingKey.kid), fc.string(), fc.jsonValue()),
          typ: fc.option(fc.oneof(fc.constant('logout+jwt'), fc.string())),
          crit: fc.option(fc.array(fc.string())),
          b64: fc.option(fc.boolean()),
        }, { requiredKeys: ['alg'] }),
      );
      const payload = fc.oneof(
        fc.jsonValue(),
        fc.record({
          iss: fc.oneof(fc.constant('ISSUER'), fc.jsonValue()),
          aud: fc.oneof(fc.constant('goldpath'), fc.constant(['goldpath', 'x']), fc.jsonValue()),
          iat: fc.oneof(fc.constant('NOW'), fc.jsonValue()),
          jti: fc.oneof(fc.string(), fc.jsonValue()),
          sid: fc.oneof(fc.constant('VICTIM'), fc.jsonValue()),
          events: fc.oneof(fc.constant({ [EVENT]: {} }), fc.jsonValue()),
        }),
      );
      const signature = fc.oneof(fc.constant(''), fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u).toString('base64url')), fc.string());
      await fc.assert(fc.asyncProperty(header, payload, signature, fc.boolean(), async (h, p, sig, rawPayload) => {
        const claims = typeof p === 'object' && p !== null && !Array.isArray(p)
          ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k,
            v === 'ISSUER' ? env.idp.issuer : v === 'NOW' ? Math.floor(Date.now() / 1000) : v === 'VICTIM' ? victim.sid : v]))
          : p;
        const token = `${b64(h)}.${rawPayload ? b64(`not json ${JSON.stringify(claims)}`) : b64(claims)}.${sig}`;
        assertInvalid(await post(token), token.slice(0, 120));
      }), { numRuns: 150 });
    });

    it('property: well-signed tokens with a wrong or missing claim → 400 invalid_request', async () => {
      const key = await importJWK(signingKey, 'RS256');
      const now = () => Math.floor(Date.now() / 1000);
      const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.object({ maxDepth: 1 }));
      type Mutate = (c: Record<string, unknown>, h: Record<string, unknown>) => void;
      const m = (name: string, f: Mutate): [string, Mutate] => [name, f];
      // Each mutation alone makes a valid logout token invalid.
      const mutation: fc.Arbitrary<[string, Mutate]> = fc.oneof(
        fc.constant(m('no iss', (c) => { delete c['iss']; })),
        fc.oneof(fc.webUrl(), fc.string(), notAString).filter((v) => v !== env.idp.issuer).map((v) => m('wrong iss', (c) => { c['iss'] = v; })),
        fc.constant(m('no aud', (c) => { delete c['aud']; })),
        fc.oneof(fc.string(), fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }), notAString)
          .filter((v) => v !== 'goldpath' && !(Array.isArray(v) && v.includes('goldpath')))
          .map((v) => m('wrong aud', (c) => { c['aud'] = v; })),
        fc.constant(m('no iat', (c) => { delete c['iat']; })),
        fc.oneof(fc.integer({ min: 0, max: now() - 900 }), fc.integer({ min: now() + 300, max: now() + 10_000_000 }), fc.string(), fc.constant(null))
          .map((v) => m('bad iat', (c) => { c['iat'] = v; })),
        fc.integer({ min: 1, max: 10_000_000 }).map((d) => m('expired', (c) => { c['exp'] = now() - 120 - d; })),
        fc.integer({ min: 120, max: 10_000 }).map((d) => m('not yet valid', (c) => { c['nbf'] = now() + d; })),
        fc.constant(m('no jti', (c) => { delete c['jti']; })),
        fc.oneof(notAString, fc.constant(''), fc.constant('j'.repeat(300))).map((v) => m('bad jti', (c) => { c['jti'] = v; })),
        fc.constant(m('no events', (c) => { delete c['events']; })),
        fc.oneof(notAString, fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }), fc.constant({ [EVENT]: 'yes' }), fc.constant({ [EVENT]: [] }))
          .filter((v) => !(typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Record<string, unknown>)[EVENT] === 'object'
            && (v as Record<string, unknown>)[EVENT] !== null && !Array.isArray((v as Record<string, unknown>)[EVENT])))
          .map((v) => m('bad events', (c) => { c['events'] = v; })),
        fc.jsonValue().map((v) => m('nonce present', (c) => { c['nonce'] = v ?? 'n'; })),
        fc.constant(m('neither sid nor sub', (c) => { delete c['sid']; delete c['sub']; })),
        fc.oneof(notAString, fc.constant('')).map((v) => m('bad sid', (c) => { c['sid'] = v; })),
        fc.oneof(notAString, fc.constant('')).map((v) => m('bad sub', (c) => { c['sub'] = v; })),
        headerText.filter((t) => !/^((application\/)?logout\+jwt|JWT)$/i.test(t)).map((t) => m('wrong typ', (_c, h) => { h['typ'] = t; })),
      );
      await fc.assert(fc.asyncProperty(mutation, async ([name, mutate]) => {
        const claims: Record<string, unknown> = {
          iss: env.idp.issuer, aud: 'goldpath', iat: now(), jti: randomBytes(12).toString('base64url'),
          events: { [EVENT]: {} }, sid: victim.sid, sub: 'victim',
        };
        const header: Record<string, unknown> = { alg: 'RS256', kid: signingKey.kid, typ: 'logout+jwt' };
        mutate(claims, header);
        const token = await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
        assertInvalid(await post(token), name);
      }), { numRuns: 200 });
    });

    it('alg none, HS256 keyed with the client secret, and foreign keys → 400 invalid_request', async () => {
      const claims = { iss: env.idp.issuer, aud: 'goldpath', iat: Math.floor(Date.now() / 1000), events: { [EVENT]: {} }, sid: victim.sid };
      const none = `${b64({ alg: 'none', typ: 'logout+jwt' })}.${b64({ ...claims, jti: 'n1' })}.`;
      const hs = await new SignJWT({ ...claims, jti: 'h1' }).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' })
        .sign(new TextEncoder().encode(TEST_CLIENT_SECRET));
      const forger = await generateSigningKey();
      const foreign = await new SignJWT({ ...claims, jti: 'f1' }).setProtectedHeader({ alg: 'RS256', kid: forger.kid!, typ: 'logout+jwt' })
        .sign(await importJWK(forger, 'RS256'));
      const sameKid = await new SignJWT({ ...claims, jti: 'f2' }).setProtectedHeader({ alg: 'RS256', kid: signingKey.kid!, typ: 'logout+jwt' })
        .sign(await importJWK(forger, 'RS256'));
      for (const [what, t] of [['none', none], ['HS256', hs], ['foreign kid', foreign], ['same kid, other key', sameKid]]) {
        assertInvalid(await post(t!), what!);
      }
    });

    it('property: bodies of random types, repeated or missing logout_token → 400 invalid_request', async () => {
      const valid = await new SignJWT({
        iss: env.idp.issuer, aud: 'goldpath', iat: Math.floor(Date.now() / 1000), jti: 'never-accepted', events: { [EVENT]: {} }, sid: victim.sid,
      }).setProtectedHeader({ alg: 'RS256', kid: signingKey.kid!, typ: 'logout+jwt' }).sign(await importJWK(signingKey, 'RS256'));
      const body = fc.oneof(
        fc.constant(`logout_token=${valid}&logout_token=${valid}`),
        fc.string().map((s) => `${s}&logout_token=${valid}&logout_token=x`),
        fc.string({ maxLength: 200 }).filter((s) => !new URLSearchParams(s).has('logout_token')),
        fc.constant(JSON.stringify({ logout_token: valid })),
      );
      const type = fc.oneof(fc.constant('application/x-www-form-urlencoded'), fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', ''), headerText);
      await fc.assert(fc.asyncProperty(body, type, async (b, t) => {
        const r = await post('', t, b);
        if (r.status === 413) return assertQuick(r, 'too large');
        assertInvalid(r, `${t}: ${b.slice(0, 80)}`);
      }), { numRuns: 120 });
    });
  });

  describe('/auth/logout bodies', () => {
    const type = fc.oneof(
      fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x',
        'application/x-www-form-urlencoded; charset=utf-16', 'application/json; charset=latin1', ''),
      headerText,
    );
    const body = fc.oneof(
      fc.string(), fc.string({ unit: 'binary', maxLength: 300 }), fc.json(), nastyString,
      fc.dictionary(fc.constantFrom('csrf_token', 'x', '__proto__', 'constructor'), fc.jsonValue(), { maxKeys: 3 }).map((o) => JSON.stringify(o)),
      fc.array(fc.tuple(fc.constantFrom('csrf_token', 'logout', 'x'), fc.string()), { maxLength: 4 }).map((p) => new URLSearchParams(p).toString()),
      fc.integer({ min: 3000, max: 9000 }).map((n) => `csrf_token=${'a'.repeat(n)}`),
    );
    const extra = fc.record({
      csrf: fc.option(headerText, { nil: undefined }),
      origin: fc.option(fc.oneof(fc.webUrl(), headerText), { nil: undefined }),
      mode: fc.option(fc.constantFrom('navigate', 'cors', 'no-cors', 'same-origin'), { nil: undefined }),
    });

    function headersFor(t: string, e: { csrf?: string; origin?: string; mode?: string }): Record<string, string> {
      const h: Record<string, string> = { 'content-type': t, accept: 'application/json' };
      if (e.csrf !== undefined) h['x-csrf-token'] = e.csrf;
      if (e.origin !== undefined) h['origin'] = e.origin;
      if (e.mode !== undefined) h['sec-fetch-mode'] = e.mode;
      return h;
    }

    it('property: with a session, random content types and bodies (no valid CSRF token) → 4xx, the session survives', async () => {
      const { cookieValue, session } = await env.store.create(newSession({ sub: 'logout-fuzz' }));
      await fc.assert(fc.asyncProperty(type, body, extra, async (t, b, e) => {
        const r = await timed(httpCall(`${env.url}/auth/logout`, {
          method: 'POST', body: b, headers: { ...headersFor(t, e), cookie: `goldpath=${cookieValue}` },
        }));
        assertQuick(r, `${t}: ${b.slice(0, 80)}`);
        assert.ok(r.status >= 400 && r.status < 500, `${t}: ${b.slice(0, 80)} → ${r.status}`);
        assert.equal(r.headers['cache-control'], 'no-store');
      }), { numRuns: 200 });
      assert.ok(await env.store.getById(session.id), 'still logged in');
    });

    it('property: without a session, random content types and bodies → 2xx, 302 or 4xx, never 5xx', async () => {
      await fc.assert(fc.asyncProperty(type, body, extra, async (t, b, e) => {
        const r = await timed(httpCall(`${env.url}/auth/logout`, { method: 'POST', body: b, headers: headersFor(t, e) }));
        assertQuick(r, `${t}: ${b.slice(0, 80)}`);
        // Nothing to log out: a form navigation is sent to '/', anything else gets {"logout_url":"/"} or a 4xx.
        if (r.status === 302) assert.equal(r.headers.location, '/');
        else assert.ok((r.status >= 200 && r.status < 300) || (r.status >= 400 && r.status < 500), `${t}: ${b.slice(0, 80)} → ${r.status}`);
      }), { numRuns: 100 });
    });
  });
});
