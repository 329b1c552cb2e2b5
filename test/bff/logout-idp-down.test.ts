// POST /auth/logout while the session's IdP takes no connections (the real dev IdP stopped, then
// started again on its port), with the real BFF and a real redis-server: the logout is done here
// and the browser lands on the app, not on the browser's error page for the IdP's end-session URL.
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { callbackPath } from '../../src/bff/callback-path.ts';
import { devIdpClientFor, generateSigningKey, startDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { capturingLogger, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { CookieJar, httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

const UNREACHABLE = 'logout: the IdP takes no connections now';

describe('BFF logout while the IdP is down', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let lines: string[];
  let restarted: DevIdp | undefined;
  let key: JWK;
  /** Signed in before the outage, logged out after it: the IdP's first answer then is its logout's revocation. */
  let survivor: Awaited<ReturnType<typeof loggedIn>>;

  before(async () => {
    redis = await RedisServer.start();
    const capture = capturingLogger('info');
    lines = capture.lines;
    // The same key after the restart: sessions signed in before it stay valid at the BFF.
    key = await generateSigningKey();
    env = await startIdpBff({ redis, log: capture.log, idps: [{ name: 'dev', devIdp: { keys: [key] } }, { name: 'other' }] });
  });
  after(async () => {
    await env?.close();
    await restarted?.close();
    await redis?.stop();
  });

  async function loggedIn(idp = 'dev') {
    const r = await env.login('alice', { idp });
    assert.equal(r.status, 302);
    const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body);
    return { jar: r.jar, csrf: info.csrf_token as string, cookie: r.sessionCookie!, session: (await env.store.get(r.sessionCookie!))! };
  }
  const formLogout = (jar: CookieJar, csrf: string) => httpCall(`${env.url}/auth/logout`, {
    method: 'POST', jar, body: new URLSearchParams({ csrf_token: csrf }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', accept: 'text/html' },
  });
  const fetchLogout = (jar: CookieJar, csrf: string) => httpCall(`${env.url}/auth/logout`, {
    method: 'POST', jar, headers: { 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
  });
  const said = () => lines.filter((l) => l.includes(UNREACHABLE));

  it('down: a form logout 302s to /, a fetch logout answers logout_url "/", each with the session gone, the cookie cleared and one log line; a session at another IdP still goes to its end-session endpoint', async () => {
    const form = await loggedIn();
    const json = await loggedIn();
    const other = await loggedIn('other');
    survivor = await loggedIn();
    await env.idp.close();

    const started = performance.now();
    const res = await formLogout(form.jar, form.csrf);
    assert.equal(res.status, 302, res.body);
    assert.equal(res.headers.location, '/');
    assert.ok(performance.now() - started < 2_500, 'the logout does not wait for the IdP');
    assert.ok(res.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
    assert.equal(await env.store.getById(form.session.id), null, 'session gone');
    assert.equal((await httpCall(`${env.url}/auth/session`, { jar: form.jar })).status, 401);
    assert.equal(said().length, 1, 'one line says why the browser goes to /');
    assert.equal(JSON.parse(said()[0]!).idp, 'dev');

    const j = await fetchLogout(json.jar, json.csrf);
    assert.equal(j.status, 200, j.body);
    assert.equal(JSON.parse(j.body).logout_url, '/');
    assert.ok(j.headers['set-cookie']!.some((c) => /^goldpath=;.*Max-Age=0/.test(c)), 'cookie cleared');
    assert.equal(await env.store.getById(json.session.id), null, 'session gone');
    assert.equal(said().length, 2);

    // Only the session's own IdP counts: the other one is up.
    const o = await fetchLogout(other.jar, other.csrf);
    assert.equal(o.status, 200, o.body);
    const url = new URL(JSON.parse(o.body).logout_url);
    assert.equal(url.origin + url.pathname, `${env.idps['other']!.issuer}/session/end`);
    assert.equal(said().length, 2);
  });

  it('back: the next logout goes to the IdP\'s end-session endpoint again (its revocation is the first answer: the window ends there)', async () => {
    const port = Number(new URL(env.idp.issuer).port);
    restarted = await startDevIdp({
      port, log: silentLogger, dangerouslyAllowInsecureHttp: true, keys: [key],
      clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: TEST_CLIENT_SECRET, origin: env.url, redirectPath: callbackPath('dev', 'dev') })],
    });
    assert.equal(restarted.issuer, env.idp.issuer);
    const { jar, csrf, session } = survivor;
    const res = await formLogout(jar, csrf);
    assert.equal(res.status, 302);
    assert.notEqual(res.headers.location, '/', 'the IdP answers again: the browser goes to its end-session endpoint');
    const loc = new URL(String(res.headers.location));
    assert.equal(loc.origin + loc.pathname, `${env.idp.issuer}/session/end`);
    assert.equal(loc.searchParams.get('id_token_hint'), session.secrets.idToken);
    assert.equal(loc.searchParams.get('post_logout_redirect_uri'), `${env.url}/`);
    assert.equal(await env.store.getById(session.id), null);
    assert.equal(said().length, 2, 'no new line');
    assert.equal((await httpCall(`${env.url}/auth/session`, { jar: new CookieJar() })).status, 401);
  });
});
