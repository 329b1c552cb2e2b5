// A refresh of the login token asks the IdP's userinfo with the new access token and rebuilds the
// user as sign-in does (refreshed-user.ts), through a real oidc-provider, a real redis-server and
// the real /auth/verify chain:
//   - a role the IdP took away that only userinfo says reaches the policies with the refreshing
//     request (403), with or without an ID token in the refresh answer;
//   - a claim neither the ID token nor userinfo carries any more is gone (replacement, not merge);
//   - userinfo down, refusing, for another sub, not answering in time, or no lock time left for it:
//     the request is answered as before, the refreshed tokens are kept, the user is as the ID token
//     makes it, and one warning line says why (no token or claim in it);
//   - a refresh for an audience (RFC 8707) does not ask userinfo;
//   - an IdP without a userinfo endpoint: the refreshed ID token's claims over the session's, as ever.
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider } from '../../src/oidc/token-provider.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { capturingLogger, loginExpiringAt, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import type { RunningVerify } from '../helpers/verify-app.ts';
import { refreshAnswers, sleep, startRefreshingVerify, userinfoAnswers } from '../helpers/refresh-race.ts';

const REPORTS = 'https://api.example.test/reports';
const FALLBACK = 'userinfo could not be had';

describe('refresh: the user rebuilt with userinfo', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let store: SessionStore;
  let closeVerify: (() => Promise<void>) | undefined;
  /** The same chain on an IdP whose discovery document names no userinfo endpoint. */
  let plainVerify: RunningVerify;
  let closePlain: (() => Promise<void>) | undefined;
  /** What the dev IdP holds of a user beside devUserClaims' (a role taken away there). */
  const atIdp = new Map<string, Record<string, unknown>>();
  /** Userinfo requests goldpath sent (the refreshing processes'). */
  let asked = 0;
  let editRefresh: ((body: Record<string, unknown>) => void | Promise<void>) | undefined;
  /** Edits the claims of a userinfo answer, or answers instead (a Response). */
  let editUserinfo: ((claims: Record<string, unknown>) => Response | void | Promise<Response | void>) | undefined;
  /** The userinfo endpoint does not answer (until the request is aborted) while set. */
  let userinfoHangs = false;
  let fetch: FetchLike;
  const logs = capturingLogger('info');
  let signingKey: JWK;

  before(async () => {
    signingKey = await generateSigningKey();
    env = await startIdpBff({
      idps: [{
        devIdp: { accessTokenTtl: 60, keys: [signingKey], extraClaims: (user) => atIdp.get(user) },
        config: { audiences: { reports: { resource: REPORTS, scopes: ['reports.read'] } } },
      }],
    });
    const answers = userinfoAnswers(refreshAnswers(async (body) => { await editRefresh?.(body); }), async (claims) => editUserinfo?.(claims));
    fetch = async (url, init) => {
      if (new URL(String(url)).pathname === '/me') {
        asked++;
        if (userinfoHangs) {
          await new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(init.signal!.reason), { once: true }));
        }
      }
      return answers(url, init);
    };
    ({ store, verify, close: closeVerify } = await startRefreshingVerify(env, fetch, logs.log));
    const withoutUserinfo: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if (!String(url).endsWith('/.well-known/openid-configuration')) return res;
      const meta = await res.json() as Record<string, unknown>;
      delete meta['userinfo_endpoint'];
      return new Response(JSON.stringify(meta), { status: res.status, headers: res.headers });
    };
    ({ verify: plainVerify, close: closePlain } = await startRefreshingVerify(env, withoutUserinfo, logs.log));
  });
  after(async () => {
    await closeVerify?.();
    await closePlain?.();
    await env?.close();
  });
  beforeEach(() => {
    atIdp.clear();
    asked = 0;
    userinfoHangs = false;
    editRefresh = undefined;
    editUserinfo = undefined;
    logs.lines.length = 0;
  });

  it('a role the IdP took away that only its userinfo says denies the request that refreshed (403), and the stored user loses it: with the refresh answer\'s ID token or without one', async () => {
    const answers: Record<string, (() => void) | undefined> = {
      'its ID token as the IdP sent it': undefined,
      'no ID token (the session\'s own is built on)': () => { editRefresh = (body) => { delete body['id_token']; }; },
    };
    for (const [what, answer] of Object.entries(answers)) {
      const user = `ursula-${Object.keys(answers).indexOf(what)}`;
      const { cookie, session } = await loginExpiringAt(env, user, Date.now() - 1000);
      assert.deepEqual(session.secrets.user.roles, ['reader']);
      // oidc-provider puts no roles in its ID tokens (conformIdTokenClaims): userinfo alone says them.
      assert.equal(decodeJwt(session.secrets.idToken!)['roles'], undefined);
      answer?.();
      atIdp.set(user, { roles: [] });
      asked = 0;
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 403, `${what}: the request whose refresh took the role away is decided on the new user: ${res.body}`);
      assert.equal(asked, 1, `${what}: one userinfo request`);
      const stored = (await env.store.getById(session.id))!;
      assert.notEqual(stored.secrets.refreshToken, session.secrets.refreshToken, `${what}: the refresh was kept`);
      assert.deepEqual(stored.secrets.user.roles, [], what);
      assert.deepEqual(stored.secrets.user.groups, ['users'], what);
      assert.equal(stored.secrets.user.sub, user);
      assert.equal(stored.secrets.user.name, session.secrets.user.name);
      assert.equal(stored.secrets.user.email, session.secrets.user.email);
      assert.deepEqual(stored.secrets.user.scopes, session.secrets.user.scopes, `${what}: the scopes granted at sign-in stay`);
      assert.equal(stored.secrets.user.claims['iss'], session.secrets.user.claims['iss']);
      assert.ok(!logs.lines.some((l) => l.includes(FALLBACK)), 'no fallback');
      editRefresh = undefined;
    }
  });

  it('a claim that neither the refreshed ID token nor userinfo carries any more is gone, as at sign-in (an IdP that leaves roles out once a user has none)', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'uma', Date.now() - 1000);
    assert.deepEqual(session.secrets.user.roles, ['reader']);
    assert.equal(session.secrets.user.name, 'Uma');
    editUserinfo = (claims) => {
      delete claims['roles'];
      delete claims['name'];
    };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 403, res.body);
    const stored = (await env.store.getById(session.id))!;
    assert.deepEqual(stored.secrets.user.roles, []);
    assert.ok(!('roles' in stored.secrets.user.claims), 'the roles claim is gone');
    assert.ok(!('name' in stored.secrets.user.claims), 'the name claim is gone');
    assert.equal(stored.secrets.user.name, 'uma', 'the name is the preferred_username now, as at a sign-in with this userinfo');
  });

  /**
   * A refresh of `user` through `refresh` whose userinfo fails as `fail` makes it: the refresh is kept
   * (the new access token served, the rotated refresh token stored), the user stays as it was, and
   * one warning line says why (`why`), with the request id and the IdP, and no token or claim value.
   */
  async function userinfoFails(user: string, refresh: (cookie: string, session: Awaited<ReturnType<typeof loginExpiringAt>>['session']) => Promise<{ authorization: unknown; reqId: string }>, why: RegExp): Promise<void> {
    logs.lines.length = 0;
    const { cookie, session, token } = await loginExpiringAt(env, user, Date.now() - 1000);
    atIdp.set(user, { roles: [] }); // the IdP took the role away: unseen, userinfo failing
    const { authorization, reqId } = await refresh(cookie, session);
    const stored = (await env.store.getById(session.id))!;
    assert.ok(stored, 'the session stays');
    assert.notEqual(stored.secrets.tokens['']!.value, token, 'the new access token is kept');
    assert.equal(authorization, `Bearer ${stored.secrets.tokens['']!.value}`, 'and served');
    assert.notEqual(stored.secrets.refreshToken, session.secrets.refreshToken, 'the rotated refresh token is kept');
    assert.deepEqual(stored.secrets.user, session.secrets.user, 'the user is as the ID token makes it (as before)');
    const line = await eventually(() => logs.lines.find((l) => l.includes(FALLBACK)), 'a warning says why');
    assert.match(line, /"level":"warn"/);
    assert.match(line, why);
    assert.ok(line.includes(`"reqId":"${reqId}"`), line);
    assert.ok(line.includes('"idp":"dev"'), line);
    for (const secret of [token, stored.secrets.tokens['']!.value, stored.secrets.refreshToken!, session.secrets.refreshToken!, session.secrets.user.email!]) {
      assert.ok(!logs.lines.some((l) => l.includes(secret)), 'a token or claim reached the log');
    }
  }

  /** The refresh as a request to the verify chain (200, as before), with its request id. */
  const throughVerify = (reqId: string) => async (cookie: string) => {
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie, 'X-Request-Id': reqId });
    assert.equal(res.status, 200, res.body);
    return { authorization: res.headers['authorization'], reqId };
  };

  it('userinfo down (500), refusing the new token (401), or answering for another sub at refresh: the request is answered as before (200), the refreshed tokens are kept, the user unchanged, one warning line', async () => {
    const failures: Record<string, [typeof editUserinfo, RegExp]> = {
      'down': [() => new Response('<html>bad gateway</html>', { status: 500, headers: { 'content-type': 'text/html' } }), /did not answer the userinfo request/],
      'refusing': [() => Response.json({ error: 'invalid_token' }, { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } }), /invalid_token/],
      'another sub': [(claims) => { claims['sub'] = 'mallory'; }, /OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED.*sub/],
    };
    for (const [what, [fail, why]] of Object.entries(failures)) {
      editUserinfo = fail;
      const name = what.replace(/\W+/g, '-');
      await userinfoFails(`vera-${name}`, throughVerify(`req-${name}`), why);
    }
    assert.ok(!logs.lines.some((l) => l.includes('mallory')), 'the userinfo answer\'s claims are not logged');
  });

  it('userinfo that does not answer within the IdP timeout at refresh: the refresh goes on without it, its tokens kept', async () => {
    userinfoHangs = true;
    const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: logs.log, fetch, timeoutSeconds: 1 }), store, log: logs.log });
    await userinfoFails('walt', async (_cookie, session) => {
      const creds = await tokens.credentials(session, '', 'GET', 'https://api.example.test/', { requestId: 'req-slow', startedAt: performance.now() });
      return { authorization: creds?.authorization, reqId: 'req-slow' };
    }, /did not answer the userinfo request/);
    assert.equal(asked, 1);
  });

  it('too little time left under the refresh lock for userinfo after the grant: it is not asked, the refresh is kept', async () => {
    // A 0.5 s grant budget under a 1.8 s lock: the grant may start (0.5 s + the 1 s write fit), but
    // less than a second would be left for userinfo before the write.
    const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: logs.log, fetch, refreshTimeoutSeconds: 0.5 }), store, log: logs.log, lockTtlMs: 1_800 });
    await userinfoFails('xena', async (_cookie, session) => {
      const creds = await tokens.credentials(session, '', 'GET', 'https://api.example.test/', { requestId: 'req-late', startedAt: performance.now() });
      return { authorization: creds?.authorization, reqId: 'req-late' };
    }, /no time was left for the userinfo request/);
    assert.equal(asked, 0, 'no userinfo request');
  });

  it('a refresh of an audience\'s token (RFC 8707) does not ask userinfo, and leaves the user as it was', async () => {
    const { session } = await loginExpiringAt(env, 'yara', Date.now() + 60_000);
    atIdp.set('yara', { roles: [] });
    const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: logs.log, fetch }), store, log: logs.log });
    const creds = await tokens.credentials(session, 'reports', 'GET', `${REPORTS}/1`);
    assert.ok(creds?.authorization);
    const stored = (await env.store.getById(session.id))!;
    assert.ok(stored.secrets.tokens['reports'], 'the audience token was obtained');
    assert.equal(asked, 0, 'no userinfo request');
    assert.deepEqual(stored.secrets.user, session.secrets.user);
    assert.ok(!logs.lines.some((l) => l.includes(FALLBACK)));
  });

  it('an IdP without a userinfo endpoint: the refreshed ID token\'s claims go over the session\'s, a claim it leaves out stays, userinfo is never asked', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'zoe', Date.now() - 1000);
    editRefresh = async (body) => {
      const real = String(body['id_token']);
      const claims = decodeJwt(real) as Record<string, unknown>;
      claims['roles'] = [];
      claims['groups'] = ['auditors'];
      body['id_token'] = await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(real) as { alg: string }).sign(await importJWK(signingKey, 'RS256'));
    };
    asked = 0;
    const res = await plainVerify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 403, res.body);
    assert.equal(asked, 0, 'no userinfo request');
    const stored = (await env.store.getById(session.id))!;
    assert.deepEqual(stored.secrets.user.roles, []);
    assert.deepEqual(stored.secrets.user.groups, ['auditors']);
    assert.equal(stored.secrets.user.name, session.secrets.user.name, 'a claim the refreshed ID token leaves out stays');
    assert.ok(!logs.lines.some((l) => l.includes(FALLBACK)));
  });

  /** What `seen` finds, within 3 s (a line the failure gate held back comes within 1 s). */
  async function eventually<T>(seen: () => T | undefined, what: string): Promise<T> {
    for (let i = 0; i < 30 && seen() === undefined; i++) await sleep(100);
    const found = seen();
    assert.ok(found !== undefined, what);
    return found;
  }
});
