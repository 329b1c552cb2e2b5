// Real IdPs' quirks, as a user swapping Keycloak, Entra ID, Okta, Auth0, Google or Cognito into
// idps.yaml meets them, against a small real HTTP IdP (test/helpers/fake-idp.ts) that behaves so,
// the real BFF and token provider, and a real redis-server. Each must end in a clear outcome: it
// works, or a clear 4xx page / 503 and a log line naming the problem; never a 500, a lost session,
// a silently wrong identity or a leaked token.
import assert from 'node:assert/strict';
import type { IdpConfig } from '../../src/config/types.ts';
import type { Session } from '../../src/session/types.ts';
import type { FakeIdpOptions } from '../helpers/fake-idp.ts';
import { startFakeIdpBff, type FakeIdpBff } from '../helpers/fake-idp-bff.ts';
import { browserLogin, httpCall, type LoginResult } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

interface Env extends FakeIdpBff {
  login(): Promise<LoginResult>;
  /** A signed-in session whose login token has expired (the next credentials() refreshes). */
  expiredSession(): Promise<Session>;
}

async function startEnv(redis: RedisServer, over: Partial<FakeIdpOptions> = {}, idpOver: Partial<IdpConfig> = {}): Promise<Env> {
  const base = await startFakeIdpBff(redis, { idp: over, client: idpOver });
  const { store, url } = base;
  const login = () => browserLogin({ start: `${url}/auth/login?return_to=/home` });
  return {
    ...base, login,
    async expiredSession() {
      const r = await login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const s = (await store.get(r.sessionCookie!))!;
      const t = s.secrets.tokens['']!;
      assert.ok(await store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1000 } } }));
      return (await store.getById(s.id))!;
    },
  };
}

const logged = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l));
const UPSTREAM = 'http://api.example.test/orders';

