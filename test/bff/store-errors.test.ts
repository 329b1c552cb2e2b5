// goldpath_store_errors_total on the BFF counts the store's failures that no request hears (SPEC 9,
// "store errors"): a back-channel logout that goes ahead without its replay record or its logout
// marks, /readyz's write probe, the deletion of a browser's previous session at sign-in, the
// lookup that decides whether a failed sign-in's refresh token is revoked. Real dev IdP, real
// redis-server (full, paused, or one backend call failing: withOne), real HTTP; /metrics by supertest.
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import request from 'supertest';
import { storeErrors as storeErrorsOf, storeErrorsRise } from '../helpers/store-errors.ts';
import { createBffApp, type BffApp } from '../../src/bff/app.ts';
import { generateSigningKey } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { KvSessionStore, RedisBackend, parseRedisUrl } from '../../src/session/index.ts';
import { logoutToken, startIdpBff, testIdpConfig, testSettings, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';
import { fillUntilOom, withOne } from '../helpers/redis-faults.ts';
import { newSession } from '../helpers/sessions.ts';

const storeErrors = (bff: BffApp) => storeErrorsOf(bff.app.callback());
const rises = (bff: BffApp, from: number, what: string, ms?: number) => storeErrorsRise(bff.app.callback(), from, what, ms);

describe('BFF: goldpath_store_errors_total counts the store failures no request hears', function () {
  this.timeout(30_000);

  describe('on a full Redis (maxmemory, noeviction)', function () {
    let redis: RedisServer;
    let env: IdpBff;
    let key: JWK;
    before(async () => {
      redis = await RedisServer.start(['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']);
      key = await generateSigningKey();
      env = await startIdpBff({ redis, idps: [{ devIdp: { keys: [key] } }] });
    });
    after(async () => {
      await env?.close();
      await redis?.stop();
    });

    /** Runs `f` with Redis full (the filler kept connected: its buffers count), then frees it. */
    async function whileFull(f: () => Promise<void>): Promise<void> {
      const filler = redis.client();
      try {
        await fillUntilOom(filler);
        await f();
      } finally {
        await filler.flushall();
        filler.disconnect();
      }
    }

    it('a back-channel logout goes ahead without its replay record and logout mark: 200, both refusals counted', async () => {
      const r = await env.login('wendy');
      assert.equal(r.status, 302);
      const before = await storeErrors(env.bff);
      await whileFull(async () => {
        const res = await httpCall(`${env.url}/auth/backchannel-logout`, {
          method: 'POST', body: new URLSearchParams({ logout_token: await logoutToken(env.idp.issuer, key, { sub: 'wendy' }) }).toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        assert.equal(res.status, 200, res.body);
        assert.equal(await storeErrors(env.bff), before + 2, 'the jti not recorded, the sub\'s end not marked');
      });
      assert.equal(await env.store.get(r.sessionCookie!), null, 'the session is gone all the same');
    });

    it('/readyz whose write probe Redis refuses: 503, counted once', async () => {
      const before = await storeErrors(env.bff);
      await whileFull(async () => {
        await request(env.bff.app.callback()).get('/readyz').expect(503);
        assert.equal(await storeErrors(env.bff), before + 1);
      });
    });
  });

  it('a sign-in whose browser\'s previous session cannot be deleted: the session is made, the failure counted', async () => {
    const redis = await RedisServer.start();
    const settings = testSettings('http://127.0.0.1:9', redis.url);
    const backend = new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger });
    const store = new KvSessionStore({
      backend: withOne(backend, 'swap', async () => { throw new Error('SET GET refused (injected)'); }),
      sessionKeys: settings.sessionKeys, sessionIdleMs: settings.sessionIdleMs, sessionMaxMs: settings.sessionMaxMs, log: silentLogger,
    });
    const config = {
      routes: { routes: [], cors: { allowedOrigins: [] } }, pdp: { policies: [], rules: [] },
      idps: { default: 'dev', idps: { dev: testIdpConfig('dev', 'http://127.0.0.1:1') } },
    };
    const bff = await createBffApp({ settings, config, store, log: silentLogger });
    try {
      // What the callback asks of the store (callback.ts): a session for this browser's sign-in.
      const { session } = await store.create({ ...newSession(), login: { browser: 'browser-1', startedAt: await store.clock() } });
      assert.ok(await store.getById(session.id));
      assert.equal(await storeErrors(bff), 1);
    } finally {
      await bff.close();
      await store.close();
      await redis.stop();
    }
  });

  it('a failed sign-in whose refresh token\'s fate the store cannot tell (nothing revoked): counted', async () => {
    let pauseAtUserinfo = false;
    let redis: RedisServer | undefined;
    // The IdP's userinfo answers 500 after Redis has stalled: the sign-in fails after the code
    // exchange, and the lookup of the browser's last sign-in (callback.ts discard) meets the stall.
    const fetch: FetchLike = async (url, init) => {
      if (pauseAtUserinfo && new URL(String(url)).pathname.endsWith('/me')) {
        redis!.pause();
        return new Response('{"error":"server_error"}', { status: 500, headers: { 'content-type': 'application/json' } });
      }
      return globalThis.fetch(url, init as RequestInit);
    };
    const env = await startIdpBff({ fetch });
    redis = env.redis;
    try {
      pauseAtUserinfo = true;
      const r = await env.login('gus');
      assert.notEqual(r.status, 302, 'the sign-in failed');
      await rises(env.bff, 0, 'the lookup before revoking');
    } finally {
      redis.resume();
      await env.close();
    }
  });
});
