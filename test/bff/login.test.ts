// Login through the BFF against a real oidc-provider and a real redis-server, driven like a browser.
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { capturingLogger, editingIdpJson, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall, CookieJar } from '../helpers/login.ts';
import { silentLogger } from '../../src/log.ts';
import { Pdp } from '../../src/pdp/index.ts';
import { fixture, rule } from '../pdp/helpers.ts';

describe('BFF login (real dev IdP + redis)', function () {
  this.timeout(20_000);
  let env: IdpBff;

  before(async () => {
    env = await startIdpBff();
  });
  after(() => env?.close());

  it('logs in like a browser and sets the session cookie per SPEC section 4', async () => {
    const r = await env.login('admin', { returnTo: '/orders?tab=1#top' });
    assert.equal(r.status, 302, `callback answered ${r.status}: ${r.last.body.slice(0, 300)}`);
    assert.equal(r.location, `${env.url}/orders?tab=1#top`);
    const c = r.jar.get('goldpath')!;
    assert.ok(c, 'session cookie set');
    assert.ok(c.value.length >= 43, 'at least 256 bits');
    const attrs = c.raw.split(';').map((a) => a.trim().toLowerCase());
    assert.ok(attrs.includes('httponly'));
    assert.ok(attrs.includes('samesite=strict'));
    assert.ok(attrs.includes('path=/'));
    assert.ok(!attrs.includes('secure'), 'plain-http localhost: no Secure');
    assert.ok(!attrs.some((a) => a.startsWith('domain')), 'no Domain');
    const maxAge = Number(attrs.find((a) => a.startsWith('max-age='))!.split('=')[1]);
    assert.ok(maxAge > 0 && maxAge <= env.settings.sessionMaxMs / 1000, 'Max-Age within the absolute expiry');
    // The login-transaction cookie is Lax (it must survive the IdP's cross-site redirect).
    const tx = r.jar.get('goldpath_tx')!;
    assert.match(tx.raw, /SameSite=Lax/);
    assert.match(tx.raw, /HttpOnly/);
  });

  it('/auth/session reports the user, the CSRF token and both expiries (epoch seconds)', async () => {
    const r = await env.login('admin');
    const res = await httpCall(`${env.url}/auth/session`, { jar: r.jar });
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = JSON.parse(res.body);
    assert.equal(body.authenticated, true);
    assert.deepEqual(body.user, { sub: 'admin', name: 'Admin', email: 'admin@example.test', roles: ['admin', 'reader'], idp: 'dev' });
    assert.match(body.csrf_token, /^[A-Za-z0-9_-]{43}$/);
    const now = Date.now() / 1000;
    assert.ok(Number.isInteger(body.expires_at) && body.expires_at > now + 11 * 3600 && body.expires_at <= now + 12 * 3600 + 1);
    assert.ok(Number.isInteger(body.idle_expires_at) && body.idle_expires_at > now + 25 * 60 && body.idle_expires_at <= now + 30 * 60 + 1);

    const alice = await env.login('alice');
    const a = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: alice.jar })).body);
    assert.deepEqual(a.user.roles, ['reader']);
  });

  it('/auth/session without a valid cookie is 401 with a login URL', async () => {
    for (const cookie of [undefined, 'goldpath=forged-value', 'goldpath=' + 'A'.repeat(80)]) {
      const res = await httpCall(`${env.url}/auth/session`, { headers: cookie ? { cookie } : {} });
      assert.equal(res.status, 401);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.deepEqual(JSON.parse(res.body), { authenticated: false, login_url: `${env.url}/auth/login` });
    }
  });

  it('/auth/session with the session cookie sent twice is 401 whatever the order, as the sidecar reads it (ambiguous)', async () => {
    const r = await env.login('admin');
    const valid = r.sessionCookie!;
    // The right shape, a MAC that does not verify.
    const forged = `${valid.slice(0, 44)}${'A'.repeat(21)}Q`;
    assert.equal((await httpCall(`${env.url}/auth/session`, { headers: { cookie: `goldpath=${valid}` } })).status, 200);
    assert.equal((await httpCall(`${env.url}/auth/session`, { headers: { cookie: `goldpath=${forged}` } })).status, 401);
    for (const cookie of [`goldpath=${valid}; goldpath=${forged}`, `goldpath=${forged}; goldpath=${valid}`,
      `goldpath=${valid}; goldpath=${valid}`, `goldpath=; goldpath=${valid}`, `goldpath; goldpath=${valid}`]) {
      const res = await httpCall(`${env.url}/auth/session`, { headers: { cookie } });
      assert.equal(res.status, 401, cookie.replaceAll(valid, 'VALID').replaceAll(forged, 'FORGED'));
      assert.equal(res.headers['set-cookie'], undefined, 'no cookie is cleared: the other one may be the user\'s own');
    }
    // Another cookie of ours beside it is no duplicate.
    assert.equal((await httpCall(`${env.url}/auth/session`, { headers: { cookie: `goldpath_tx=${'A'.repeat(43)}; goldpath=${valid}; __Host-goldpath=${forged}` } })).status, 200);
  });

  it('creates a new session id at every login and deletes the previous session', async () => {
    const first = await env.login('bob');
    const s1 = await env.store.get(first.sessionCookie!);
    assert.ok(s1);
    const second = await env.login('bob', { jar: first.jar });
    assert.notEqual(second.sessionCookie, first.sessionCookie);
    const s2 = await env.store.get(second.sessionCookie!);
    assert.ok(s2);
    assert.notEqual(s2.id, s1.id);
    assert.equal(await env.store.getById(s1.id), null, 'the old session is gone');
    assert.equal(await env.store.get(first.sessionCookie!), null);
  });

  it('two tabs whose sign-ins overlapped both keep their sessions: the browser holds whichever cookie came last', async () => {
    // Both tabs start signing in before either finishes, so neither transaction knows a previous
    // session, and the SameSite=Strict session cookie set by the first callback does not come
    // back on the IdP's cross-site redirect to the second (this client would send it: drop it).
    const jar = new CookieJar();
    const toCallback = async () => {
      const r = await env.login('tabby', { jar, stopBefore: (u) => u.pathname.startsWith('/auth/callback') });
      const callback = r.hops.at(-1)?.location;
      assert.ok(callback?.startsWith(`${env.url}/auth/callback?`), `stopped at ${callback}`);
      return callback!;
    };
    const [first, second] = [await toCallback(), await toCallback()];
    const a = await httpCall(first, { jar });
    assert.equal(a.status, 302);
    const cookieA = jar.get('goldpath')!.value;
    const sessionA = (await env.store.get(cookieA))!;
    assert.ok(sessionA);
    jar.delete('goldpath');
    const b = await httpCall(second, { jar });
    assert.equal(b.status, 302);
    const cookieB = jar.get('goldpath')!.value;
    assert.notEqual(cookieB, cookieA);
    assert.ok(await env.store.get(cookieB), 'the second tab\'s session is the browser\'s');
    // The two answers may reach the browser in either order (two connections): had the second
    // sign-in deleted the first one's session, a browser that got the answers crossed, and so kept
    // cookie A, would be signed out. The session no cookie holds idles out (or ends with the IdP
    // session, by back-channel logout).
    assert.ok(await env.store.get(cookieA), 'the first tab\'s session stays');
    // Another browser's sign-in leaves this one's session alone.
    await env.login('tabby');
    assert.ok(await env.store.get(cookieB));
  });

  it('a sign-in with a login-transaction cookie planted in another browser never deletes that browser\'s user\'s session', async () => {
    // Plain http on localhost: goldpath_tx has no __Host- prefix and cookies ignore the port, so
    // any page on localhost (another dev server, the SPA's dev origin) can set it before the
    // BFF does; the BFF then reuses that value (txCookieValue). Whoever planted it knows it.
    // The browser cookie (goldpath_browser, the key of the browser's sign-ins) likewise.
    const planted = 'P'.repeat(43);
    const plant = (jar: CookieJar) => ['goldpath_tx', 'goldpath_browser'].forEach((n) => jar.store(env.url, `${n}=${planted}; Path=/`));
    const victim = new CookieJar();
    plant(victim);
    const v = await env.login('violet', { jar: victim });
    assert.equal(v.status, 302);
    assert.equal(victim.get('goldpath_tx')!.value, planted, 'the BFF kept the planted value');
    assert.equal(victim.get('goldpath_browser')!.value, planted, 'the BFF kept the planted value');
    const session = (await env.store.get(v.sessionCookie!))!;
    assert.ok(session);
    const attacker = new CookieJar();
    plant(attacker);
    const m = await env.login('mallory', { jar: attacker });
    assert.equal(m.status, 302);
    assert.ok(await env.store.getById(session.id), 'another user\'s sign-in deleted violet\'s session');
  });

  it('stores identity, claims, tokens and sid in the session', async () => {
    const r = await env.login('carol');
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.equal(s.sub, 'carol');
    assert.equal(s.idp, 'dev');
    assert.ok(s.sid, 'the IdP session id is indexed for back-channel logout');
    assert.equal(s.secrets.user.email, 'carol@example.test');
    assert.deepEqual(s.secrets.user.groups, ['users']);
    assert.equal(s.secrets.user.claims['preferred_username'], 'carol', 'userinfo claims are merged');
    assert.equal(s.secrets.user.claims['nonce'], undefined);
    assert.ok(s.secrets.tokens['']?.value);
    assert.equal(s.secrets.tokens['']?.type, 'Bearer');
    assert.ok(s.secrets.refreshToken);
    assert.ok(s.secrets.idToken);
  });

  describe('return_to', () => {
    const cases: Array<[string, string]> = [
      ['/app/page?x=1', '/app/page?x=1'],
      ['//evil.com', '/'],
      ['/\\evil.com', '/'],
      ['https://evil.com', '/'],
      ['javascript:alert(1)', '/'],
      ['/%2F%2Fevil.com', '/'],
      ['/%5Cevil.com', '/'],
      ['/\t/evil.com', '/'],
      ['evil.com', '/'],
      ['', '/'],
      ['/auth/logout', '/'],
      ['/auth/login?return_to=/auth/login', '/'],
    ];
    for (const [given, expected] of cases) {
      it(`${JSON.stringify(given)} lands on ${expected}`, async () => {
        const r = await env.login('dave', { returnTo: given });
        assert.equal(r.status, 302);
        assert.equal(r.location, `${env.url}${expected}`);
      });
    }
  });

  it('only the exact path starts a sign-in: /auth/login/, /auth/Login and /AUTH/LOGIN are 404 (they miss the edge\'s per-client limit)', async () => {
    for (const path of ['/auth/login/', '/auth/Login', '/AUTH/LOGIN', '/auth/session/']) {
      const res = await httpCall(`${env.url}${path}`, { jar: new CookieJar(), headers: { accept: 'application/json' } });
      assert.equal(res.status, 404, path);
    }
    assert.equal((await httpCall(`${env.url}/auth/login`, { jar: new CookieJar() })).status, 302);
  });

  it('an unknown ?idp= is a 400', async () => {
    const res = await httpCall(`${env.url}/auth/login?idp=nope`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).error, 'invalid_request');
  });

  it('/auth/login redirects with PKCE S256, state and nonce, and never caches', async () => {
    const res = await httpCall(`${env.url}/auth/login`, { jar: new CookieJar() });
    assert.equal(res.status, 302);
    assert.equal(res.headers['cache-control'], 'no-store');
    const u = new URL(String(res.headers.location));
    // The dev IdP advertises PAR, so par: auto pushes the request and only request_uri travels.
    assert.ok(u.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'));
    assert.equal(u.searchParams.get('code_challenge'), null, 'nothing but client_id and request_uri in the URL');
  });
});

