// Bad callbacks end in a clear 400 page (or JSON), never a 500: bogus state, replayed code, IdP
// error responses, a wrong nonce, another issuer's response or ID token, a foreign browser.
import assert from 'node:assert/strict';
import { decodeJwt, type JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { capturingLogger, editingIdpJson, logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { browserLogin, CookieJar, httpCall, type LoginResult } from '../helpers/login.ts';
import { RedisServer, adminClient } from '../helpers/redis.ts';
import { grantsRefresh, revokesPerToken, sleep } from '../helpers/refresh-race.ts';

function isAuthorize(u: URL, issuer: string): boolean {
  return u.href.startsWith(issuer) && u.pathname === new URL(issuer).pathname.replace(/\/$/, '') + '/auth';
}

/** Sends the browser to the IdP `other` while the callback claims to come from `issuer`. */
function toOtherAsIf(issuer: string, other: string): (u: URL) => URL | undefined {
  return (u) => {
    if (isAuthorize(u, issuer)) return new URL(u.href.replace(issuer, other));
    if (u.pathname === '/auth/callback') {
      u.searchParams.set('iss', issuer);
      return u;
    }
    return undefined;
  };
}

function assert400Page(r: LoginResult, text: RegExp): void {
  assert.equal(r.status, 400, `expected 400, got ${r.status}: ${r.last.body.slice(0, 200)}`);
  assert.match(String(r.last.headers['content-type']), /text\/html/);
  assert.equal(r.last.headers['cache-control'], 'no-store');
  assert.match(r.last.body, text);
  assert.equal(r.sessionCookie, undefined, 'no session cookie');
}

/** Dev IdP users whose profiles are at goldpath's bounds (src/oidc/claims.ts), and over them. */
function outsizedProfiles(user: string): Record<string, unknown> | undefined {
  const roles = (n: number) => Array.from({ length: n }, (_, i) => `role-${i}`);
  if (user === 'many-roles') return { roles: roles(1001) };
  if (user === 'many-groups') return { groups: roles(1001) };
  // A list that is neither roles nor groups (the dev IdP releases the profile claims only: a
  // groups claim that is a map, with a list inside, stands for any claim a policy may walk).
  if (user === 'nested-list') return { groups: { orders: roles(1001) } };
  if (user === 'long-name') return { name: 'N'.repeat(65 * 1024) };
  if (user === 'at-the-bounds') return { roles: roles(1000), groups: roles(1000) };
  return undefined;
}

describe('BFF callback failures', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  /** When set, the BFF's fetch sends requests for this token endpoint to another one instead. */
  let divertTokenEndpoint: { from: string; to: string } | undefined;
  const captured = capturingLogger();
  /** The last 'login failed' log line (why the BFF refused). */
  const lastFailure = () => JSON.parse(captured.lines.filter((l) => l.includes('"login failed"')).at(-1) ?? '{}');

  before(async () => {
    redis = await RedisServer.start();
    env = await startIdpBff({
      redis, log: captured.log,
      // par: never, so a browser (the attacker here) can tamper with the authorization request.
      // `other` also accepts dev's redirect URI, as an IdP under an attacker's control would: the
      // tests below reach the defences behind the redirect URI (iss, the token endpoint, the ID
      // token); the redirect URI's own defence is tested further down.
      idps: [{ name: 'dev', config: { par: 'never' }, devIdp: { extraClaims: outsizedProfiles } }, { name: 'other', config: { par: 'never' }, redirectPaths: ['/auth/callback/other', '/auth/callback'] }],
      fetch: (url, init) => {
        const d = divertTokenEndpoint;
        return globalThis.fetch(d && url === d.from ? d.to : url, init as RequestInit);
      },
    });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });
  afterEach(() => { divertTokenEndpoint = undefined; });

  it('a bogus state is a 400 page', async () => {
    const r = await env.login('alice', {
      rewrite: (u) => {
        if (u.pathname !== '/auth/callback') return undefined;
        u.searchParams.set('state', 'bogus-state');
        return u;
      },
    });
    assert400Page(r, /unknown, expired or was already used/);
  });

  it('a state longer than any goldpath makes is a 400 that says so, not "no state"', async () => {
    const res = await httpCall(`${env.url}/auth/callback?code=abc&state=${'s'.repeat(600)}`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400);
    const body = JSON.parse(res.body) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_request');
    assert.match(body.error_description, /unknown/);
    assert.doesNotMatch(body.error_description, /no state/);
  });

  it('a callback without state is a 400; with Accept: application/json it is JSON', async () => {
    const res = await httpCall(`${env.url}/auth/callback?code=abc`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(JSON.parse(res.body).error, 'invalid_request');
  });

  it('a callback without code, or with repeated parameters, is a 400', async () => {
    const noCode = await env.login('alice', {
      rewrite: (u) => {
        if (u.pathname !== '/auth/callback' || !u.searchParams.has('code')) return undefined;
        u.searchParams.delete('code');
        return u;
      },
    });
    assert400Page(noCode, /did not pass validation/);
    const repeated = await httpCall(`${env.url}/auth/callback?state=a&state=b&code=c`, { headers: { accept: 'text/html' } });
    assert.equal(repeated.status, 400);
    const odd = await httpCall(`${env.url}/auth/callback?state=%zz%00&code=%ff`, { headers: { accept: 'text/html' } });
    assert.equal(odd.status, 400);
  });

  it('a replayed callback (code) is a 400 and creates no second session', async () => {
    const ok = await env.login('alice');
    assert.equal(ok.status, 302);
    const replay = await httpCall(ok.callbackUrl!, { jar: ok.jar, headers: { accept: 'text/html' } });
    assert.equal(replay.status, 400);
    assert.match(replay.body, /already used/);
    assert.equal(replay.headers['set-cookie']?.some((c) => c.startsWith('goldpath=')) ?? false, false);
  });

  it('a callback in another browser is a 400 and does not use up the sign-in of the browser that started it', async () => {
    const r = await env.login('alice', {
      stopBefore: (u) => u.pathname === '/auth/callback',
    });
    const cb = r.hops.at(-1)!.location!;
    const res = await httpCall(cb, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    // As a browser whose transaction cookie expired (after 10 minutes) sees it, too.
    assert.match(res.body, /This sign-in has expired, or was started in another browser/);
    // Someone who learnt the state, with a transaction cookie of their own.
    const other = await httpCall(cb, { headers: { accept: 'text/html', cookie: `goldpath_tx=${'A'.repeat(43)}` } });
    assert.equal(other.status, 400);
    assert.match(other.body, /unknown, expired or was already used/);
    const mine = await httpCall(cb, { jar: r.jar, headers: { accept: 'text/html' } });
    assert.equal(mine.status, 302);
    assert.ok(mine.headers['set-cookie']?.some((c) => c.startsWith('goldpath=')));
  });

  it('a callback the IdP\'s site sent the browser to (Sec-Fetch-Site: cross-site) moves on by a page of ours, not a 302', async () => {
    // SameSite=Strict: a browser sends the new session cookie on no request of a navigation another
    // site started, the 302's target included (test/e2e/browser.test.ts shows the sign-in loop).
    const r = await env.login('alice', { returnTo: '/app?x=1&y=\'2\'', stopBefore: (u) => u.pathname === '/auth/callback' });
    const cb = r.hops.at(-1)!.location!;
    const res = await httpCall(cb, { jar: r.jar, headers: { accept: 'text/html', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.equal(res.headers['location'], undefined);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/);
    assert.ok(res.headers['set-cookie']?.some((c) => c.startsWith('goldpath=') && /SameSite=Strict/.test(c)));
    const target = `${env.url}/app?x=1&#38;y=%272%27`; // escaped for HTML, as the URL parser left it
    assert.ok(res.body.includes(`<meta http-equiv="refresh" content="0;url=${target}">`), res.body);
    assert.ok(res.body.includes(`<a href="${target}">`), res.body);
  });

  it('an IdP error response (access_denied) is a 400 page naming the error', async () => {
    const r = await env.login('alice', { consent: 'deny' });
    assert400Page(r, /access_denied/);
    const denied = await env.login('alice', { cancelLogin: true });
    assert400Page(denied, /access_denied/);
  });

  it('an ID token with a nonce other than the transaction\'s is a 400 page', async () => {
    const r = await env.login('alice', {
      rewrite: (u) => {
        if (!isAuthorize(u, env.idps['dev']!.issuer) || !u.searchParams.has('nonce')) return undefined;
        u.searchParams.set('nonce', 'attacker-chosen-nonce');
        return u;
      },
    });
    assert400Page(r, /did not pass validation/);
    assert.equal(lastFailure().err.errCode, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
    assert.match(lastFailure().err.cause, /nonce/);
  });

  it('a response from another IdP than the one the login went to is a 400 (mix-up, RFC 9207)', async () => {
    const dev = env.idps['dev']!;
    const other = env.idps['other']!;
    const r = await env.login('alice', {
      idp: 'dev',
      rewrite: (u) => (isAuthorize(u, dev.issuer) ? new URL(u.href.replace(dev.issuer, other.issuer)) : undefined),
    });
    assert.equal(new URL(r.callbackUrl!).searchParams.get('iss'), other.issuer);
    assert400Page(r, /different identity provider/);
  });

  it('a response without iss from an IdP that advertises it is a 400', async () => {
    const r = await env.login('alice', {
      rewrite: (u) => {
        if (u.pathname !== '/auth/callback' || !u.searchParams.has('iss')) return undefined;
        u.searchParams.delete('iss');
        return u;
      },
    });
    assert400Page(r, /does not name its identity provider/);
  });

  it('another IdP\'s code under a forged iss is a 400 (the token endpoint refuses it)', async () => {
    const dev = env.idps['dev']!;
    const other = env.idps['other']!;
    const r = await env.login('alice', { rewrite: toOtherAsIf(dev.issuer, other.issuer) });
    assert400Page(r, /did not accept the sign-in code \(invalid_grant\)/);
  });

  it('an ID token from another issuer is a 400 page', async () => {
    const dev = env.idps['dev']!;
    const other = env.idps['other']!;
    // The browser is sent to "other", and dev's token endpoint is (as if hijacked) answered by
    // other: the tokens are genuine but the ID token's iss is not the IdP the login was for.
    divertTokenEndpoint = { from: `${dev.issuer}/token`, to: `${other.issuer}/token` };
    const r = await env.login('alice', { rewrite: toOtherAsIf(dev.issuer, other.issuer) });
    assert400Page(r, /did not pass validation/);
    assert.equal(lastFailure().reason, 'validation');
    assert.equal(lastFailure().err.errCode, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
    assert.match(lastFailure().err.cause, /"iss"/);
  });

  it('a login through ?idp=other works and is recorded with that IdP', async () => {
    const r = await env.login('erin', { idp: 'other' });
    assert.equal(r.status, 302);
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.equal(s.idp, 'other');
  });

  it('a profile too large to keep (a list of over 1,000 in roles, groups or any claim; over 64 KiB) is a 400 page that says so, and no session', async () => {
    for (const user of ['many-roles', 'many-groups', 'nested-list', 'long-name']) {
      const r = await env.login(user);
      assert400Page(r, /too large to sign in here/);
      const why = lastFailure();
      assert.equal(why.reason, 'claims_too_large', user);
      assert.ok(why.bytes > 0 && why.roles >= 1 && why.longest_claim_list >= 1, JSON.stringify(why));
      assert.doesNotMatch(JSON.stringify(why), /NNNN|role-1/, 'sizes only, no claim values in the log');
    }
    // At the bounds: signs in, and the session keeps every role.
    const ok = await env.login('at-the-bounds');
    assert.equal(ok.status, 302);
    const info = await httpCall(`${env.url}/auth/session`, { jar: ok.jar });
    assert.equal((JSON.parse(info.body) as { user: { roles: string[] } }).user.roles.length, 1000);
  });

  it('an unreachable IdP at the callback is a 503 page, not a 500', async () => {
    const dev = env.idps['dev']!;
    divertTokenEndpoint = { from: `${dev.issuer}/token`, to: 'http://127.0.0.1:1/token' };
    const r = await env.login('alice');
    assert.equal(r.status, 503);
    assert.match(r.last.body, /unavailable/);
  });
});

describe('BFF mix-up defence without RFC 9207 (a redirect URI per IdP)', function () {
  // Two IdPs, neither naming itself in its responses (no `iss`: the attacker's by choice, the
  // honest one like many IdPs). The victim picks the attacker's IdP, which sends the victim on to
  // the honest IdP with the attacker's own pending login request there (its PKCE challenge and
  // nonce) and the victim's state. Were the honest IdP's code redeemed for the victim's login, it
  // would go to the attacker's token endpoint, and the attacker would inject it into their login.
  this.timeout(30_000);
  let env: IdpBff;
  const atEvilTokenEndpoint: string[] = [];
  let evil = '';
  const withoutIss = editingIdpJson('/.well-known/openid-configuration', (meta) => delete meta['authorization_response_iss_parameter_supported']);
  before(async () => {
    env = await startIdpBff({
      idps: [{ name: 'honest', config: { par: 'never' } }, { name: 'evil', config: { par: 'never' } }],
      fetch: (url, init) => {
        if (evil && url === `${evil}/token`) atEvilTokenEndpoint.push(String(init.body));
        return withoutIss(url, init);
      },
    });
    evil = env.idps['evil']!.issuer;
  });
  after(() => env?.close());

  it('each IdP is sent its own redirect URI: the default /auth/callback, the others /auth/callback/<name>', async () => {
    for (const [idp, path] of [['honest', '/auth/callback'], ['evil', '/auth/callback/evil']] as const) {
      const res = await httpCall(`${env.url}/auth/login?idp=${idp}`);
      assert.equal(new URL(res.headers.location!).searchParams.get('redirect_uri'), `${env.url}${path}`);
      const r = await env.login('uma', { idp });
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      assert.equal(new URL(r.callbackUrl!).pathname, path);
    }
  });

  it('a response that comes back to another IdP\'s address than its login\'s is refused before any code is redeemed', async () => {
    atEvilTokenEndpoint.length = 0;
    const attacker = new CookieJar();
    const start = await httpCall(`${env.url}/auth/login?idp=honest`, { jar: attacker });
    const attackerRequest = new URL(start.headers.location!);
    const victim = await browserLogin({
      start: `${env.url}/auth/login?idp=evil`, user: 'victim', cookieName: 'goldpath',
      rewrite: (u) => {
        if (!u.href.startsWith(`${evil}/auth?`)) return undefined;
        const to = new URL(attackerRequest);
        to.searchParams.set('state', u.searchParams.get('state')!);
        return to;
      },
    });
    assert.equal(new URL(victim.callbackUrl!).pathname, '/auth/callback', 'the honest IdP answered at its own address');
    assert.equal(victim.status, 400);
    assert.match(victim.last.body, /address of another identity provider/);
    assert.equal(victim.sessionCookie, undefined);
    assert.deepEqual(atEvilTokenEndpoint, [], 'no code went to the attacker\'s token endpoint');
  });
});


describe('BFF callback failures after the code was redeemed (an IdP that revokes per token)', function () {
  // The IdP has issued a refresh token, and the sign-in fails before a session holds it: no cookie
  // was handed out, so nobody holds that token. At an IdP that keeps a grant alive per refresh
  // token (oidc-provider set up so below), the grant lived on until it expired, unless revoked.
  this.timeout(60_000);
  let env: IdpBff;
  let signingKey: JWK;
  const logs = capturingLogger('debug');
  /** The answers of the IdP's token endpoint to the BFF's code exchanges, in order. */
  let exchanged: Array<{ refresh: string; idToken: string }> = [];
  /** Edits the JSON of the IdP's code exchange answers (none when undefined). */
  let editTokens: ((body: Record<string, unknown>) => void) | undefined;
  /**
   * Awaited before the BFF's userinfo request goes out; may return the headers to send instead, or
   * the answer to give in the IdP's place.
   */
  let atUserinfo: (() => Promise<Record<string, string> | Response | void>) | undefined;
  /** Awaited before the BFF sends a revocation request to the IdP. */
  let revoking: (() => Promise<void>) | undefined;
  /** The refresh tokens of the BFF's revocation requests (a test's own: see revocations()). */
  let revokedTokens: string[] = [];
  /**
   * Revocations of this test's sign-ins' refresh tokens: a background revocation of an earlier
   * test may land after this one began, and is none of its business.
   */
  const revocations = () => revokedTokens.filter((t) => exchanged.some((e) => e.refresh === t)).length;

  before(async () => {
    signingKey = await generateSigningKey();
    const fetch: FetchLike = async (url, init) => {
      const path = new URL(url).pathname;
      if (path === '/token/revocation') {
        revokedTokens.push(new URLSearchParams(String(init.body ?? '')).get('token') ?? '');
        await revoking?.();
      }
      if (path === '/me') {
        const headers = await atUserinfo?.();
        if (headers instanceof Response) return headers;
        if (headers) init = { ...init, headers };
      }
      const res = await globalThis.fetch(url, init as RequestInit);
      if (path !== '/token' || !String(init.body ?? '').includes('grant_type=authorization_code') || res.status !== 200) return res;
      const body = await res.json() as Record<string, unknown>;
      exchanged.push({ refresh: String(body['refresh_token']), idToken: String(body['id_token']) });
      editTokens?.(body);
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    env = await startIdpBff({
      log: logs.log, fetch,
      idps: [{
        devIdp: {
          keys: [signingKey],
          extraClaims: (user) => (user === 'many-roles' ? { roles: Array.from({ length: 1001 }, (_, i) => `role-${i}`) } : undefined),
          configure: revokesPerToken,
        },
      }],
    });
  });
  after(() => env?.close());
  beforeEach(() => {
    exchanged = [];
    editTokens = undefined;
    atUserinfo = undefined;
    revoking = undefined;
    revokedTokens = [];
  });

  const grants = (rt: string) => grantsRefresh(env.idp.issuer, rt);

  /**
   * The refresh token of the one code exchange made is revoked (in the background: within a few
   * seconds) and no longer granted, and no log line carries it.
   */
  async function revoked(): Promise<void> {
    assert.equal(exchanged.length, 1, 'one code exchange');
    const rt = exchanged[0]!.refresh;
    assert.ok(rt && rt !== 'undefined', 'the IdP issued a refresh token');
    for (let i = 0; i < 50 && await env.idp.provider.RefreshToken.find(rt); i++) await sleep(100);
    assert.equal(await grants(rt), false, 'the refresh token of a failed sign-in is still granted at the IdP: a live grant nobody holds');
    assert.equal(revocations(), 1);
    for (const line of logs.lines) assert.ok(!line.includes(rt), 'a refresh token reached the log');
    assert.ok(logs.lines.some((l) => l.includes('the refresh token it was issued is revoked')));
  }

  /** A sign-in stopped before its callback: the callback URL, and the browser's jar. */
  async function atCallback(user: string, jar?: CookieJar): Promise<{ url: string; jar: CookieJar }> {
    const r = await env.login(user, { jar, stopBefore: (u) => u.pathname === '/auth/callback' });
    const url = r.hops.at(-1)!.location!;
    assert.ok(url.startsWith(`${env.url}/auth/callback?`), url);
    return { url, jar: r.jar };
  }

  it('a userinfo request the IdP refuses: no session, the refresh token is revoked, and the error page does not wait for the revocation', async () => {
    // The IdP refuses the access token it is sent (as after an IdP-side revocation).
    atUserinfo = async () => ({ authorization: 'Bearer not-a-token-of-this-idp', accept: 'application/json' });
    revoking = () => sleep(2_000);
    const { url, jar } = await atCallback('ulla');
    const t0 = performance.now();
    const res = await httpCall(url, { jar, headers: { accept: 'text/html' } });
    const took = performance.now() - t0;
    assert.equal(res.status, 400, res.body.slice(0, 200)); // the IdP's answer (a 401 invalid_token), not an outage to wait out
    assert.match(res.body, /refused the sign-in/);
    assert.equal(jar.get('goldpath'), undefined, 'no session cookie');
    assert.ok(took < 1_500, `the error page took ${Math.round(took)} ms: it waited for the revocation`);
    await revoked();
  });

  it('a userinfo 401 (invalid_token) is answered as an IdP\'s refusal (400 login_failed), while a userinfo outage (a 5xx, a network failure) stays a 503', async () => {
    atUserinfo = async () => ({ authorization: 'Bearer not-a-token-of-this-idp', accept: 'application/json' });
    const refused = await atCallback('uwe');
    const res = await httpCall(refused.url, { jar: refused.jar, headers: { accept: 'application/json' } });
    assert.equal(res.status, 400, res.body);
    assert.equal(JSON.parse(res.body).error, 'login_failed');
    const line = logs.lines.filter((l) => l.includes('"login failed"')).at(-1) ?? '';
    assert.match(line, /"outcome":"idp_error"/);
    assert.match(line, /"error":"invalid_token"/, 'the log names what the IdP said');
    const outages: Array<() => Promise<Response>> = [
      async () => new Response('<html>bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }),
      async () => new Response(null, { status: 503, headers: { 'www-authenticate': 'Bearer error="temporarily_unavailable"' } }),
      async () => { throw new TypeError('fetch failed'); },
    ];
    for (const outage of outages) {
      atUserinfo = outage;
      const { url, jar } = await atCallback('uwe');
      const r = await httpCall(url, { jar, headers: { accept: 'application/json' } });
      assert.equal(r.status, 503, r.body);
      assert.equal(JSON.parse(r.body).error, 'unavailable');
    }
  });

  it('a userinfo 401 or 403 without WWW-Authenticate (as many IdPs answer) is a refusal too (400 login_failed), not an outage: no session, the refresh token revoked', async () => {
    const bare: Array<() => Promise<Response>> = [
      async () => Response.json({ error: 'invalid_token' }, { status: 401 }),
      async () => new Response(null, { status: 401 }),
      async () => Response.json({ error: 'insufficient_scope' }, { status: 403 }),
    ];
    for (const answer of bare) {
      exchanged = [];
      revokedTokens = [];
      atUserinfo = answer;
      const { url, jar } = await atCallback('ute');
      const res = await httpCall(url, { jar, headers: { accept: 'application/json' } });
      assert.equal(res.status, 400, res.body);
      assert.equal(JSON.parse(res.body).error, 'login_failed');
      assert.equal(jar.get('goldpath'), undefined, 'no session cookie');
      const line = logs.lines.filter((l) => l.includes('"login failed"')).at(-1) ?? '';
      assert.match(line, /"reason":"userinfo_refused"/);
      // The status is what tells an operator a firewall's 403 from the IdP's own refusal.
      assert.match(line, /"status":40[13]\b/, 'the log names the HTTP status');
      await revoked();
    }
  });

  it('a back-channel logout of the IdP session (sid) while the sign-in completes: SessionEnded, and the refresh token is revoked', async () => {
    // The logout arrives after the code exchange, before the session is stored.
    atUserinfo = async () => {
      const sid = decodeJwt(exchanged[0]!.idToken)['sid'];
      assert.equal(typeof sid, 'string');
      const out = await httpCall(`${env.url}/auth/backchannel-logout`, {
        method: 'POST', body: new URLSearchParams({ logout_token: await logoutToken(env.idp.issuer, signingKey, { sid }) }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(out.status, 200, out.body);
    };
    const r = await env.login('sid-ended');
    assert.equal(r.status, 400, r.last.body.slice(0, 300));
    assert.match(r.last.body, /ended this sign-in \(a logout\)/);
    assert.equal(r.sessionCookie, undefined);
    await revoked();
  });

  it('the store fails before the session is created (the browser\'s previous session cannot be read): a 503, and nothing is revoked (that session may share the grant)', async () => {
    const first = await env.login('stella');
    assert.equal(first.status, 302);
    const previous = first.sessionCookie;
    exchanged = [];
    const admin = adminClient(env.redis.url);
    try {
      const { url, jar } = await atCallback('stella', first.jar);
      // Redis stalls after the code exchange: reading the session this sign-in replaces fails,
      // and no session is created (create() is never called).
      atUserinfo = async () => { await admin.call('CLIENT', 'PAUSE', '1500', 'ALL'); };
      const res = await httpCall(url, { jar, headers: { accept: 'text/html' } });
      assert.equal(res.status, 503, res.body.slice(0, 200));
      assert.equal(jar.get('goldpath')?.value, previous, 'no new session cookie');
      await admin.ping(); // answered once the pause is over
      // At an IdP that revokes per grant, the new sign-in's refresh token would end the grant the
      // browser's session holds (the same IdP session): it is left alone, as before.
      await sleep(300);
      assert.equal(revocations(), 0);
      assert.equal((await env.store.get(previous!))?.sub, 'stella', 'the previous session lives on');
    } finally {
      admin.disconnect();
    }
  });

  it('a profile too large to keep: the refresh token is revoked', async () => {
    const r = await env.login('many-roles');
    assert.equal(r.status, 400);
    assert.match(r.last.body, /too large to sign in here/);
    await revoked();
  });

  it('an access token no header can carry (refused at the callback): the refresh token is revoked', async () => {
    editTokens = (body) => { body['access_token'] = 't\u00f6ken'; };
    const r = await env.login('umlaut');
    assert.equal(r.status, 400);
    assert.match(r.last.body, /did not pass validation/);
    await revoked();
  });

  it('an ID token whose signature does not verify (checked once the code is redeemed): a 400, and the refresh token is revoked', async () => {
    editTokens = (body) => {
      const [header, payload, signature] = String(body['id_token']).split('.');
      body['id_token'] = `${header}.${payload}.${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;
    };
    const r = await env.login('forged');
    assert.equal(r.status, 400);
    assert.match(r.last.body, /did not pass validation/);
    await revoked();
  });

  it('a failed sign-in of a browser that has a session revokes nothing: that session may hold the same grant', async () => {
    const first = await env.login('tina');
    assert.equal(first.status, 302);
    exchanged = [];
    editTokens = (body) => { body['access_token'] = 't\u00f6ken'; };
    const r = await env.login('tina', { jar: first.jar });
    assert.equal(r.status, 400);
    await sleep(300);
    assert.equal(revocations(), 0);
    assert.equal((await env.store.get(first.sessionCookie!))?.sub, 'tina', 'signed in as before');
  });

  it('a sign-in that succeeds revokes nothing: the session holds its refresh token', async () => {
    const r = await env.login('sue');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.equal(exchanged.length, 1);
    assert.equal(s.secrets.refreshToken, exchanged[0]!.refresh);
    await sleep(300);
    assert.equal(revocations(), 0);
    assert.ok(await env.idp.provider.RefreshToken.find(exchanged[0]!.refresh), 'the session\'s refresh token is live at the IdP');
  });
});

describe('BFF callback failure of a sign-in begun before another tab\'s (an IdP that revokes per grant)', function () {
  // oidc-provider as it comes: a second sign-in at the same IdP session reuses the grant, and
  // revoking a refresh token revokes its whole grant (as Keycloak ends the client session).
  this.timeout(60_000);
  let env: IdpBff;
  let exchanges = 0;
  let revocations = 0;
  /** Edits the JSON of the IdP's code exchange answer number `n` (1-based), when set. */
  let editExchange: { n: number; edit: (body: Record<string, unknown>) => void } | undefined;

  before(async () => {
    const fetch: FetchLike = async (url, init) => {
      const path = new URL(url).pathname;
      if (path === '/token/revocation') revocations++;
      const res = await globalThis.fetch(url, init as RequestInit);
      if (path !== '/token' || !String(init.body ?? '').includes('grant_type=authorization_code') || res.status !== 200) return res;
      exchanges++;
      const body = await res.json() as Record<string, unknown>;
      if (editExchange?.n === exchanges) editExchange.edit(body);
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    env = await startIdpBff({ fetch });
  });
  after(() => env?.close());

  const grants = (rt: string) => grantsRefresh(env.idp.issuer, rt);

  it('tab 1 signs in at the IdP, tab 2 signs in, tab 1\'s callback fails: nothing is revoked, tab 2\'s session keeps its grant', async () => {
    exchanges = 0;
    revocations = 0;
    // Tab 1: the browser has no session yet; the sign-in is done at the IdP, its callback not yet.
    const tab1 = await env.login('tabitha', { stopBefore: (u) => u.pathname === '/auth/callback' });
    const callback1 = tab1.hops.at(-1)!.location!;
    assert.ok(callback1.startsWith(`${env.url}/auth/callback?`), callback1);
    // Tab 2, same browser (same jar: its IdP session, its login-transaction cookie): signed in.
    const tab2 = await env.login('tabitha', { jar: tab1.jar });
    assert.equal(tab2.status, 302, tab2.last.body.slice(0, 300));
    const session2 = (await env.store.get(tab2.sessionCookie!))!;
    assert.equal(exchanges, 1);
    // Tab 1's callback arrives now, from the IdP's site: the SameSite=Strict session cookie is
    // withheld (the helper's jar does not model SameSite, so it is left out here). It fails after
    // its code was redeemed (an access token no header can carry).
    editExchange = { n: 2, edit: (body) => { body['access_token'] = 't\u00f6ken'; } };
    tab1.jar.delete('goldpath');
    const res = await httpCall(callback1, { jar: tab1.jar, headers: { accept: 'text/html' } });
    editExchange = undefined;
    assert.equal(res.status, 400, res.body.slice(0, 300));
    assert.equal(exchanges, 2);
    await sleep(1_000); // a background revocation, if any, has been made
    assert.equal(revocations, 0, 'the failed sign-in revoked its refresh token, and the grant the browser\'s session holds with it');
    assert.equal(await grants(session2.secrets.refreshToken!), true, 'tab 2\'s session lost its grant to tab 1\'s failed sign-in');
    assert.equal((await env.store.get(tab2.sessionCookie!))?.sub, 'tabitha');
  });

  it('a shared browser: another user\'s failed sign-in revokes its refresh token (the session the browser keeps is not of its grant)', async () => {
    exchanges = 0;
    revocations = 0;
    const anna = await env.login('anna');
    assert.equal(anna.status, 302, anna.last.body.slice(0, 300));
    // Bert at the same computer: anna's session lives on, her IdP session does not (she left the
    // IdP); the browser cookie is the same. His sign-in is another grant than anna's.
    const jar = new CookieJar();
    jar.store(env.url, anna.jar.get('goldpath_browser')!.raw);
    const bert = await env.login('bert', { jar, stopBefore: (u) => u.pathname === '/auth/callback' });
    const callback = bert.hops.at(-1)!.location!;
    assert.ok(callback.startsWith(`${env.url}/auth/callback?`), callback);
    editExchange = { n: 2, edit: (body) => { body['access_token'] = 't\u00f6ken'; } };
    const res = await httpCall(callback, { jar: bert.jar, headers: { accept: 'text/html' } });
    editExchange = undefined;
    assert.equal(res.status, 400, res.body.slice(0, 300));
    for (let i = 0; i < 30 && revocations === 0; i++) await sleep(100);
    assert.equal(revocations, 1, 'bert\'s refresh token is held by nobody, and anna\'s session does not hold its grant: revoked');
    assert.ok(await env.store.get(anna.sessionCookie!), 'anna\'s session stays');
  });

  it('a failed sign-in of a browser whose last session is gone (logged out) still revokes its refresh token', async () => {
    exchanges = 0;
    revocations = 0;
    const tab1 = await env.login('tobias', { stopBefore: (u) => u.pathname === '/auth/callback' });
    const callback1 = tab1.hops.at(-1)!.location!;
    const tab2 = await env.login('tobias', { jar: tab1.jar });
    assert.equal(tab2.status, 302);
    const session2 = (await env.store.get(tab2.sessionCookie!))!;
    assert.ok(await env.store.delete(session2.id));
    editExchange = { n: 2, edit: (body) => { body['access_token'] = 't\u00f6ken'; } };
    tab1.jar.delete('goldpath');
    const res = await httpCall(callback1, { jar: tab1.jar, headers: { accept: 'text/html' } });
    editExchange = undefined;
    assert.equal(res.status, 400, res.body.slice(0, 300));
    for (let i = 0; i < 30 && revocations === 0; i++) await sleep(100);
    assert.equal(revocations, 1, 'no session holds the grant: the refresh token is revoked');
  });
});
