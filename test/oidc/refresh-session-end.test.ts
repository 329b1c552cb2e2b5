// A refresh racing the end of its session, with real parts: a real redis-server, the real BFF
// (POST /auth/logout, /auth/backchannel-logout), the real /auth/verify chain with the real token
// provider, and an oidc-provider dev IdP set up to revoke per token (not per grant), as IdPs that
// forget a rotated-away refresh token do: revoking the token a session held before a rotation then
// leaves the grant alive under its successor. Whoever ends a session must revoke the refresh token
// it holds at that moment, and a refresh whose save finds the session gone must revoke the one it
// obtained: otherwise a live grant remains that nobody holds.
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose';
import { adminClient } from '../helpers/redis.ts';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { capturingLogger, loginExpiringAt, logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { type RunningVerify } from '../helpers/verify-app.ts';
import { sleep, gate, grantsRefresh, refreshAnswers, revokesPerToken, startRefreshingVerify } from '../helpers/refresh-race.ts';


/** A promise with its resolver (a point one side waits at until the other lets it on). */

describe('a refresh racing the end of its session (an IdP that revokes per token)', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let store: SessionStore;
  let closeVerify: (() => Promise<void>) | undefined;
  let signingKey: JWK;
  const logs = capturingLogger('debug');
  /** Every refresh token the IdP issued in a refresh answer to the sidecar, in order. */
  let issued: string[] = [];
  /** Awaited once the IdP has answered a refresh grant, before the sidecar sees the answer. */
  let answered: (() => Promise<void>) | undefined;
  /** Edits the JSON of the IdP's refresh answers (none when undefined). */
  let editRefresh: ((body: Record<string, unknown>) => void | Promise<void>) | undefined;
  /** Revocation requests the BFF sent. */
  let revocations = 0;
  /** Awaited before the sidecar sends a revocation request to the IdP. */
  let sidecarRevoking: (() => Promise<void>) | undefined;

  before(async () => {
    signingKey = await generateSigningKey();
    const bffFetch: FetchLike = async (url, init) => {
      if (String(url).endsWith('/token/revocation')) {
        revocations++;
      }
      return globalThis.fetch(url, init as RequestInit);
    };
    env = await startIdpBff({
      fetch: bffFetch,
      idps: [{
        devIdp: {
          keys: [signingKey],
          configure: revokesPerToken,
        },
      }],
    });
    const answers = refreshAnswers(async (body) => {
      if (typeof body['refresh_token'] === 'string') issued.push(body['refresh_token']);
      await answered?.();
      await editRefresh?.(body);
    });
    const fetch: FetchLike = async (url, init) => {
      if (String(url).endsWith('/token/revocation')) await sidecarRevoking?.();
      return answers(url, init);
    };
    ({ store, verify, close: closeVerify } = await startRefreshingVerify(env, fetch, logs.log));
  });
  after(async () => {
    await closeVerify?.();
    await env?.close();
  });
  beforeEach(() => {
    issued = [];
    answered = undefined;
    editRefresh = undefined;
    revocations = 0;
    sidecarRevoking = undefined;
  });

  /** A signed-in browser whose login token has expired: its next API call refreshes. */
  async function expiredSession(user: string) {
    const s = await loginExpiringAt(env, user, Date.now() - 1000);
    const info = await httpCall(`${env.url}/auth/session`, { headers: { cookie: s.cookie } });
    assert.equal(info.status, 200, info.body);
    return { ...s, csrf: JSON.parse(info.body).csrf_token as string };
  }

  function logout(cookie: string, csrf: string) {
    return httpCall(`${env.url}/auth/logout`, {
      method: 'POST', headers: { cookie, 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
    });
  }

  /**
   * An API call whose refresh the IdP has answered (the refresh token rotated) but whose answer is
   * held before the sidecar reads it: `release` lets it go on.
   */
  async function refreshHeldAtIdp(cookie: string) {
    const arrived = gate();
    const go = gate();
    answered = async () => {
      arrived.open();
      await go.promise;
    };
    const call = verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    await arrived.promise;
    return { call, release: go.open };
  }

  const grants = (rt: string) => grantsRefresh(env.idp.issuer, rt);

  /**
   * No refresh token of this session is left usable at the IdP: each is revoked (at once, or within
   * a few seconds for a revocation made in the background) or spent by rotation.
   */
  async function noneLive(tokens: string[]): Promise<void> {
    const live = async (rt: string) => {
      const t = await env.idp.provider.RefreshToken.find(rt) as { consumed?: unknown } | undefined;
      return t !== undefined && !t.consumed;
    };
    for (let i = 0; i < 50 && (await Promise.all(tokens.map(live))).some(Boolean); i++) await sleep(100);
    for (const rt of tokens) assert.equal(await grants(rt), false, 'a refresh token the session ended with is still granted at the IdP: a live grant nobody holds');
  }

  /** No log line carries any of `secrets`. */
  function noneLogged(secrets: string[]): void {
    for (const line of logs.lines) for (const s of secrets) assert.ok(!line.includes(s), 'a token reached the log');
  }

  it('a logout while the IdP\'s refresh answer is on its way: the refresh token it brings is revoked, and the request is still a 401', async () => {
    const { cookie, csrf, session } = await expiredSession('alice');
    const { call, release } = await refreshHeldAtIdp(cookie);
    // The IdP has rotated the refresh token; the session still holds the old one, which the logout
    // revokes (at this IdP, that one only) before deleting the session.
    const out = await logout(cookie, csrf);
    assert.equal(out.status, 200, out.body);
    // A slow revocation endpoint does not hold the request's answer up.
    sidecarRevoking = () => sleep(2_000);
    const t0 = performance.now();
    release();
    const res = await call;
    assert.equal(res.status, 401, res.body);
    assert.ok(performance.now() - t0 < 1_000, `answered ${Math.round(performance.now() - t0)} ms after the IdP's answer`);
    assert.equal(res.headers['authorization'], undefined);
    assert.equal(issued.length, 1);
    await noneLive([session.secrets.refreshToken!, ...issued]);
    noneLogged([session.secrets.refreshToken!, ...issued]);
  });

  it('a refresh saved between the logout\'s read and its delete: the logout revokes the refresh token the session held when it was deleted', async () => {
    const { cookie, csrf, session } = await expiredSession('bob');
    const reached = gate();
    const go = gate();
    // The BFF's own store: its delete (take) waits until the test lets it go on.
    const store = env.store as { take: SessionStore['take'] };
    const take = store.take;
    store.take = async (id) => {
      store.take = take;
      reached.open();
      await go.promise;
      return take.call(env.store, id);
    };
    try {
      const out = logout(cookie, csrf);
      await reached.promise;
      // The logout has read the session and is about to delete it: meanwhile a request refreshes
      // and saves the rotated refresh token.
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 200, res.body);
      assert.equal(issued.length, 1);
      assert.equal((await env.store.getById(session.id))?.secrets.refreshToken, issued[0]);
      go.open();
      assert.equal((await out).status, 200);
    } finally {
      store.take = take;
    }
    assert.equal(await env.store.getById(session.id), null);
    await noneLive([session.secrets.refreshToken!, ...issued]);
  });

  /** Refresh answers whose ID token the IdP signed is past its exp by our clock (a clock off at either end). */
  function idTokensPastExp(): void {
    editRefresh = async (body) => {
      const real = String(body['id_token']);
      const claims = { ...decodeJwt(real), exp: Math.floor(Date.now() / 1000) - 3600 };
      body['id_token'] = await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(real) as { alg: string }).sign(await importJWK(signingKey, 'RS256'));
    };
  }

  it('a logout while an answer whose ID token is past its exp is on its way: the refresh token it brings, which the session would have kept, is revoked, and the request is a 401', async () => {
    const { cookie, csrf, session } = await expiredSession('abe');
    idTokensPastExp();
    const { call, release } = await refreshHeldAtIdp(cookie);
    const out = await logout(cookie, csrf);
    assert.equal(out.status, 200, out.body);
    release();
    const res = await call;
    assert.equal(res.status, 401, res.body);
    assert.equal(issued.length, 1);
    await noneLive([session.secrets.refreshToken!, ...issued]);
    noneLogged([session.secrets.refreshToken!, ...issued]);
  });

  it('a logout without a race revokes once', async () => {
    const { cookie, csrf, session } = await expiredSession('carl');
    assert.equal((await logout(cookie, csrf)).status, 200);
    assert.equal(revocations, 1);
    await noneLive([session.secrets.refreshToken!]);
  });

  it('a back-channel logout while the IdP\'s refresh answer is on its way: the refresh token it brings is revoked', async () => {
    const { cookie, session } = await expiredSession('dora');
    const { call, release } = await refreshHeldAtIdp(cookie);
    const token = await logoutToken(env.idp.issuer, signingKey, { sid: session.sid, sub: 'dora' });
    const out = await httpCall(`${env.url}/auth/backchannel-logout`, {
      method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(out.status, 200, out.body);
    release();
    assert.equal((await call).status, 401);
    assert.equal(issued.length, 1);
    await noneLive(issued);
  });

  it('a refresh answered with an ID token for another user ends the session and revokes the refresh token it brings', async () => {
    const r = await env.login('mallory');
    const other = (await env.store.get(r.sessionCookie!))!.secrets.idToken!;
    const { cookie } = await expiredSession('erin');
    editRefresh = (body) => { body['id_token'] = other; };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 401, res.body);
    assert.equal(issued.length, 1);
    await noneLive(issued);
  });

  it('a refresh answered with an ID token for another audience or issuer (openid-client refuses it before handing the answer over) ends the session and revokes both the sent refresh token and the one the answer brings; so does one past its exp, which openid-client refuses before it compares them (goldpath compares them then)', async () => {
    const key = await importJWK(signingKey, 'RS256');
    const past = (claims: Record<string, unknown>) => { claims['exp'] = Math.floor(Date.now() / 1000) - 3600; };
    const otherAud = (claims: Record<string, unknown>) => { claims['aud'] = 'another-client'; };
    const otherIss = (claims: Record<string, unknown>) => { claims['iss'] = 'https://another-idp.example'; };
    // Several audiences, none of them named by azp as the party the token was issued to.
    const untrustedAud = (claims: Record<string, unknown>) => {
      claims['aud'] = ['goldpath', 'another-client'];
      delete claims['azp'];
    };
    const cases: [string, ...((claims: Record<string, unknown>) => void)[]][] = [
      ['gina', otherAud], ['hank', otherIss], ['gwen', untrustedAud],
      ['gail', otherAud, past], ['hugo', otherIss, past], ['gus', untrustedAud, past],
    ];
    for (const [user, ...edits] of cases) {
      issued = [];
      logs.lines.length = 0;
      const { cookie, session } = await expiredSession(user);
      // Signed with the IdP's own key: the IdP itself named another party (a misconfiguration).
      editRefresh = async (body) => {
        const real = String(body['id_token']);
        const claims = { ...decodeJwt(real) } as Record<string, unknown>;
        for (const edit of edits) edit(claims);
        body['id_token'] = await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(real) as { alg: string }).sign(key);
      };
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 401, `${user}: ${res.body}`);
      assert.equal(res.headers['authorization'], undefined);
      assert.equal(await env.store.getById(session.id), null, 'the session is over');
      assert.equal(issued.length, 1);
      assert.notEqual(issued[0], session.secrets.refreshToken, 'the IdP rotated the refresh token');
      assert.ok(logs.lines.some((l) => l.includes('OAUTH_JWT_CLAIM_COMPARISON_FAILED')), 'the log says why');
      await noneLive([session.secrets.refreshToken!, ...issued]);
      noneLogged([session.secrets.refreshToken!, ...issued]);
    }
  });

  it('an answer whose ID token is past its exp while the store refuses writes: the refresh token it brings is saved in the background once the store is back', async () => {
    const { cookie, session } = await expiredSession('fay');
    idTokensPastExp();
    const admin = adminClient(env.redis.url);
    try {
      answered = async () => { await admin.config('SET', 'maxmemory', '1'); };
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 503, res.body);
      await admin.config('SET', 'maxmemory', '0');
      assert.equal(issued.length, 1);
      const held = async () => (await env.store.getById(session.id))?.secrets.refreshToken;
      for (let i = 0; i < 50 && await held() !== issued[0]; i++) await sleep(100);
      assert.equal(await held(), issued[0], 'the session holds the refresh token the IdP rotated to');
      assert.equal(await grants(issued[0]!), true, 'which the IdP still grants');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });

  it('a save that failed (the store refused writes) and, retried, finds the session gone: the refresh token it holds is revoked', async () => {
    const { cookie, csrf, session } = await expiredSession('fred');
    const admin = adminClient(env.redis.url);
    try {
      // From the moment the IdP has answered, the store refuses writes (out of memory, as a
      // failing-over primary does): the save fails, and is retried in the background.
      answered = async () => { await admin.config('SET', 'maxmemory', '1'); };
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 503, res.body);
      // Meanwhile the user logs out (a delete is no write Redis refuses when out of memory).
      const out = await logout(cookie, csrf);
      assert.equal(out.status, 200, out.body);
      await admin.config('SET', 'maxmemory', '0');
      assert.equal(await env.store.getById(session.id), null);
      assert.equal(issued.length, 1);
      await noneLive([session.secrets.refreshToken!, ...issued]);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });
});