describe('BFF /auth/login when the store fails as the transaction is saved', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let admin: Redis;
  /** Run as the BFF pushes the authorization request (PAR): after the sign-in limit's count, before the save. */
  let atPar: (() => Promise<void>) | undefined;
  before(async () => {
    env = await startIdpBff({
      fetch: async (url, init) => {
        const res = await globalThis.fetch(url, init as RequestInit);
        if (new URL(url).pathname.endsWith('/request')) await atPar?.();
        return res;
      },
    });
    admin = new Redis(env.redis.url);
  });
  after(async () => {
    admin?.disconnect();
    await env?.close();
  });

  it('a 503 sets no cookie: the transaction and browser cookies are set only once the transaction is saved', async () => {
    atPar = async () => { await admin.call('CLIENT', 'PAUSE', '1500', 'ALL'); };
    const res = await httpCall(`${env.url}/auth/login`, { headers: { accept: 'application/json' } });
    atPar = undefined;
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers['set-cookie'], undefined, String(res.headers['set-cookie']));
    await admin.ping(); // answered once the pause is over
    const ok = await httpCall(`${env.url}/auth/login`, { jar: new CookieJar() });
    assert.equal(ok.status, 302, ok.body);
    assert.deepEqual(ok.headers['set-cookie']?.map((c) => c.split('=')[0]), ['goldpath_tx', 'goldpath_browser']);
  });
});

