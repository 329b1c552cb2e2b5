// The verify sidecar under Redis faults, over real HTTP: killed, stalled and full Redis, in process
// (createVerifyApp on node:http) and as the real `goldpath verify` process with its session cache.
// Extends verify.test.ts ("store unreachable": one kill, one stall). The rules (SPEC 5, 9):
// 503 {"error":"unavailable"} within 1 s while the store cannot answer; never a 200 for a request
// without a valid session on a session route, whatever the fault; /readyz follows the store;
// everything recovers on its own.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CookieCodec, createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { runCli, waitHealthy } from '../helpers/process.ts';
import { fillUntilOom } from '../helpers/redis-faults.ts';
import { newSession } from '../helpers/sessions.ts';
import { send, startVerifyApp, verifyEnv, VERIFY_CONFIG_DIR, type RunningVerify, type VerifyResponse } from '../helpers/verify-app.ts';

const SESSION_ROUTES = ['/api/orders/1', '/api/reports', '/api/boom'];

function assertUnavailable(res: VerifyResponse, what: string): void {
  assert.equal(res.status, 503, `${what}: ${res.status} ${res.body}`);
  assert.deepEqual(JSON.parse(res.body), { error: 'unavailable', error_description: 'temporarily unavailable: try again shortly' }, what);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers.authorization, undefined);
  assert.ok(res.ms < 1000, `${what}: answered in ${Math.round(res.ms)} ms`);
}

/**
 * Requests that carry no valid session, on every session route, GET and POST: none may be 200 or
 * carry an identity, whatever state the store is in.
 */
async function neverAllowedWithoutSession(v: { verify: RunningVerify['verify'] }, cookieName: string, keys: readonly Uint8Array[]): Promise<Set<number>> {
  const unknown = new CookieCodec(keys).issue().cookieValue; // genuine MAC, never stored
  const forged = new CookieCodec([new Uint8Array(32).fill(7)]).issue().cookieValue;
  const cookies = [undefined, `${cookieName}=garbage`, `${cookieName}=${forged}`, `${cookieName}=${unknown}`,
    `${cookieName}=${unknown}; ${cookieName}=${unknown}`, 'theme=dark', `${cookieName}=`];
  const seen = new Set<number>();
  for (const uri of SESSION_ROUTES) {
    for (const method of ['GET', 'POST']) {
      for (const cookie of cookies) {
        const res = await v.verify(method, uri, cookie === undefined ? {} : { Cookie: cookie, 'X-CSRF-Token': 'x' });
        assert.notEqual(res.status, 200, `${method} ${uri} with ${cookie}`);
        assert.ok(res.status === 401 || res.status === 503, `${method} ${uri} with ${cookie}: ${res.status}`);
        assert.equal(res.headers.authorization, undefined);
        assert.equal(res.headers['x-auth-user'], undefined);
        assert.ok(res.ms < 1000, `answered in ${Math.round(res.ms)} ms`);
        seen.add(res.status);
      }
    }
  }
  return seen;
}

