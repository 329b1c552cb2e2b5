// Letter case and the upstream's router: many routers match paths ignoring case (@koa/router and
// Express by default, ASP.NET Core). A path that such an upstream gives to another route, or another
// rule's handler, than the one the sidecar judged it by must not be allowed (SPEC 5 step 1: reject
// anything whose meaning could differ between us and the upstream).
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
import { RouteTable } from '../../src/verify/route-table.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';

const FIXTURES = fileURLToPath(new URL('../../../test/verify/fixtures/config', import.meta.url));

describe('verify: letter case cannot steer a request past its route or rule', function () {
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
    const policy = await buildVerifyPolicy(config, settings, silentLogger);
    server = createVerifyApp({
      settings, store, tokens: new StoredTokens(store), log: silentLogger, metrics: createVerifyMetrics(), policy: () => policy,
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
});