describe('BFF /auth/session in the last idle window of a session', function () {
  this.timeout(30_000);
  let env: IdpBff;
  before(async () => {
    // Idle timeout equal to the absolute one (GOLDPATH_SESSION_IDLE = GOLDPATH_SESSION_MAX is
    // accepted): every request after the sign-in lands in the last idle window, as one 11.5 hours
    // into a 12-hour session with 30 minutes of idle does. 20 s, so a slow sign-in on a loaded
    // machine does not outlive the session; the store touches every 2 s (a tenth of idle).
    env = await startIdpBff({ settings: { sessionIdleMs: 20_000, sessionMaxMs: 20_000 } });
  });
  after(() => env?.close());

  it('idle_expires_at is never later than expires_at: the session ends at whichever comes first', async () => {
    const r = await env.login('uma');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    // Past the store's touch interval, so this read slides the idle expiry.
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    const res = await httpCall(`${env.url}/auth/session`, { jar: r.jar });
    assert.equal(res.status, 200, res.body);
    const body = JSON.parse(res.body) as { expires_at: number; idle_expires_at: number };
    assert.ok(body.idle_expires_at <= body.expires_at,
      `idle_expires_at ${body.idle_expires_at} is after expires_at ${body.expires_at}: the session cannot live that long`);
  });
});

