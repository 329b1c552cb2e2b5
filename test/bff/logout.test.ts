// POST /auth/logout (fetch and form) and POST /auth/backchannel-logout against a real IdP and Redis.
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import { editingIdpJson, logoutToken as signLogoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { CookieJar, httpCall, parseForms } from '../helpers/login.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { storeKeys } from '../../src/session/index.ts';
import type { SessionSecrets } from '../../src/session/types.ts';

async function loggedIn(env: IdpBff, user = 'alice') {
  const r = await env.login(user);
  assert.equal(r.status, 302);
  const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body);
  const session = (await env.store.get(r.sessionCookie!))!;
  return { jar: r.jar, csrf: info.csrf_token as string, session, cookie: r.sessionCookie! };
}

describe('BFF logout', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let signingKey: JWK;
  /** Published too, not (yet) signing: what an IdP's JWKS looks like during a key rotation. */
  let nextKey: JWK;

  before(async () => {
    redis = await RedisServer.start();
    signingKey = await generateSigningKey();
    nextKey = await generateSigningKey();
    env = await startIdpBff({ redis, idps: [{ devIdp: { keys: [signingKey, nextKey] } }] });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });

  describe('POST /auth/logout', () => {
    it('by fetch: 200 {logout_url} to the end-session endpoint, session deleted, cookie cleared, refresh token revoked', async () => {
      const { jar, csrf, session } = await loggedIn(env);
      const rt = session.secrets.refreshToken!;
      assert.ok(await env.idp.provider.RefreshToken.find(rt), 'the refresh token is live before logout');
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, headers: { 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
      });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      const url = new URL(JSON.parse(res.body).logout_url);
      assert.equal(url.origin + url.pathname, `${env.idp.issuer}/session/end`);
      assert.equal(url.searchParams.get('id_token_hint'), session.secrets.idToken);
      assert.equal(url.searchParams.get('post_logout_redirect_uri'), `${env.url}/`);
      assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
      // The browser cookie too (the key of the browser's last sign-in, which is gone): a signed-out
      // browser keeps no identifier of ours. Lax, as it was set, so the browser replaces that one.
      assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath_browser=;.*Max-Age=0; HttpOnly; SameSite=Lax$/.test(c)), 'browser cookie cleared');
      assert.equal(jar.get('goldpath_browser'), undefined);
      assert.equal(await env.store.getById(session.id), null, 'session gone from the store');
      assert.equal(await env.idp.provider.RefreshToken.find(rt), undefined, 'refresh token revoked (RFC 7009)');
      const after = await httpCall(`${env.url}/auth/session`, { jar });
      assert.equal(after.status, 401);
    });

    it('by form navigation: 302 to the end-session endpoint', async () => {
      const { jar, csrf, session } = await loggedIn(env);
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, body: new URLSearchParams({ csrf_token: csrf }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', accept: 'text/html' },
      });
      assert.equal(res.status, 302);
      const loc = new URL(String(res.headers.location));
      assert.equal(loc.origin + loc.pathname, `${env.idp.issuer}/session/end`);
      assert.equal(loc.searchParams.get('post_logout_redirect_uri'), `${env.url}/`);
      assert.equal(await env.store.getById(session.id), null);
    });

    it('a form post without Sec-Fetch-Mode and an HTML Accept is a navigation too; with a JSON Accept it is not', async () => {
      const a = await loggedIn(env);
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar: a.jar, body: `csrf_token=${a.csrf}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      });
      assert.equal(res.status, 302);
      const b = await loggedIn(env);
      const res2 = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar: b.jar, body: `csrf_token=${b.csrf}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      });
      assert.equal(res2.status, 200);
      assert.ok(JSON.parse(res2.body).logout_url);
    });

    it('a form post from a page with Referrer-Policy: no-referrer (the SPA router\'s, traefik/dynamic) logs out: Chromium sends Origin: null there', async () => {
      // The headers Chromium sends for a same-origin form POST from such a page.
      const { jar, csrf, session } = await loggedIn(env);
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, body: new URLSearchParams({ csrf_token: csrf }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', accept: 'text/html' },
      });
      assert.equal(res.status, 302, res.body);
      assert.equal(await env.store.getById(session.id), null, 'logged out');
      // An opaque origin from another site (a sandboxed frame) is still refused.
      const b = await loggedIn(env);
      const foreign = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar: b.jar, body: new URLSearchParams({ csrf_token: b.csrf }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
      });
      assert.equal(foreign.status, 403);
      const bare = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar: b.jar, body: new URLSearchParams({ csrf_token: b.csrf }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' },
      });
      assert.equal(bare.status, 403, 'Origin: null without Fetch Metadata proves nothing');
      assert.ok(await env.store.getById(b.session.id));
    });

    it('Fetch Metadata is read as the sidecar reads it: cross-site (or same-site from an origin not allowed) is 403 even with the token', async () => {
      for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site', origin: 'http://evil.localhost:8080' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'none' }] as Array<Record<string, string>>) {
        const { jar, csrf, session } = await loggedIn(env);
        const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar, headers: { accept: 'application/json', 'x-csrf-token': csrf, ...headers } });
        assert.equal(res.status, 403, JSON.stringify(headers));
        assert.equal(JSON.parse(res.body).error, 'csrf');
        assert.ok(await env.store.getById(session.id), `${JSON.stringify(headers)}: the session survives`);
      }
      const { jar, csrf, session } = await loggedIn(env);
      const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar, headers: { accept: 'application/json', 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' } });
      assert.equal(res.status, 200, res.body);
      assert.equal(await env.store.getById(session.id), null);
    });

    it('from an allowed origin (a cross-origin SPA on the same site) logs out; a reload that drops the origin refuses it from then on', async () => {
      const SPA = 'http://localhost:5173';
      const headers = (csrf: string) => ({ accept: 'application/json', 'x-csrf-token': csrf, origin: SPA, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' });
      const allowing = { ...env.config, routes: { ...env.config.routes, cors: { allowedOrigins: [SPA] } } };
      try {
        const a = await loggedIn(env);
        const refused = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: a.jar, headers: headers(a.csrf) });
        assert.equal(refused.status, 403, 'not allowed before the reload');
        await env.bff.reload(allowing);
        const ok = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: a.jar, headers: headers(a.csrf) });
        assert.equal(ok.status, 200, ok.body);
        assert.equal(await env.store.getById(a.session.id), null);
        // Cross-site, it is no SPA of ours even from that origin (the Strict cookie would not come).
        const b = await loggedIn(env);
        const cross = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: b.jar, headers: { ...headers(b.csrf), 'sec-fetch-site': 'cross-site' } });
        assert.equal(cross.status, 403);
        await env.bff.reload(env.config);
        const dropped = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: b.jar, headers: headers(b.csrf) });
        assert.equal(dropped.status, 403, 'refused once the reload removed the origin');
        assert.ok(await env.store.getById(b.session.id));
      } finally {
        await env.bff.reload(env.config);
      }
    });

    it('a missing or wrong CSRF token is 403 {"error":"csrf"} and the session survives', async () => {
      const { jar, csrf, session } = await loggedIn(env);
      for (const headers of [{}, { 'x-csrf-token': 'wrong' }, { 'x-csrf-token': csrf.slice(0, -1) }] as Array<Record<string, string>>) {
        const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar, headers: { accept: 'application/json', ...headers } });
        assert.equal(res.status, 403);
        assert.equal(JSON.parse(res.body).error, 'csrf');
        assert.equal(res.headers['cache-control'], 'no-store');
      }
      const form = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, body: 'csrf_token=nope', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(form.status, 403);
      const foreign = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, headers: { 'x-csrf-token': csrf, origin: 'https://evil.example' },
      });
      assert.equal(foreign.status, 403, 'a foreign Origin is refused even with the token');
      assert.ok(await env.store.getById(session.id), 'still logged in');
    });

    it('the session cookie sent twice (another planted beside it, either order): the session the CSRF token belongs to is ended; a wrong token is 403', async () => {
      const mallory = await loggedIn(env, 'mallory');
      const forged = `${mallory.cookie.slice(0, 44)}${'A'.repeat(21)}Q`;
      for (const other of [forged, mallory.cookie]) {
        for (const first of [true, false]) {
          const victim = await loggedIn(env);
          const browser = `goldpath_browser=${victim.jar.get('goldpath_browser')!.value}; goldpath_browser=${'B'.repeat(43)}`;
          const cookie = first ? `goldpath=${other}; ${browser}; goldpath=${victim.cookie}` : `goldpath=${victim.cookie}; ${browser}; goldpath=${other}`;
          const what = `${other === forged ? 'forged' : 'another session\'s'} cookie ${first ? 'first' : 'second'}`;
          const wrong = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': 'wrong', accept: 'application/json' } });
          assert.equal(wrong.status, 403, `${what}: ${wrong.body}`);
          assert.ok(await env.store.getById(victim.session.id), `${what}: a wrong token ends nothing`);
          const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': victim.csrf, accept: 'application/json' } });
          assert.equal(res.status, 200, `${what}: ${res.body}`);
          assert.notEqual(JSON.parse(res.body).logout_url, '/', `${what}: sent to the IdP's end-session endpoint`);
          assert.equal(await env.store.getById(victim.session.id), null, `${what}: the session is ended, not only its cookie cleared`);
          assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
          assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath_browser=;.*Max-Age=0/.test(c)), 'browser cookie cleared, though sent twice');
        }
      }
      assert.ok(await env.store.getById(mallory.session.id), 'the other session, whose token the request did not hold, stays');
    });

    it('a bad or oversized body is a 4xx, never a 500', async () => {
      const { jar, csrf } = await loggedIn(env);
      const bad = [
        { body: '{not json', type: 'application/json', status: 400 },
        { body: '[1]', type: 'application/json', status: 400 },
        { body: 'csrf_token=a&csrf_token=b', type: 'application/x-www-form-urlencoded', status: 400 },
        { body: 'hello', type: 'text/plain', status: 400 },
        { body: 'x='.padEnd(64 * 1024, 'a'), type: 'application/x-www-form-urlencoded', status: 413 },
      ];
      for (const b of bad) {
        const res = await httpCall(`${env.url}/auth/logout`, {
          method: 'POST', jar, body: b.body, headers: { 'content-type': b.type },
        });
        assert.equal(res.status, b.status, `${b.type} ${b.body.slice(0, 20)}`);
        assert.equal(res.headers['cache-control'], 'no-store');
      }
      const json = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, body: JSON.stringify({ csrf_token: csrf }), headers: { 'content-type': 'application/json' },
      });
      assert.equal(json.status, 200, 'a JSON body with csrf_token works');
    });

    it('reads csrf_token from a multipart/form-data body (fetch with a FormData, or a form of that enctype)', async () => {
      const multipart = (fields: [string, string][], boundary = '----formdata-x7Yq') => ({
        body: `preamble\r\n${fields.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')}--${boundary}--\r\n`,
        type: `multipart/form-data; boundary=${boundary}`,
      });
      const wrong = await loggedIn(env);
      const refused = multipart([['other', 'x'], ['csrf_token', 'nope']]);
      const r = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: wrong.jar, body: refused.body, headers: { 'content-type': refused.type, accept: 'application/json' } });
      assert.equal(r.status, 403, r.body);
      assert.equal(JSON.parse(r.body).error, 'csrf');
      assert.ok(await env.store.getById(wrong.session.id), 'a wrong token logs nobody out');

      const fetched = await loggedIn(env);
      const ok = multipart([['csrf_token', fetched.csrf]]);
      const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: fetched.jar, body: ok.body, headers: { 'content-type': ok.type, accept: 'application/json', 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'same-origin' } });
      assert.equal(res.status, 200, res.body);
      assert.ok(JSON.parse(res.body).logout_url);
      assert.equal(await env.store.getById(fetched.session.id), null, 'logged out');

      const form = await loggedIn(env);
      const nav = multipart([['csrf_token', form.csrf]], 'b');
      const navigated = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: form.jar, body: nav.body.replace('preamble\r\n', ''), headers: { 'content-type': nav.type, 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' } });
      assert.equal(navigated.status, 302, 'a form navigation is sent on to the IdP');
      assert.equal(await env.store.getById(form.session.id), null);
      // Without Fetch Metadata a multipart post may be a fetch of a FormData: JSON, no redirect.
      const older = await loggedIn(env);
      const plain = multipart([['csrf_token', older.csrf]]);
      const json = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: older.jar, body: plain.body, headers: { 'content-type': plain.type, accept: '*/*' } });
      assert.equal(json.status, 200, json.body);
      assert.ok(JSON.parse(json.body).logout_url);

      // Malformed or ambiguous: a 400, nothing deleted.
      const kept = await loggedIn(env);
      for (const bad of [
        { body: 'csrf_token=x', type: 'multipart/form-data' },
        { body: 'no delimiter at all', type: 'multipart/form-data; boundary=zz' },
        { body: `--zz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n${kept.csrf}\r\n`, type: 'multipart/form-data; boundary=zz' },
        { ...multipart([['csrf_token', kept.csrf], ['csrf_token', 'b']], 'zz') },
      ]) {
        const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: kept.jar, body: bad.body, headers: { 'content-type': bad.type, accept: 'application/json' } });
        assert.equal(res.status, 400, `${bad.type} ${JSON.stringify(bad.body.slice(0, 40))}: ${res.body}`);
      }
      assert.ok(await env.store.getById(kept.session.id), 'nothing deleted');
    });

    it('with the token in X-CSRF-Token the body is not read: a FormData or text body logs out too', async () => {
      const bodies = [
        { body: '--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n', type: 'multipart/form-data; boundary=b' },
        { body: 'hello', type: 'text/plain;charset=UTF-8' },
        { body: '{not json', type: 'application/json' },
      ];
      for (const b of bodies) {
        const { jar, csrf, session } = await loggedIn(env);
        const res = await httpCall(`${env.url}/auth/logout`, {
          method: 'POST', jar, body: b.body, headers: { 'content-type': b.type, 'x-csrf-token': csrf, 'sec-fetch-mode': 'cors' },
        });
        assert.equal(res.status, 200, `${b.type}: ${res.body}`);
        assert.ok(JSON.parse(res.body).logout_url, b.type);
        assert.equal(await env.store.getById(session.id), null, `${b.type}: session gone`);
      }
    });

    it('a session this version cannot read (another version\'s secrets) is deleted too, unless the request comes from another origin', async () => {
      const redisClient = redis.client();
      try {
        const stored = async () => {
          const n = newSession({ sub: 'odd-shape' });
          const { cookieValue, session } = await env.store.create({ ...n, secrets: { ...n.secrets, csrf: undefined } as unknown as SessionSecrets });
          assert.equal(await env.store.get(cookieValue), null, 'it reads as absent');
          return { cookie: `${env.settings.cookieName}=${cookieValue}`, key: storeKeys.session(session.id) };
        };
        const foreign = await stored();
        const refused = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { accept: 'application/json', cookie: foreign.cookie, origin: 'https://evil.example', 'x-csrf-token': 'any' } });
        assert.equal(refused.status, 403, refused.body);
        assert.equal(await redisClient.exists(foreign.key), 1, 'a foreign origin deletes nothing');

        const odd = await stored();
        // Its CSRF token cannot be read either: any the SPA still holds will do.
        const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { accept: 'application/json', cookie: odd.cookie, origin: env.url, 'x-csrf-token': 'any' } });
        assert.equal(res.status, 200, res.body);
        assert.deepEqual(JSON.parse(res.body), { logout_url: '/' });
        assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
        assert.equal(await redisClient.exists(odd.key), 0, 'gone from Redis');
      } finally {
        redisClient.disconnect();
      }
    });

    it('a cookie whose session key holds a value of another type: not signed in (401, not 503), logs out, and signs in again', async () => {
      // Something other than goldpath wrote there (or a bug did): the browser must not be stuck
      // with a cookie that makes its sign-in and its logout 503 until the cookie expires.
      const { jar, session, cookie } = await loggedIn(env, 'wrongtype');
      const redisClient = redis.client();
      try {
        const key = storeKeys.session(session.id);
        await redisClient.del(key);
        await redisClient.set(key, 'not a session');
        assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 401);
        const again = await env.login('wrongtype', { jar }); // the callback reads the old cookie's session
        assert.equal(again.status, 302, again.last.body.slice(0, 200));
        assert.ok(again.sessionCookie && again.sessionCookie !== cookie, 'a new session');
        await redisClient.set(key, 'not a session');
        const out = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { accept: 'application/json', origin: env.url, cookie: `${env.settings.cookieName}=${cookie}`, 'x-csrf-token': 'any' } });
        assert.equal(out.status, 200, out.body);
        assert.ok(out.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
        assert.equal(await redisClient.exists(key), 0, 'gone from Redis');
      } finally {
        redisClient.disconnect();
      }
    });

    it('a cross-site form post (which carries no SameSite=Strict cookie) is 403 and does not clear the cookie: no logout CSRF', async () => {
      // What Chromium sends for a form on another site that posts to /auth/logout: no session
      // cookie, yet its response may clear it (a top-level navigation), logging the user out.
      const { jar, session } = await loggedIn(env);
      for (const headers of [
        { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
        { origin: 'http://evil.example' },
        { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
      ] as Array<Record<string, string>>) {
        const res = await httpCall(`${env.url}/auth/logout`, {
          method: 'POST', body: '', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers },
        });
        assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error, 'csrf');
        assert.equal(res.headers['set-cookie'], undefined, `${JSON.stringify(headers)}: the session cookie is not cleared`);
      }
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 200, 'still logged in');
      assert.ok(await env.store.getById(session.id));
    });

    it('without a session: a missing CSRF token is 403 (SPEC 6), clearing nothing; with a (stale) token it clears the cookie and points to /', async () => {
      for (const headers of [{}, { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate' }] as Array<Record<string, string>>) {
        const refused = await httpCall(`${env.url}/auth/logout`, { method: 'POST', body: headers['content-type'] ? 'csrf_token=' : undefined, headers: { accept: 'application/json', cookie: 'goldpath=gone', ...headers } });
        assert.equal(refused.status, 403, refused.body);
        assert.equal(JSON.parse(refused.body).error, 'csrf');
        assert.equal(refused.headers['set-cookie'], undefined, 'nothing cleared');
      }
      const res = await httpCall(`${env.url}/auth/logout`, { method: 'POST', headers: { accept: 'application/json', 'x-csrf-token': 'from-a-session-that-expired' } });
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), { logout_url: '/' });
      // No browser cookie sent, none cleared: nothing of ours is set on a browser that had none.
      assert.ok(!res.headers['set-cookie']!.some((c) => c.startsWith('goldpath_browser=')));
    });

    it('a refused logout (wrong CSRF token, another origin, a body it cannot read) counts as outcome "invalid", not "success"', async () => {
      const count = async (outcome: string) => Number(new RegExp(`^goldpath_logouts_total\\{kind="rp",outcome="${outcome}"\\} (\\d+)$`, 'm')
        .exec((await httpCall(`${env.url}/metrics`)).body)?.[1]);
      const [invalid, success] = [await count('invalid'), await count('success')];
      const { jar, csrf } = await loggedIn(env, 'refused');
      const post = (headers: Record<string, string>, body?: string) =>
        httpCall(`${env.url}/auth/logout`, { method: 'POST', jar, headers: { accept: 'application/json', ...headers }, body });
      assert.equal((await post({ 'x-csrf-token': 'not-the-token' })).status, 403);
      assert.equal((await post({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).status, 403);
      assert.equal((await post({ 'content-type': 'text/plain' }, 'csrf_token=x')).status, 400);
      assert.equal(await count('invalid'), invalid + 3);
      assert.equal(await count('success'), success, 'none was a logout');
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 200, 'the session is kept');
    });
  });

  describe('POST /auth/backchannel-logout', () => {
    function logoutToken(claims: Record<string, unknown>, opts: { key?: JWK; typ?: string | null; kid?: string } = {}): Promise<string> {
      return signLogoutToken(env.idp.issuer, opts.key ?? signingKey, claims, { typ: opts.typ, kid: opts.kid ?? signingKey.kid });
    }

    function post(token: string | undefined, type = 'application/x-www-form-urlencoded') {
      return httpCall(`${env.url}/auth/backchannel-logout`, {
        method: 'POST', body: token === undefined ? '' : new URLSearchParams({ logout_token: token }).toString(),
        headers: { 'content-type': type },
      });
    }

    it('deletes the session with that sid (and only it)', async () => {
      const a = await loggedIn(env, 'frank');
      const b = await loggedIn(env, 'frank');
      assert.ok(a.session.sid && b.session.sid && a.session.sid !== b.session.sid);
      const res = await post(await logoutToken({ sid: a.session.sid, sub: 'frank' }));
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(await env.store.getById(a.session.id), null);
      assert.ok(await env.store.getById(b.session.id), 'the other session of the same user stays');
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar: a.jar })).status, 401);
    });

    it('accepts a token typed JWT (Keycloak before 25) or untyped, as well as logout+jwt; refuses another type', async () => {
      for (const typ of ['JWT', null, 'application/logout+jwt']) {
        const a = await loggedIn(env, 'typed');
        const res = await post(await logoutToken({ sid: a.session.sid }, { typ }));
        assert.equal(res.status, 200, `${typ}: ${res.body}`);
        assert.equal(await env.store.getById(a.session.id), null, String(typ));
      }
      const b = await loggedIn(env, 'typed');
      assert.equal((await post(await logoutToken({ sid: b.session.sid }, { typ: 'at+jwt' }))).status, 400);
      assert.ok(await env.store.getById(b.session.id), 'an access token type is not a logout token');
    });

    it('accepts a token signed with any published key (key rotation), by kid', async () => {
      const a = await loggedIn(env, 'rotor');
      const res = await post(await logoutToken({ sid: a.session.sid }, { key: nextKey, kid: nextKey.kid }));
      assert.equal(res.status, 200, res.body);
      assert.equal(await env.store.getById(a.session.id), null);
    });

    it('a sign-in that completes after a back-channel logout of its IdP session is refused: no session outlives its sid', async () => {
      const a = await loggedIn(env, 'ursula');
      assert.equal((await post(await logoutToken({ sid: a.session.sid }))).status, 200);
      // The same browser signs in again while the IdP still holds that session (as when the
      // logout arrives while a login completes): the ID token carries the ended sid.
      const again = await env.login('ursula', { jar: a.jar });
      assert.equal(again.status, 400, again.last.body.slice(0, 300));
      assert.match(again.last.body, /ended this sign-in \(a logout\)/);
      assert.equal(again.sessionCookie, a.cookie, 'no new session cookie (the old one, whose session is gone)');
      assert.equal(await env.store.deleteBySub(a.session.idp, 'ursula'), 0, 'no session stored');
    });

    it('a sign-in begun before a back-channel logout of its user (sub, no sid) is refused; one begun after is not', async () => {
      // The login is at the IdP when the logout of every session of the user arrives.
      const pending = await env.login('victor', { stopBefore: (u) => u.pathname.startsWith('/auth/callback') });
      const callback = pending.hops.at(-1)!.location!;
      assert.ok(callback.startsWith(`${env.url}/auth/callback?`), callback);
      assert.equal((await post(await logoutToken({ sub: 'victor' }))).status, 200);
      const late = await httpCall(callback, { jar: pending.jar, headers: { accept: 'text/html' } });
      assert.equal(late.status, 400, late.body.slice(0, 300));
      assert.match(late.body, /ended this sign-in \(a logout\)/);
      assert.equal(pending.jar.get('goldpath'), undefined, 'no session cookie');
      assert.equal(await env.store.deleteBySub('dev', 'victor'), 0, 'no session stored');
      await new Promise((r) => setTimeout(r, 2)); // the mark's clock is in ms
      const after = await loggedIn(env, 'victor');
      assert.ok(await env.store.getById(after.session.id), 'a sign-in begun after the logout signs in');
    });

    it('deletes every session of that sub when there is no sid', async () => {
      const a = await loggedIn(env, 'grace');
      const b = await loggedIn(env, 'grace');
      const other = await loggedIn(env, 'heidi');
      const res = await post(await logoutToken({ sub: 'grace' }));
      assert.equal(res.status, 200);
      assert.equal(await env.store.getById(a.session.id), null);
      assert.equal(await env.store.getById(b.session.id), null);
      assert.ok(await env.store.getById(other.session.id));
    });

    it('the IdP\'s own back-channel logout (user signs out at the IdP) deletes the session', async () => {
      const { jar, session } = await loggedIn(env, 'ivan');
      // The user signs out at the IdP (RP-initiated logout page, "Sign out"): oidc-provider
      // then posts a logout token to the BFF's backchannel_logout_uri.
      const end = await httpCall(`${env.idp.issuer}/session/end?client_id=goldpath`, { jar, headers: { accept: 'text/html' } });
      const form = parseForms(end.body).find((f) => f.id === 'op.logoutForm')!;
      assert.ok(form, 'logout confirmation page');
      const done = await httpCall(new URL(form.action, env.idp.issuer), {
        method: 'POST', jar, body: new URLSearchParams({ ...form.fields, logout: 'yes' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.ok(done.status === 303 || done.status === 302 || done.status === 200, `IdP answered ${done.status}`);
      assert.equal(await env.store.getById(session.id), null, 'deleted by the IdP-sent logout token');
    });

    it('a logout the store failed to carry out is not a replay: the IdP\'s retry with the same token ends the session', async () => {
      const a = await loggedIn(env, 'trent');
      const client = redis.client();
      try {
        const index = storeKeys.bySid(a.session.idp, a.session.sid!);
        const members = await client.smembers(index);
        const ttl = await client.pttl(index);
        assert.deepEqual(members, [a.session.id]);
        // The store fails halfway: its sid index cannot be read (a real Redis error, WRONGTYPE).
        await client.set(index, 'not a set');
        const token = await logoutToken({ sid: a.session.sid });
        const first = await post(token);
        assert.equal(first.status, 503, first.body);
        assert.ok(await env.store.getById(a.session.id), 'not deleted yet');
        await client.del(index);
        await client.sadd(index, ...members);
        await client.pexpire(index, ttl);
        const retry = await post(token);
        assert.equal(retry.status, 200, retry.body);
        assert.equal(await env.store.getById(a.session.id), null);
        assert.equal((await post(token)).status, 400, 'a replay of the logout that was carried out is still refused');
      } finally {
        client.disconnect();
      }
    });

    it('refuses bad signatures, replays and malformed tokens with 400 {"error":"invalid_request"}', async () => {
      const victim = await loggedIn(env, 'judy');
      const sid = victim.session.sid!;
      const forger = await generateSigningKey();
      const replayed = await logoutToken({ sub: 'nobody-at-all' });
      assert.equal((await post(replayed)).status, 200, 'first use is fine');
      const cases: Array<[string, Promise<string> | string | undefined, string?]> = [
        ['bad signature (same kid, other key)', logoutToken({ sid }, { key: forger })],
        ['replayed jti', replayed],
        ['nonce present', logoutToken({ sid, nonce: 'n' })],
        ['no events', logoutToken({ sid, events: undefined })],
        ['wrong event', logoutToken({ sid, events: { 'http://example.com/other': {} } })],
        ['neither sid nor sub', logoutToken({})],
        ['typ is neither logout+jwt nor JWT', logoutToken({ sid }, { typ: 'at+jwt' })],
        ['too old', logoutToken({ sid, iat: Math.floor(Date.now() / 1000) - 3600 })],
        ['wrong audience', logoutToken({ sid, aud: 'someone-else' })],
        ['not a JWT', 'garbage'],
        ['no token', undefined],
        ['wrong content type', logoutToken({ sid }), 'application/json'],
        // Valid JSON, not valid text (no session holds such an id: the callback refuses them).
        ['a sub with a lone surrogate', logoutToken({ sub: 'judy\ud800' })],
        ['a sid with a lone surrogate', logoutToken({ sid: `${sid}\udc00` })],
        ['a jti with a lone surrogate', logoutToken({ sid, jti: 'j\ud800' })],
      ];
      for (const [name, token, type] of cases) {
        const res = await post(await token, type);
        assert.equal(res.status, 400, name);
        assert.equal(JSON.parse(res.body).error, 'invalid_request', name);
        assert.equal(res.headers['cache-control'], 'no-store', name);
      }
      assert.ok(await env.store.getById(victim.session.id), 'no invalid token deleted anything');
      // Without typ at all the token is acceptable (typ is checked only when present).
      assert.equal((await post(await logoutToken({ sid }, { typ: null }))).status, 200);
      assert.equal(await env.store.getById(victim.session.id), null);
    });
  });
});