describe('IdP quirks', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  before(async () => { redis = await RedisServer.start(); });
  after(async () => { await redis?.stop(); });

  describe('a plain IdP (RS256, refresh tokens, revocation, no end_session_endpoint: Google-like)', () => {
    let env: Env;
    before(async () => { env = await startEnv(redis, { decoyKeys: 2 }); });
    after(async () => { await env?.close(); });
    afterEach(() => {
      env.op.claims = {};
      env.op.editToken = undefined;
      env.op.refreshStatus = undefined;
      env.lines.length = 0;
    });

    it('a JWKS of several keys: the ID token is checked against the key its kid names', async () => {
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
    });

    it('email_verified as the string "true" (Cognito) in the ID token is not a verification: no email, and a log line says why', async () => {
      env.op.claims = { email_verified: 'true' };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const s = (await env.store.get(r.sessionCookie!))!;
      assert.equal(s.secrets.user.email, undefined, 'the string "true" counted as verified');
      assert.equal(s.secrets.user.claims['email_verified'], 'true', 'the claim itself is kept for policies');
      assert.equal(logged(env.lines, /email_verified/).length, 1, env.lines.join('\n'));
    });

    it('email_verified boolean true keeps the email; "false" as a string does not', async () => {
      env.op.claims = { email_verified: true };
      let r = await env.login();
      assert.equal((await env.store.get(r.sessionCookie!))!.secrets.user.email, 'mallory@example.test');
      env.op.claims = { email_verified: 'false' };
      r = await env.login();
      assert.equal((await env.store.get(r.sessionCookie!))!.secrets.user.email, undefined);
    });

    it('aud as an array with azp naming this client signs in; an array of several without azp is a 400 page', async () => {
      env.op.claims = { aud: ['goldpath', 'https://graph.example.test'], azp: 'goldpath' };
      const ok = await env.login();
      assert.equal(ok.status, 302, ok.last.body.slice(0, 300));
      env.op.claims = { aud: ['goldpath', 'https://graph.example.test'] };
      const bad = await env.login();
      assert.equal(bad.status, 400, bad.last.body.slice(0, 300));
      assert.equal(bad.sessionCookie, undefined);
      env.op.claims = { aud: ['goldpath', 'https://graph.example.test'], azp: 'someone-else' };
      const other = await env.login();
      assert.equal(other.status, 400, other.last.body.slice(0, 300));
    });

    it('a refresh answer without refresh_token (Google) or id_token keeps the old ones: the next refresh works too', async () => {
      const s = await env.expiredSession();
      env.op.editToken = (body, grant) => {
        if (grant !== 'refresh_token') return;
        delete body['refresh_token'];
        delete body['id_token'];
      };
      const c1 = await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM);
      assert.ok(c1, 'refreshed');
      const after1 = (await env.store.getById(s.id))!;
      assert.equal(after1.secrets.refreshToken, s.secrets.refreshToken, 'the refresh token is kept');
      assert.equal(after1.secrets.idToken, s.secrets.idToken, 'the ID token is kept (id_token_hint at logout)');
      await env.store.updateSecrets(s.id, { ...after1.secrets, tokens: { '': { ...after1.secrets.tokens['']!, expiresAt: Date.now() - 1000 } } });
      const c2 = await env.bff.tokens.credentials((await env.store.getById(s.id))!, '', 'GET', UPSTREAM);
      assert.ok(c2 && c2.authorization !== c1.authorization, 'a second refresh with the kept refresh token');
    });

    for (const [what, edit, expiresIn] of [
      ['expires_in as a string "3600", token_type "bearer"', (b: Record<string, unknown>) => { b['expires_in'] = '3600'; b['token_type'] = 'bearer'; }, 3600],
      ['token_type "BEARER"', (b: Record<string, unknown>) => { b['token_type'] = 'BEARER'; }, 300],
    ] as const) {
      it(`a refresh answer with ${what}: a Bearer token that expires when it says`, async () => {
        const s = await env.expiredSession();
        env.op.editToken = (body, grant) => { if (grant === 'refresh_token') edit(body); };
        const c = await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM);
        assert.match(c?.authorization ?? '', /^Bearer \S+$/);
        const t = (await env.store.getById(s.id))!.secrets.tokens['']!;
        assert.ok(Math.abs(t.expiresAt! - Date.now() - expiresIn * 1000) < 5_000, String(t.expiresAt));
      });
    }

    it('an opaque access token without expires_in (at sign-in and at refresh) is refreshed after 5 minutes, not never', async () => {
      env.op.editToken = (body) => { delete body['expires_in']; };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const s = (await env.store.get(r.sessionCookie!))!;
      const t = s.secrets.tokens['']!;
      assert.ok(t.expiresAt !== undefined && Math.abs(t.expiresAt - Date.now() - 300_000) < 5_000, `expiresAt ${t.expiresAt}: never refreshed`);
      const fresh = await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM);
      assert.equal(fresh?.authorization, `Bearer ${t.value}`, 'not refreshed before then');
      await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1000 } } });
      const c = await env.bff.tokens.credentials((await env.store.getById(s.id))!, '', 'GET', UPSTREAM);
      assert.ok(c && c.authorization !== `Bearer ${t.value}`, 'refreshed');
      const t2 = (await env.store.getById(s.id))!.secrets.tokens['']!;
      assert.ok(t2.expiresAt !== undefined && t2.expiresAt > Date.now() + 200_000);
    });

    it('a refresh answer granting other scopes than asked: the token is kept with the scopes granted, the identity unchanged', async () => {
      const s = await env.expiredSession();
      env.op.editToken = (body, grant) => { if (grant === 'refresh_token') body['scope'] = 'openid profile'; };
      const c = await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM);
      assert.ok(c);
      const after = (await env.store.getById(s.id))!;
      assert.equal(after.secrets.tokens['']!.scope, 'openid profile');
      assert.equal(after.sub, s.sub);
    });

    it('a proxy\'s HTML 502 page at the token endpoint on refresh: 503, the session and its refresh token stay, one log line with the status', async () => {
      const s = await env.expiredSession();
      env.op.refreshStatus = 502;
      await assert.rejects(env.bff.tokens.credentials(s, '', 'GET', UPSTREAM), (err: { status?: number }) => err.status === 503);
      const kept = (await env.store.getById(s.id))!;
      assert.equal(kept.secrets.refreshToken, s.secrets.refreshToken);
      const lines = logged(env.lines, /token refresh failed/);
      assert.equal(lines.length, 1, env.lines.join('\n'));
      assert.match(lines[0]!, /"status":502/);
      assert.doesNotMatch(lines[0]!, /nginx|<html/i, 'no response body in the log');
      env.op.refreshStatus = undefined;
    });

    it('a signing key rotated at the IdP between login and refresh: the refreshed ID token (new kid) is accepted', async () => {
      const s = await env.expiredSession();
      await env.op.rotateKey();
      const c = await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM);
      assert.ok(c);
      const after = (await env.store.getById(s.id))!;
      assert.notEqual(after.secrets.idToken, s.secrets.idToken);
    });

    it('logout at an IdP without end_session_endpoint: the session ends, the refresh token is revoked, the browser lands on /', async () => {
      const r = await env.login();
      const s = (await env.store.get(r.sessionCookie!))!;
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', body: `csrf_token=${s.secrets.csrf}`,
        headers: { cookie: `goldpath=${r.sessionCookie}`, 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin', origin: env.url },
      });
      assert.equal(res.status, 302, res.body);
      assert.equal(res.headers.location, '/');
      assert.equal(await env.store.getById(s.id), null);
      assert.ok(env.op.revoked.includes(s.secrets.refreshToken!));
    });

    it('a very large claims set (60 KiB): the session cookie stays small, the ID token is kept server-side only', async () => {
      env.op.claims = { profile_blob: 'x'.repeat(60 * 1024) };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const setCookie = String(r.last.headers['set-cookie']);
      assert.ok(setCookie.length < 300, `Set-Cookie of ${setCookie.length} bytes`);
      assert.ok(r.sessionCookie!.length < 120);
    });
  });

  describe('an IdP without a revocation endpoint, with an end-session endpoint (Entra ID-like)', () => {
    let env: Env;
    before(async () => {
      env = await startEnv(redis, { discovery: { revocation_endpoint: undefined, end_session_endpoint: '$ISSUER/logout' } });
    });
    after(async () => { await env?.close(); });

    async function logout(r: LoginResult): Promise<{ status: number; url: string; s: Session }> {
      const s = (await env.store.get(r.sessionCookie!))!;
      const res = await httpCall(`${env.url}/auth/logout`, {
        method: 'POST', headers: { cookie: `goldpath=${r.sessionCookie}`, 'x-csrf-token': s.secrets.csrf, accept: 'application/json' },
      });
      return { status: res.status, url: String(JSON.parse(res.body).logout_url), s };
    }

    it('logout: the session ends, nothing to revoke, the IdP\'s end-session URL with id_token_hint', async () => {
      const r = await env.login();
      const { status, url, s } = await logout(r);
      assert.equal(status, 200);
      assert.equal(await env.store.getById(s.id), null);
      assert.match(url, new RegExp(`^${env.op.issuer}/logout\\?`));
      assert.equal(new URL(url).searchParams.get('id_token_hint'), s.secrets.idToken);
    });

    it('an ID token too large for a URL: the end-session URL names the client instead of carrying it (IdPs refuse request lines over 4-8 KiB)', async () => {
      env.op.claims = { picture: `https://cdn.example.test/${'p'.repeat(6000)}` };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const { url } = await logout(r);
      assert.ok(url.length <= 4096, `an end-session URL of ${url.length} bytes`);
      const q = new URL(url).searchParams;
      assert.equal(q.get('id_token_hint'), null);
      assert.equal(q.get('client_id'), 'goldpath');
      assert.equal(q.get('post_logout_redirect_uri'), `${env.url}/`);
      env.op.claims = {};
    });
  });

  for (const alg of ['ES256', 'PS256'] as const) {
    describe(`an IdP signing ID tokens with ${alg}`, () => {
      let env: Env;
      before(async () => { env = await startEnv(redis, { alg, decoyKeys: 1 }); });
      after(async () => { await env?.close(); });
      it('signs in, and a refresh after a key rotation is accepted', async () => {
        const s = await env.expiredSession();
        await env.op.rotateKey();
        assert.ok(await env.bff.tokens.credentials(s, '', 'GET', UPSTREAM));
      });
    });
  }

  describe('Cognito\'s userinfo (JSON), which spells email_verified "true" as a string', () => {
    let env: Env;
    before(async () => { env = await startEnv(redis, { userinfo: 'json' }); });
    after(async () => { await env?.close(); });
    beforeEach(() => { env.lines.length = 0; });

    it('the ID token\'s boolean true for the same address stands: the email is kept, nothing logged', async () => {
      env.op.claims = { email_verified: true };
      env.op.userinfoClaims = { email: 'mallory@example.test', email_verified: 'true' };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      assert.equal((await env.store.get(r.sessionCookie!))!.secrets.user.email, 'mallory@example.test');
      assert.deepEqual(logged(env.lines, /email_verified/), []);
    });

    it('only the string (no boolean anywhere): no email, one warning naming email_verified', async () => {
      env.op.claims = { email_verified: undefined };
      env.op.userinfoClaims = { email: 'mallory@example.test', email_verified: 'true' };
      const r = await env.login();
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      assert.equal((await env.store.get(r.sessionCookie!))!.secrets.user.email, undefined);
      assert.equal(logged(env.lines, /"level":"warn".*email_verified/).length, 1, env.lines.join('\n'));
    });
  });

  describe('userinfo answered as a signed JWT (application/jwt)', () => {
    for (const advertised of [true, false]) {
      describe(advertised ? 'with userinfo_signing_alg_values_supported advertised' : 'without userinfo_signing_alg_values_supported (the IdP does not say)', () => {
        let env: Env;
        before(async () => {
          env = await startEnv(redis, { userinfo: 'jwt', ...(advertised ? {} : { discovery: { userinfo_signing_alg_values_supported: undefined } }) });
        });
        after(async () => { await env?.close(); });
        afterEach(() => { env.op.forgeUserinfo = false; });

        it('its claims are used (roles from userinfo)', async () => {
          env.op.userinfoClaims = { roles: ['from-userinfo'] };
          const r = await env.login();
          assert.equal(r.status, 302, r.last.body.slice(0, 300));
          assert.deepEqual((await env.store.get(r.sessionCookie!))!.secrets.user.roles, ['from-userinfo']);
        });

        it('one not signed by a key the IdP publishes is a 400 page and no session, never an identity', async () => {
          env.op.userinfoClaims = { roles: ['admin'] };
          env.op.forgeUserinfo = true;
          const r = await env.login();
          assert.equal(r.status, 400, r.last.body.slice(0, 300));
          assert.equal(r.sessionCookie, undefined);
        });
      });
    }
  });

  describe('a discovery document naming another issuer than idps.yaml (not only by a trailing slash)', () => {
    let env: Env;
    before(async () => { env = await startEnv(redis, { discovery: { issuer: '$ISSUER/realms/other' } }); });
    after(async () => { await env?.close(); });

    it('is a 503 and one error line naming the issuer to write, not "cannot be reached"', async () => {
      const res = await httpCall(`${env.url}/auth/login`);
      assert.equal(res.status, 503, res.body.slice(0, 300));
      const lines = logged(env.lines, /"discovered":/);
      assert.equal(lines.length, 1, env.lines.join('\n'));
      assert.match(lines[0]!, /write its issuer \(http:\/\/127\.0\.0\.1:\d+\/realms\/other\) in idps\.yaml/);
    });
  });

  describe('Entra ID\'s multi-tenant issuer template (https://login.microsoftonline.com/{tenantid}/v2.0)', () => {
    let env: Env;
    before(async () => { env = await startEnv(redis, { discovery: { issuer: '$ISSUER/{tenantid}/v2.0' } }); });
    after(async () => { await env?.close(); });

    it('is refused with a 503 and an error line naming the template and the fix, not "cannot be reached"', async () => {
      for (let i = 0; i < 2; i++) {
        const res = await httpCall(`${env.url}/auth/login`);
        assert.equal(res.status, 503, res.body.slice(0, 300));
      }
      const lines = logged(env.lines, /"discovered":/);
      assert.equal(lines.length, 1, env.lines.join('\n'));
      assert.match(lines[0]!, /"level":"error"/);
      assert.match(lines[0]!, /\{tenantid\}/);
      assert.match(lines[0]!, /tenant/);
      assert.doesNotMatch(lines[0]!, /cannot be reached/);
    });
  });
});