describe('BFF /auth/session?slide=false (an SPA polling whether it is still signed in)', function () {
  this.timeout(30_000);
  let env: IdpBff;
  before(async () => {
    // 20 s of idle: the store touches (slides) at most every 2 s, a tenth of it.
    env = await startIdpBff({ settings: { sessionIdleMs: 20_000 } });
  });
  after(() => env?.close());

  it('reads the session without sliding its idle expiry; a plain read still slides it; any other value is a 400', async () => {
    const r = await env.login('paula');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const idleOf = async (query: string) => {
      const res = await httpCall(`${env.url}/auth/session${query}`, { jar: r.jar });
      assert.equal(res.status, 200, res.body);
      return (JSON.parse(res.body) as { idle_expires_at: number }).idle_expires_at;
    };
    const first = await idleOf('?slide=false');
    await new Promise((resolve) => setTimeout(resolve, 2_200)); // past the touch interval
    assert.equal(await idleOf('?slide=false'), first, 'slide=false left the idle expiry where it was');
    const slid = await idleOf('');
    assert.ok(slid >= first + 2, `a plain read slides it (${slid} after ${first})`);
    assert.equal(await idleOf('?slide=true'), slid);
    for (const q of ['?slide=no', '?slide=false&slide=false', '?slide=']) {
      const bad = await httpCall(`${env.url}/auth/session${q}`, { jar: r.jar });
      assert.equal(bad.status, 400, q);
      assert.equal(JSON.parse(bad.body).error, 'invalid_request', q);
    }
  });
});

