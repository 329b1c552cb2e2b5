// /healthz, /readyz (store + IdP metadata), /metrics, secure-cookie naming, two apps per process.
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createBffApp } from '../../src/bff/app.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { startIdpBff, testIdpConfig, testSettings, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

describe('BFF operations', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;

  before(async () => {
    redis = await RedisServer.start();
    env = await startIdpBff({ redis });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });

  it('/healthz is 200; /readyz is 200 with the store and IdP metadata available', async () => {
    assert.equal((await httpCall(`${env.url}/healthz`)).status, 200);
    const ready = await httpCall(`${env.url}/readyz`);
    assert.equal(ready.status, 200, ready.body);
    assert.equal(ready.headers['cache-control'], 'no-store');
  });

  it('/metrics counts logins, refreshes and store errors on its own registry', async () => {
    const r = await env.login('alice');
    assert.equal(r.status, 302);
    await env.login('alice', { consent: 'deny' });
    const m = await httpCall(`${env.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /text\/plain/);
    assert.match(m.body, /goldpath_logins_total\{outcome="success"\} [1-9]/);
    assert.match(m.body, /goldpath_logins_total\{outcome="idp_error"\} [1-9]/);
    assert.match(m.body, /goldpath_token_refreshes_total\{outcome="success"\} 0/);
    assert.match(m.body, /goldpath_store_errors_total 0/);
    assert.match(m.body, /goldpath_bff_request_duration_seconds_bucket/);
    assert.doesNotMatch(m.body, /process_cpu/, 'not the global default registry');
  });

  it('paths a client makes up add no metric series: they count as route="other"', async () => {
    for (let i = 0; i < 30; i++) assert.equal((await httpCall(`${env.url}/auth/made-up-${i}`)).status, 404);
    await httpCall(`${env.url}/auth/${'x'.repeat(3000)}`);
    const m = (await httpCall(`${env.url}/metrics`)).body;
    assert.doesNotMatch(m, /made-up|xxxx/);
    assert.match(m, /goldpath_bff_request_duration_seconds_count\{route="other",status="404"\} [1-9]/);
    const routes = new Set([...m.matchAll(/route="([^"]*)"/g)].map((x) => x[1]));
    const known = ['/auth/login', '/auth/callback', '/auth/session', '/auth/logout', '/auth/backchannel-logout', '/healthz', '/readyz', '/metrics', 'other'];
    assert.deepEqual([...routes].filter((r) => !known.includes(r!)), [], 'only the BFF\'s own paths are labels');
  });

  it('a second BFF in the same process (own registry, or a shared one) does not clash', async () => {
    const shared = new Registry();
    const a = await startIdpBff({ redis, metricsRegistry: shared });
    const b = await startIdpBff({ redis, metricsRegistry: shared });
    const c = await startIdpBff({ redis });
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('/readyz is 503 while the IdP cannot be reached, and /auth/login is a 503 page, not a 500', async () => {
    const settings = testSettings('http://127.0.0.1:9', redis.url);
    const store = createSessionStore({ url: redis.url, settings, log: silentLogger });
    const config = {
      routes: { routes: [], cors: { allowedOrigins: [] } }, pdp: { policies: [], rules: [] },
      idps: { default: 'dev', idps: { dev: testIdpConfig('dev', 'http://127.0.0.1:1') } },
    };
    const down = await createBffApp({ settings, config, store, log: silentLogger });
    try {
      const ready = await request(down.app.callback()).get('/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.error, 'unavailable');
      const login = await request(down.app.callback()).get('/auth/login').set('accept', 'text/html');
      assert.equal(login.status, 503);
      assert.match(login.headers['content-type']!, /text\/html/);
      assert.match(login.text, /unavailable/);
      const json = await request(down.app.callback()).get('/auth/login').set('accept', 'application/json');
      assert.equal(json.status, 503);
      assert.equal(json.body.error, 'unavailable');
    } finally {
      await store.close();
    }
  });

  it('/readyz stays 200 while an IdP other than the default cannot be reached, and names it; the default\'s sign-ins go on', async () => {
    const settings = testSettings(env.url, redis.url);
    const store = createSessionStore({ url: redis.url, settings, log: silentLogger });
    const dev = env.config.idps.idps['dev']!;
    const config = { ...env.config, idps: { default: 'dev', idps: { dev, corp: testIdpConfig('corp', 'http://127.0.0.1:1') } } };
    const bff = await createBffApp({ settings, config, store, log: silentLogger });
    try {
      const ready = await request(bff.app.callback()).get('/readyz');
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.body, { status: 'ready', idps_unavailable: ['corp'] });
      assert.equal((await request(bff.app.callback()).get('/auth/login')).status, 302, 'the default IdP signs in');
      assert.equal((await request(bff.app.callback()).get('/auth/login?idp=corp').set('accept', 'application/json')).status, 503);
    } finally {
      await store.close();
    }
  });

  it('/readyz is 503 and /auth/session is 503 (not 401) when Redis is down', async () => {
    const own = await RedisServer.start();
    const e = await startIdpBff({ redis: own });
    try {
      const r = await e.login('bob');
      await own.kill();
      const ready = await httpCall(`${e.url}/readyz`);
      assert.equal(ready.status, 503);
      const s = await httpCall(`${e.url}/auth/session`, { jar: r.jar });
      assert.equal(s.status, 503);
      assert.equal(JSON.parse(s.body).error, 'unavailable');
      const m = await httpCall(`${e.url}/metrics`);
      assert.match(m.body, /goldpath_store_errors_total [1-9]/);
    } finally {
      await e.close();
      await own.stop();
    }
  });

  it('https public origin: cookies are __Host-goldpath and __Host-goldpath_tx, Secure', async () => {
    const e = await startIdpBff({ redis, settings: { secureCookies: true, cookieName: '__Host-goldpath' } });
    try {
      const r = await e.login('carol');
      assert.equal(r.status, 302);
      const c = r.jar.get('__Host-goldpath')!;
      assert.ok(c.secure && c.httpOnly && c.sameSite === 'Strict' && c.path === '/');
      assert.doesNotMatch(c.raw, /domain=/i);
      const tx = r.jar.get('__Host-goldpath_tx')!;
      assert.ok(tx.secure && tx.httpOnly && tx.sameSite === 'Lax' && tx.path === '/');
      const browser = r.jar.get('__Host-goldpath_browser')!;
      assert.ok(browser?.secure && browser.httpOnly && browser.sameSite === 'Lax' && browser.path === '/');
      assert.doesNotMatch(browser.raw, /domain=/i);
      assert.equal(r.jar.get('goldpath'), undefined);
      assert.equal(r.jar.get('goldpath_browser'), undefined);
      // /auth/session reads only the __Host- name here; the plain one is no session.
      assert.equal((await httpCall(`${e.url}/auth/session`, { headers: { cookie: `goldpath=${c.value}` } })).status, 401);
      const info = await httpCall(`${e.url}/auth/session`, { jar: r.jar });
      assert.equal(info.status, 200, info.body);
      // Cleared with the attributes it was set with: a __Host- cookie without Secure is refused
      // by browsers, and the session cookie would stay.
      const out = await httpCall(`${e.url}/auth/logout`, { method: 'POST', jar: r.jar, headers: { 'x-csrf-token': JSON.parse(info.body).csrf_token, accept: 'application/json' } });
      assert.equal(out.status, 200, out.body);
      assert.deepEqual(out.headers['set-cookie'], [
        '__Host-goldpath=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure',
        '__Host-goldpath_browser=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure',
      ]);
    } finally {
      await e.close();
    }
  });

  it('unknown paths are 404 JSON; a known path under another method is 405 JSON with Allow', async () => {
    // Under any method: one @koa/router does not implement (PROPFIND, TRACE) was its bare 501.
    for (const method of ['GET', 'PROPFIND', 'TRACE']) {
      const res = await httpCall(`${env.url}/auth/nope`, { method });
      assert.equal(res.status, 404, method);
      assert.equal(JSON.parse(res.body).error, 'not_found');
      assert.equal(res.headers['cache-control'], 'no-store');
    }
    for (const [method, path, allow] of [['GET', '/auth/logout', 'POST'], ['POST', '/auth/session', 'HEAD, GET'], ['PROPFIND', '/auth/login', 'GET']]) {
      const r = await httpCall(`${env.url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.deepEqual(JSON.parse(r.body), { error: 'method_not_allowed', error_description: `this endpoint accepts ${allow} only` });
      assert.equal(r.headers['allow'], allow);
      assert.equal(r.headers['cache-control'], 'no-store');
    }
  });

  it('HEAD /auth/login and /auth/callback are 405 (Allow: GET) and act on nothing: no transaction stored, no code spent', async () => {
    const client = redis.client();
    try {
      const before = (await client.keys('gp:t:*')).length;
      for (const path of ['/auth/login?return_to=/x', '/auth/callback?code=c&state=s', '/auth/callback/dev?code=c&state=s']) {
        const r = await httpCall(`${env.url}${path}`, { method: 'HEAD' });
        assert.equal(r.status, 405, path);
        assert.equal(r.headers['allow'], 'GET', path);
        assert.equal(r.headers['set-cookie'], undefined, `${path}: no cookie set`);
      }
      assert.equal((await client.keys('gp:t:*')).length, before, 'no sign-in transaction was stored');
      assert.equal((await httpCall(`${env.url}/auth/login`)).status, 302, 'GET still starts a sign-in');
      assert.equal((await client.keys('gp:t:*')).length, before + 1, 'and stores its transaction');
    } finally {
      client.disconnect();
    }
  });
});