async function eventually<T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('verify sidecar under Redis faults', function () {
  this.timeout(30_000);

  describe('in process, on a real HTTP server', function () {
    let redis: RedisServer;
    let store: KvSessionStore;
    let sidecar: RunningVerify;

    async function setUp(args: string[] = []) {
      redis = await RedisServer.start(args);
      store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
      sidecar = await startVerifyApp(store, redis.url);
    }
    afterEach(async function () {
      await sidecar?.close();
      await store?.close();
      redis?.resume();
      await redis?.stop();
    });

    it('killed Redis: 503 within 1 s for sessions, never 200 without one, /readyz 503 while down and 200 after, by itself', async function () {
      await setUp();
      const { cookie } = await sidecar.login();
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200);
      await redis.kill();

      assertUnavailable(await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie }), 'session route');
      assertUnavailable(await sidecar.verify('GET', '/api/public/info', { Cookie: cookie }), 'public route with a session cookie');
      const anon = await sidecar.verify('GET', '/api/public/info');
      assert.equal(anon.status, 200, 'an anonymous public request needs no store');
      assert.equal(anon.headers.authorization, undefined);
      // 40 at once: none waits for another.
      const burst = await Promise.all(Array.from({ length: 40 }, () => sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })));
      burst.forEach((r, i) => assertUnavailable(r, `burst #${i}`));
      const statuses = await neverAllowedWithoutSession(sidecar, sidecar.cookieName, sidecar.settings.sessionKeys);
      assert.ok(statuses.has(503) && statuses.has(401), 'unknown cookies need the store (503), malformed ones do not (401)');

      const ready = await sidecar.get('/readyz');
      assert.equal(ready.status, 503);
      assert.ok(ready.ms < 1000, `/readyz took ${ready.ms} ms`);
      assert.equal((await sidecar.get('/healthz')).status, 200, 'alive, just not ready');
      assert.match((await sidecar.get('/metrics')).body, /goldpath_store_errors_total [1-9]/);

      await redis.start();
      await eventually('/readyz 200', async () => ((await sidecar.get('/readyz')).status === 200 ? true : undefined));
      const fresh = await eventually('a new login', () => sidecar.login());
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: fresh.cookie })).status, 200);
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 401, 'the restarted Redis had no persistence');
    });

    it('stalled Redis (SIGSTOP): 20 parallel requests all 503 within 1 s, /readyz 503, then the same session is 200 again', async function () {
      await setUp();
      const { cookie } = await sidecar.login();
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200);
      redis.pause();
      try {
        const burst = await Promise.all(Array.from({ length: 20 }, () => sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })));
        burst.forEach((r, i) => assertUnavailable(r, `stalled #${i}`));
        await neverAllowedWithoutSession(sidecar, sidecar.cookieName, sidecar.settings.sessionKeys);
        const ready = await sidecar.get('/readyz');
        assert.equal(ready.status, 503);
        assert.ok(ready.ms < 1000, `/readyz took ${ready.ms} ms`);
        assert.equal((await sidecar.get('/healthz')).status, 200);
      } finally {
        redis.resume();
      }
      await eventually('the session to verify again', async () => ((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status === 200 ? true : undefined));
      assert.equal((await sidecar.get('/readyz')).status, 200);
    });

    it('full Redis (maxmemory, noeviction): logged-in users go on, new logins get a clear 503, nobody gets in without a session', async function () {
      await setUp(['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']);
      const { cookie } = await sidecar.login();
      const probe = redis.client();
      try {
        await fillUntilOom(probe);
        await assert.rejects(store.create(newSession()), (err: Error & { status?: number }) => err.name === 'StoreUnavailable' && err.status === 503);
        for (let i = 0; i < 5; i++) assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200);
        const statuses = await neverAllowedWithoutSession(sidecar, sidecar.cookieName, sidecar.settings.sessionKeys);
        assert.deepEqual([...statuses], [401], 'a full Redis still answers reads: unknown sessions are plain 401s');
        assert.equal((await sidecar.get('/readyz')).status, 200, 'a full Redis is not an outage for the sidecar');
        await probe.flushall();
        const fresh = await eventually('a new login', () => sidecar.login());
        assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: fresh.cookie })).status, 200);
      } finally {
        probe.disconnect();
      }
    });
  });

  describe('the goldpath verify process (with its session cache)', function () {
    let redis: RedisServer;
    let store: KvSessionStore;
    let child: ReturnType<typeof runCli>;
    let port: number;
    const http = (path: string, headers: Record<string, string> = {}) => send(port, path, headers);
    const verify = (cookie: string | undefined, uri = '/api/orders/1') => http('/auth/verify', {
      'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http',
      ...(cookie === undefined ? {} : { Cookie: cookie }),
    });

    async function spawnVerify(): Promise<void> {
      port = await freePort();
      const env = { ...verifyEnv(redis.url), GOLDPATH_CONFIG_DIR: VERIFY_CONFIG_DIR, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
      store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
      child = runCli('node', ['verify'], env);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
    }
    /** Redis, the sidecar, and a session the sidecar has just served (now in its cache). */
    async function withCachedSession(sub: string): Promise<{ cookieValue: string; cached: string }> {
      redis = await RedisServer.start();
      await spawnVerify();
      const { cookieValue } = await store.create(newSession({ sub }));
      const cached = `goldpath=${cookieValue}`;
      for (let i = 0; i < 3; i++) assert.equal((await verify(cached)).status, 200);
      return { cookieValue, cached };
    }
    afterEach(async function () {
      await child?.stop();
      await store?.close();
      await redis?.stop();
    });

    it('killed Redis: 503 within 1 s even for a session it just served from cache, 401 without one, /readyz 503; heals by itself', async function () {
      const { cookieValue, cached } = await withCachedSession('cached');
      const { cookieValue: other } = await store.create(newSession({ sub: 'uncached' }));
      await redis.kill();
      await sleep(50); // the subscriber notices the closed connection and stops trusting the cache
      assertUnavailable(await verify(cached), 'cached session');
      assertUnavailable(await verify(`goldpath=${other}`), 'uncached session');
      const none = await verify(undefined);
      assert.equal(none.status, 401);
      assert.equal((await http('/readyz')).status, 503);
      assert.equal((await http('/healthz')).status, 200);

      await redis.start();
      await eventually('/readyz 200', async () => ((await http('/readyz')).status === 200 ? true : undefined));
      const { cookieValue: fresh } = await eventually('a new login', () => store.create(newSession({ sub: 'after' })));
      assert.equal((await verify(`goldpath=${fresh}`)).status, 200);
      assert.equal((await verify(cached)).status, 401, 'not served from a stale cache: Redis lost it');
      assert.equal(child.proc.exitCode, null, 'the process never crashed');
      assert.doesNotMatch(child.output(), new RegExp(cookieValue), 'no cookie value in the logs');
    });

    it('stalled Redis (SIGSTOP): a session served from the cache stops being served within 1 s (the heartbeat), then 503s; heals by itself', async function () {
      const { cached } = await withCachedSession('cached-stall');
      redis.pause();
      try {
        const t0 = performance.now();
        let first503: VerifyResponse | undefined;
        for (;;) {
          const res = await verify(cached);
          const at = performance.now() - t0;
          if (res.status === 503) {
            first503 = res;
            break;
          }
          assert.equal(res.status, 200, `${res.status} at ${Math.round(at)} ms`);
          assert.ok(at < 1000, `still served from the cache ${Math.round(at)} ms into the stall`);
          await sleep(25);
        }
        assertUnavailable(first503, 'cached session, Redis stalled');
        // Once distrusted, never served from memory again while the stall lasts.
        for (let i = 0; i < 5; i++) assertUnavailable(await verify(cached), `stalled #${i}`);
        assert.equal((await verify(undefined)).status, 401);
      } finally {
        redis.resume();
      }
      await eventually('the session to verify again', async () => ((await verify(cached)).status === 200 ? true : undefined));
      assert.equal(child.proc.exitCode, null, 'the process never crashed');
    });

    it('starts while Redis is down: alive but not ready, 503 for sessions, then ready on its own when Redis appears', async function () {
      redis = new RedisServer(await freePort());
      await spawnVerify();
      assert.equal((await http('/readyz')).status, 503);
      const unknown = new CookieCodec(loadSettings(verifyEnv(redis.url)).sessionKeys).issue().cookieValue;
      assertUnavailable(await verify(`goldpath=${unknown}`), 'a session cookie while Redis never was');
      assert.equal((await verify(undefined)).status, 401);
      await redis.start();
      await eventually('/readyz 200', async () => ((await http('/readyz')).status === 200 ? true : undefined));
      const { cookieValue } = await eventually('a login', () => store.create(newSession()));
      assert.equal((await verify(`goldpath=${cookieValue}`)).status, 200);
    });
  });
});