describe('BFF login against an IdP that leaves scope out of its token response', function () {
  this.timeout(30_000);
  let env: IdpBff;
  before(async () => {
    // RFC 6749 5.1: `scope` may be omitted when it is what was asked for. The real dev IdP's
    // token responses, without it.
    env = await startIdpBff({ fetch: editingIdpJson('/token', (body) => delete body['scope']) });
  });
  after(() => env?.close());

  it('the user\'s scopes are the ones asked for', async () => {
    const r = await env.login('walt');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.deepEqual([...s.secrets.user.scopes].sort(), ['email', 'offline_access', 'openid', 'profile']);
  });
});

describe('BFF sign-ins of one browser after its login-transaction cookie expired (two dev IdPs + redis)', function () {
  this.timeout(30_000);
  let env: IdpBff;
  before(async () => {
    env = await startIdpBff({ idps: [{ name: 'dev' }, { name: 'other' }] });
  });
  after(() => env?.close());

  /** A browser that has nothing of ours but its browser cookie (and no IdP session: anyone may sign in). */
  const browserWith = (key: string) => {
    const jar = new CookieJar();
    jar.store(env.url, `goldpath_browser=${key}; Path=/`);
    return jar;
  };

  it('a link from another site an hour later (no session cookie, a new transaction cookie): the sign-in deletes the browser\'s previous session', async () => {
    const first = await env.login('dora');
    assert.equal(first.status, 302, first.last.body.slice(0, 300));
    const s1 = (await env.store.get(first.sessionCookie!))!;
    assert.ok(s1);
    const key = first.jar.get('goldpath_browser');
    assert.ok(key, 'the browser cookie is set at /auth/login');
    assert.match(key.value, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
    assert.ok(key.httpOnly && key.sameSite === 'Lax' && key.path === '/' && !key.secure);
    assert.doesNotMatch(key.raw, /domain=/i);
    assert.match(key.raw, new RegExp(`Max-Age=${env.settings.sessionMaxMs / 1000}(;|$)`), 'lives as long as a session can');
    // The cross-site navigation withholds the Strict session cookie, and the transaction cookie
    // has expired (TX_TTL_MS); the IdP session signs the user in again.
    const oldTx = first.jar.get('goldpath_tx')!.value;
    first.jar.delete('goldpath');
    first.jar.delete('goldpath_tx');
    const second = await env.login('dora', { jar: first.jar });
    assert.equal(second.status, 302, second.last.body.slice(0, 300));
    assert.notEqual(second.jar.get('goldpath_tx')!.value, oldTx);
    assert.equal(second.jar.get('goldpath_browser')!.value, key.value, 'a well-formed browser cookie is kept');
    assert.ok(await env.store.get(second.sessionCookie!), 'S2 exists');
    assert.equal(await env.store.getById(s1.id) === null, true, 'S1, held by no cookie, is gone');
  });

  it('a sign-in refused at another IdP offers to start it again there, for the same page', async () => {
    const r = await env.login('ida', { idp: 'other', consent: 'deny', returnTo: '/orders?tab=2' });
    assert.equal(r.status, 400, r.last.body.slice(0, 300));
    assert.match(r.last.body, /<a href="\/auth\/login\?return_to=%2Forders%3Ftab%3D2&#38;idp=other">Sign in again<\/a>/);
  });

  it('the browser\'s previous session is deleted only when it is the same user\'s at the same IdP: another user, or another IdP, leaves it', async () => {
    for (const [user, idp, replaced] of [['gina', 'dev', true], ['hank', 'dev', false], ['gina', 'other', false]] as const) {
      const first = await env.login('gina');
      assert.equal(first.status, 302, first.last.body.slice(0, 300));
      const s1 = (await env.store.get(first.sessionCookie!))!;
      const second = await env.login(user, { jar: browserWith(first.jar.get('goldpath_browser')!.value), idp });
      assert.equal(second.status, 302, second.last.body.slice(0, 300));
      const s2 = (await env.store.get(second.sessionCookie!))!;
      assert.deepEqual([s2.sub, s2.idp], [user, idp]);
      assert.equal(await env.store.getById(s1.id) === null, replaced, `${user} at ${idp}: S1 ${replaced ? 'stays' : 'is gone'}`);
    }
  });

  it('a malformed browser cookie is replaced with a new random one', async () => {
    const r = await env.login('ivan', { jar: browserWith('short') });
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    assert.match(r.jar.get('goldpath_browser')!.value, /^[A-Za-z0-9_-]{43}$/);
  });
});

describe('BFF login: an e-mail address the IdP has not verified is no identity (real dev IdP + redis + Oso)', function () {
  this.timeout(20_000);
  let env: IdpBff;
  // Many IdPs let anyone set any address on their own account, unconfirmed (self-registration,
  // a profile page): they say so with email_verified (OIDC Core 5.1). Mallory, with an account of
  // her own, gives hers the address of the boss; Nell's IdP says nothing about hers.
  const profiles: Record<string, Record<string, unknown>> = {
    mallory: { email: 'boss@example.com', email_verified: false },
    nell: { email: 'boss@example.com', email_verified: undefined },
    boss: { email: 'boss@example.com', email_verified: true },
  };

  const logs = capturingLogger('info');
  before(async () => {
    env = await startIdpBff({
      log: logs.log,
      idps: [
        { devIdp: { extraClaims: (user) => profiles[user] } },
        // An operator's explicit word that this IdP owns every address it hands out.
        { name: 'entra', devIdp: { extraClaims: (user) => profiles[user] }, config: { dangerouslyTrustUnverifiedEmail: true } },
      ],
    });
  });
  after(() => env?.close());

  it('an IdP with dangerously_trust_unverified_email gives its address as it is, and the BFF says so loudly at startup', async () => {
    assert.ok(logs.lines.some((l) => l.includes('dangerously_trust_unverified_email') && l.includes('"idp":"entra"')), 'a startup warning');
    assert.ok(!logs.lines.some((l) => l.includes('dangerously_trust_unverified_email') && l.includes('"idp":"dev"')));
    const pdp = await Pdp.load({ policies: [fixture('actor.polar')], rules: [rule('GET /t', 'by_email', 'Thing')] }, { log: silentLogger });
    const r = await env.login('nell', { idp: 'entra' });
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.equal(s.secrets.user.email, 'boss@example.com');
    assert.equal((await pdp.decide(s.secrets.user, { method: 'GET', path: '/t', route: 't' })).allow, true);
  });

  it('a policy that allows by user.email (test/pdp/fixtures/actor.polar) allows only the verified address; the raw claim stays in claims', async () => {
    const pdp = await Pdp.load({ policies: [fixture('actor.polar')], rules: [rule('GET /t', 'by_email', 'Thing')] }, { log: silentLogger });
    for (const [user, allowed] of [['mallory', false], ['nell', false], ['boss', true]] as const) {
      const r = await env.login(user);
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      const s = (await env.store.get(r.sessionCookie!))!;
      assert.equal(s.secrets.user.claims['email'], 'boss@example.com', `${user}: the claim itself is kept`);
      const decision = await pdp.decide(s.secrets.user, { method: 'GET', path: '/t', route: 't' });
      assert.equal(decision.allow, allowed, `${user} (${JSON.stringify(profiles[user])}) is ${allowed ? '' : 'not '}the boss to the policy`);
      const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body);
      // The SPA is shown the address as the IdP sent it (a user's own, to display); policies are not.
      assert.equal(info.user.email, 'boss@example.com', `${user}: /auth/session`);
    }
  });
});