describe('BFF logout with an IdP without end_session_endpoint', function () {
  this.timeout(20_000);
  let env: IdpBff;
  before(async () => {
    // The discovery document is served without end_session_endpoint (as many OAuth-only IdPs do).
    env = await startIdpBff({ fetch: editingIdpJson('/.well-known/openid-configuration', (meta) => delete meta['end_session_endpoint']) });
  });
  after(() => env?.close());

  it('logs out locally and sends the browser to /', async () => {
    const r = await env.login('kim');
    const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body);
    const res = await httpCall(`${env.url}/auth/logout`, {
      method: 'POST', jar: r.jar, body: `csrf_token=${info.csrf_token}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate' },
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, '/');
    assert.equal(await env.store.get(r.sessionCookie!), null);
    assert.equal((await httpCall(`${env.url}/auth/session`, { jar: new CookieJar() })).status, 401);
  });
});

describe('BFF back-channel logout from an IdP whose issuer ends in "/", written without it in idps.yaml', function () {
  // Auth0's issuer is `https://<tenant>.auth0.com/`. idps.yaml may say `https://<tenant>.auth0.com`:
  // discovery compares the two as URLs (both are `https://<tenant>.auth0.com/`), so sign-ins work,
  // and the IdP's logout tokens carry its own spelling, with the slash.
  this.timeout(30_000);
  let env: IdpBff;
  let signingKey: JWK;
  let issuer = '';
  before(async () => {
    signingKey = await generateSigningKey();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}/`;
    env = await startIdpBff({ idps: [{ devIdp: { port, issuer, keys: [signingKey] }, config: { issuer: `http://127.0.0.1:${port}` } }] });
  });
  after(() => env?.close());

  it('the IdP\'s logout tokens end the session (iss compared as the IdP spells it, not as idps.yaml does)', async () => {
    const a = await loggedIn(env, 'oscar');
    assert.equal(a.session.idp, 'dev');
    const token = await signLogoutToken(issuer, signingKey, { sid: a.session.sid, sub: 'oscar' });
    const res = await httpCall(`${env.url}/auth/backchannel-logout`, {
      method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(await env.store.getById(a.session.id), null);
    // Still exact: the issuer without its slash is another issuer.
    const b = await loggedIn(env, 'oscar');
    const wrong = await signLogoutToken(issuer.slice(0, -1), signingKey, { sid: b.session.sid });
    const refused = await httpCall(`${env.url}/auth/backchannel-logout`, {
      method: 'POST', body: new URLSearchParams({ logout_token: wrong }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(refused.status, 400, refused.body);
    assert.ok(await env.store.getById(b.session.id));
  });
});

describe('BFF back-channel logout with one IdP client under two idps.yaml names', function () {
  // The same issuer and client_id twice (say `corp`, and `corp-admin` asking for more scopes): the
  // IdP knows one client, so it sends ONE logout token for a sid, and the session may have been
  // made under either name.
  this.timeout(30_000);
  let env: IdpBff;
  let signingKey: JWK;
  before(async () => {
    signingKey = await generateSigningKey();
    env = await startIdpBff({ idps: [{ devIdp: { keys: [signingKey] }, redirectPaths: ['/auth/callback', '/auth/callback/dev2'] }] });
    const dev = env.config.idps.idps['dev']!;
    await env.bff.reload({ ...env.config, idps: { default: 'dev', idps: { dev, dev2: { ...dev, name: 'dev2', scopes: dev.scopes.filter((s) => s !== 'offline_access') } } } });
  });
  after(() => env?.close());

  async function post(token: string) {
    return httpCall(`${env.url}/auth/backchannel-logout`, {
      method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  }

  it('a logout token by sid ends the session whichever of the two names it was made under', async () => {
    const r = await env.login('petra', { idp: 'dev2' });
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.equal(s.idp, 'dev2');
    const res = await post(await signLogoutToken(env.idp.issuer, signingKey, { sid: s.sid, sub: 'petra' }));
    assert.equal(res.status, 200, res.body);
    assert.equal(await env.store.getById(s.id), null, 'the session made under dev2 is gone');
  });

  it('a logout token by sub ends the user\'s sessions under both names, and is still one use', async () => {
    const a = await env.login('quinn', { idp: 'dev' });
    const b = await env.login('quinn', { idp: 'dev2' });
    const sa = (await env.store.get(a.sessionCookie!))!;
    const sb = (await env.store.get(b.sessionCookie!))!;
    assert.deepEqual([sa.idp, sb.idp], ['dev', 'dev2']);
    const token = await signLogoutToken(env.idp.issuer, signingKey, { sub: 'quinn' });
    assert.equal((await post(token)).status, 200);
    assert.equal(await env.store.getById(sa.id), null);
    assert.equal(await env.store.getById(sb.id), null);
    assert.equal((await post(token)).status, 400, 'replayed');
  });

  it('a replay is still refused after a reload that reorders or renames the entries: the jti is the issuer\'s, not a name\'s', async () => {
    // A SIGHUP, or a BFF replica rolled out with the new idps.yaml: the token is as valid as before
    // (10 minutes), and a replay of a logout by sub would end the sign-ins the user made since.
    const dev = env.config.idps.idps['dev']!;
    const dev2 = { ...env.config.idps.idps['dev']!, name: 'dev2', scopes: dev.scopes.filter((s) => s !== 'offline_access') };
    try {
      const token = await signLogoutToken(env.idp.issuer, signingKey, { sub: 'rosa' });
      assert.equal((await post(token)).status, 200);
      await new Promise((r) => setTimeout(r, 2)); // the mark's clock is in ms
      const later = await env.login('rosa', { idp: 'dev2' });
      assert.equal(later.status, 302, later.last.body.slice(0, 300));
      const s = (await env.store.get(later.sessionCookie!))!;
      await env.bff.reload({ ...env.config, idps: { default: 'dev', idps: { dev2, dev } } });
      const res = await post(token);
      assert.equal(res.status, 400, 'replayed after the entries were reordered');
      assert.ok(await env.store.getById(s.id), 'the sign-in made after the logout survives its replay');
      await env.bff.reload({ ...env.config, idps: { default: 'main', idps: { main: { ...dev, name: 'main' }, dev2 } } });
      assert.equal((await post(token)).status, 400, 'replayed after an entry was renamed');
      assert.ok(await env.store.getById(s.id));
    } finally {
      await env.bff.reload({ ...env.config, idps: { default: 'dev', idps: { dev, dev2 } } });
    }
  });
});

describe('BFF logout while the session store is away', function () {
  this.timeout(30_000);
  let env: IdpBff;

  before(async () => {
    env = await startIdpBff();
  });
  after(async () => {
    env?.redis.resume();
    await env?.close();
  });

  async function metrics(): Promise<string> {
    return (await httpCall(`${env.url}/metrics`)).body;
  }

  it('a logout the store cannot carry out is a 503, counted in goldpath_logouts_total as outcome "unavailable"', async () => {
    // Every series exists from the start (zeros on a dashboard, not gaps).
    const initial = await metrics();
    for (const kind of ['rp', 'backchannel']) {
      for (const outcome of ['success', 'invalid', 'unavailable']) {
        assert.match(initial, new RegExp(`^goldpath_logouts_total\\{kind="${kind}",outcome="${outcome}"\\} 0$`, 'm'));
      }
    }
    const { jar, csrf, session } = await loggedIn(env, 'stalled');
    env.redis.pause(); // SIGSTOP: every store call times out
    let res;
    try {
      res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', jar, headers: { 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
      });
    } finally {
      env.redis.resume();
    }
    assert.equal(res.status, 503, res.body);
    assert.equal(JSON.parse(res.body).error, 'unavailable');
    const after = await metrics();
    assert.match(after, /^goldpath_logouts_total\{kind="rp",outcome="unavailable"\} 1$/m);
    assert.match(after, /^goldpath_logouts_total\{kind="rp",outcome="success"\} 0$/m, 'not a success');
    assert.ok(await env.store.getById(session.id), 'the session is still there: the user may try again');
  });
});
