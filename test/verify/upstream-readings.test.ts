// How the upstream may read a request otherwise than the sidecar judged it (SPEC 5 step 1: reject
// anything whose meaning could differ between us and the upstream):
//   - letter case: many routers match paths ignoring case (@koa/router and Express by default,
//     ASP.NET Core): a path such an upstream gives to another route, or another rule's handler;
//   - a `.format` suffix, which Rails routes and Spring MVC up to 5.2 strip, and a trailing dot or
//     space, which Windows servers drop;
//   - a '?' or '#' decoded from %3F or %23, where servers that read the decoded path as a URL
//     again end it;
//   - Unicode that folds to ASCII (NFKC, case mapping) or vanishes (zero-width characters);
//   - a method override in the query (`?_method=DELETE`);
// and what the upstream must never get: the session cookie, in any spelling a server reads.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import { loadSettings } from '../../src/config/env.ts';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { createVerifyApp } from '../../src/verify/app.ts';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';
import { buildVerifyPolicy } from '../../src/verify/policy.ts';
import { compileRules } from '../../src/pdp/rules.ts';
import { RouteTable } from '../../src/verify/route-table.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';

const FIXTURES = fileURLToPath(new URL('../../../test/verify/fixtures/config', import.meta.url));

describe('verify: no reading of the upstream steers a request past its route or rule', function () {
  let dir: string;
  let redis: RedisServer;
  let store: SessionStore;
  let server: ReturnType<ReturnType<typeof createVerifyApp>['callback']>;
  let cookieName: string;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'goldpath-case-'));
    copyFileSync(path.join(FIXTURES, 'idps.yaml'), path.join(dir, 'idps.yaml'));
    copyFileSync(path.join(FIXTURES, 'policy.polar'), path.join(dir, 'policy.polar'));
    // A session route nested under a public one, and a literal rule before a :param rule.
    writeFileSync(path.join(dir, 'routes.yaml'), `routes:
  - name: public
    prefix: /api/public
    auth: public
  - name: admin
    prefix: /api/public/admin
  - name: orders
    prefix: /api/orders
`);
    writeFileSync(path.join(dir, 'pdp.yaml'), `policies: [policy.polar]
rules:
  - match: GET /api/public/admin
    action: write
    resource: { type: Order, id: admin }
  - match: GET /api/orders/admin
    action: write
    resource: { type: Order, id: admin }
  - match: GET /api/orders/:id
    action: read
    resource: { type: Order, id: ":id" }
`);
    redis = await RedisServer.start();
    const env = {
      GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
      GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 'test-secret',
    };
    const settings = loadSettings(env);
    cookieName = settings.cookieName;
    const config = await loadConfig(dir, env);
    store = createSessionStore({ url: redis.url, settings, log: silentLogger });
    const policy = await buildVerifyPolicy(config, settings, silentLogger, new StoredTokens(store));
    server = createVerifyApp({
      settings, store, log: silentLogger, metrics: createVerifyMetrics(), policy: () => policy,
    }).callback();
  });
  after(async function () {
    await store?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function verify(uri: string, cookie?: string) {
    const r = request(server).get('/auth/verify').set('X-Forwarded-Method', 'GET').set('X-Forwarded-Proto', 'http')
      .set('X-Forwarded-Host', 'localhost:8080').set('X-Forwarded-Uri', uri);
    return cookie ? r.set('Cookie', cookie) : r;
  }

  it('a case-insensitive upstream router (@koa/router, as Express) serves /api/public/ADMIN with the /api/public/admin handler', async function () {
    // The premise of the tests below, shown on the stack goldpath itself uses.
    const router = new Router();
    router.get('/api/public/admin', (ctx) => { ctx.body = 'admin'; });
    router.get('/api/public/:page', (ctx) => { ctx.body = 'page'; });
    const app = new Koa().use(router.routes());
    assert.equal((await request(app.callback()).get('/api/public/ADMIN')).text, 'admin');
  });

  it('the nested session route still needs a login when its prefix is spelt in another case: 400, never an anonymous 200', async function () {
    assert.equal((await verify('/api/public/admin')).status, 401);
    for (const uri of ['/api/public/ADMIN', '/api/public/Admin/x', '/api/public/aDmin']) {
      const res = await verify(uri);
      assert.equal(res.status, 400, `${uri} → ${res.status}`);
      assert.equal(res.body.error, 'invalid_request');
      assert.equal(res.headers['cache-control'], 'no-store');
    }
    // No route at all in its own case: denied as before (404).
    assert.equal((await verify('/api/PUBLIC/admin')).status, 404);
  });

  it('paths of the public route in any case, and ids in any case, are unaffected', async function () {
    assert.equal((await verify('/api/public/Docs/ReadMe')).status, 200);
    assert.equal((await verify('/api/public')).status, 200);
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    assert.equal((await verify('/api/orders/AbC-42', `${cookieName}=${cookieValue}`)).status, 200);
  });

  it('a reader cannot reach the admin-only literal rule through another case of it (judged as an order id): 403', async function () {
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    const cookie = `${cookieName}=${cookieValue}`;
    assert.equal((await verify('/api/orders/admin', cookie)).status, 403);
    assert.equal((await verify('/api/orders/ADMIN', cookie)).status, 403);
    assert.equal((await verify('/api/orders/Admin', cookie)).status, 403);
    assert.equal((await verify('/api/orders/42', cookie)).status, 200);
  });

  it('RouteTable.caseAmbiguous: only another route under case folding counts', function () {
    const t = new RouteTable([
      { name: 'public', prefix: '/api/public', audience: undefined, auth: 'public' },
      { name: 'admin', prefix: '/api/public/admin', audience: undefined, auth: 'session' },
    ]);
    const pub = t.match('/api/public/ADMIN')!;
    assert.equal(pub.name, 'public');
    assert.equal(t.caseAmbiguous('/api/public/ADMIN', pub), true);
    assert.equal(t.caseAmbiguous('/api/public/other/ADMIN', t.match('/api/public/other/ADMIN')!), false);
    assert.equal(t.caseAmbiguous('/api/public/admin', t.match('/api/public/admin')!), false);
  });

  it('a .format suffix (Rails, Spring MVC ≤ 5.2) that would give the path to another route: 400; to another rule: 403', async function () {
    for (const uri of ['/api/public/admin.json', '/api/public/admin.tar.gz']) {
      const res = await verify(uri);
      assert.equal(res.status, 400, `${uri} → ${res.status}`);
      assert.match(res.body.error_description, /\.format suffix/);
    }
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    const cookie = `${cookieName}=${cookieValue}`;
    assert.equal((await verify('/api/orders/admin.json', cookie)).status, 403);
    // Where the suffix changes nothing, it is just part of the path.
    assert.equal((await verify('/api/public/report.pdf')).status, 200);
    assert.equal((await verify('/api/public/.well-known')).status, 200);
    assert.equal((await verify('/api/orders/42.json', cookie)).status, 200);
    assert.equal((await verify('/api/orders/v1.2/x', cookie)).status, 403, 'no rule has two segments after /api/orders');
  });

  it("an encoded '?' or '#' (%3F, %23) where a server that decodes the path and reads it as a URL again cuts it into another route: 400; into another rule: 403", async function () {
    // Apache's mod_rewrite (CVE-2024-38474; still so with UnsafeAllow3F), or a handler parsing
    // decodeURIComponent(req.url): /api/public/admin%3F is /api/public/admin there. Here it was
    // the public route's: an anonymous 200 for the session route's handler.
    for (const uri of ['/api/public/admin%3F', '/api/public/admin%3f/x', '/api/public/admin%23', '/api/public/admin%23x%3Fy']) {
      const res = await verify(uri);
      assert.equal(res.status, 400, `${uri} → ${res.status}`);
      assert.match(res.body.error_description, /encoded '\?' or '#'/);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    const cookie = `${cookieName}=${cookieValue}`;
    // The admin-only literal rule, reached as an order `admin?` (read, which a reader may).
    for (const uri of ['/api/orders/admin%3F', '/api/orders/admin%23x']) assert.equal((await verify(uri, cookie)).status, 403, uri);
    // Where the cut changes neither route nor rule, `?` and `#` are just part of a name.
    assert.equal((await verify('/api/public/a%3Fb')).status, 200);
    assert.equal((await verify('/api/public/why%3F/x%23y')).status, 200);
    assert.equal((await verify('/api/orders/42%3Fx', cookie)).status, 200);
  });

  it('a segment ending in a dot or a space (dropped by Windows servers): 400', async function () {
    for (const uri of ['/api/public/admin.', '/api/public/admin%20', '/api/public/admin.%20', '/api/orders/1.']) {
      assert.equal((await verify(uri)).status, 400, uri);
    }
  });

  it('Unicode that an upstream may fold to ASCII or drop: 400, whatever plane it is from; other Unicode passes', async function () {
    const enc = (s: string) => encodeURIComponent(s);
    for (const word of ['𝐚𝐝𝐦𝐢𝐧', 'adm\u0131n' /* dotless ı */, '\u0130dmin' /* dotted İ */, 'admin\u200b', '\ufeffadmin', 'ad\u00admin', 'stra\u00dfe', 'admin\u3164' /* Hangul filler */, 'ad\u034fmin' /* grapheme joiner */, 'admin\ufe0f' /* variation selector */]) {
      const res = await verify(`/api/public/${enc(word)}`);
      assert.equal(res.status, 400, `${JSON.stringify(word)} → ${res.status}`);
    }
    assert.equal((await verify(`/api/public/${enc('café')}`)).status, 200);
    assert.equal((await verify(`/api/public/${enc('日本語')}`)).status, 200);
  });

  it('a method override in the query (?_method=, as Symfony, Laravel, Express method-override read it): 400', async function () {
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    const cookie = `${cookieName}=${cookieValue}`;
    assert.equal((await verify('/api/orders/1?x=1', cookie)).status, 200);
    for (const q of ['_method=DELETE', '_METHOD=delete&x=1', 'x=1&%5Fmethod=PUT', '_m%65thod=PUT', '.method=PUT', 'X-HTTP-Method-Override=DELETE', 'a=1;_method=PUT', '%20_method=DELETE', '+_method=DELETE', '_method[x]=DELETE']) {
      const res = await verify(`/api/orders/1?${q}`, cookie);
      assert.equal(res.status, 400, `${q} → ${res.status}`);
      assert.match(res.body.error_description, /method override/);
    }
    // Names that merely look alike, and values, are not overrides.
    for (const q of ['method=x', 'name=me', 'q=_method', '_methods=1', 'me=_method']) {
      assert.equal((await verify(`/api/orders/1?${q}`, cookie)).status, 200, q);
    }
  });

  it('the upstream never gets the session cookie, whatever spelling a server could read as it', async function () {
    const { cookieValue } = await store.create(newSession({ roles: ['reader'] }));
    const cases: [string, string][] = [
      [`GOLDPATH=${cookieValue}; a=1`, 'a=1'],
      [`Goldpath=${cookieValue}; a=1`, 'a=1'],
      [`__Host-goldpath=${cookieValue}; a=1`, 'a=1'],
      [`__HOST-GOLDPATH_tx=1; a=1`, 'a=1'],
      [`a=1, goldpath=${cookieValue}; b=2`, 'b=2'],
      [`a=1,GOLDPATH =${cookieValue}; b=2`, 'b=2'],
      [`${cookieName}=${cookieValue}; theme=dark; goldpathx=1`, 'theme=dark; goldpathx=1'],
    ];
    for (const [sent, forwarded] of cases) {
      const res = await verify('/api/public/x', sent);
      assert.equal(res.status, 200, sent);
      assert.equal(res.headers['cookie'] ?? '', forwarded, sent);
    }
  });

  it('a dot the configuration writes is not a suffix: in a route prefix, or in a rule\'s literal', function () {
    const t = new RouteTable([
      { name: 'api', prefix: '/api', audience: undefined, auth: 'public' },
      { name: 'v1', prefix: '/api/v1.0', audience: undefined, auth: 'session' },
    ]);
    assert.equal(t.formatAmbiguous('/api/v1.0', t.match('/api/v1.0')!), false);
    assert.equal(t.formatAmbiguous('/api/v1.0/x.json', t.match('/api/v1.0/x.json')!), false);
    assert.equal(t.formatAmbiguous('/api/v1.json', t.match('/api/v1.json')!), false, '/api/v1 is the same route');
    const rule = (match: string, action: string) => {
      const [method, pattern] = match.split(' ') as [string, string];
      return { methods: [method], pattern, segments: pattern.split('/').slice(1), action, resource: { type: 'Report', id: undefined }, line: undefined };
    };
    const match = compileRules([rule('GET /api/reports/summary.csv', 'export'), rule('GET /api/reports/:name', 'read')]);
    assert.equal(match('GET', '/api/reports/summary.csv')?.rule.action, 'export');
    assert.equal(match('GET', '/api/reports/q3.csv')?.rule.action, 'read');
  });
});
