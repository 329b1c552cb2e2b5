// Revocation with the session cache on: two real `goldpath verify` processes that have cached a
// session, and a third client (the BFF's role) that deletes it. Every sidecar must answer 401
// within 100 ms of the delete resolving (Redis pub/sub invalidation), and the cache's other
// safety nets must hold: a lost invalidation feed empties the cache, and nothing outlives the TTL.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { runCli, waitHealthy, type Child } from '../helpers/process.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { DEFAULT_SESSION_CACHE_TTL_MS } from '../../src/session/cache.ts';
import { silentLogger } from '../../src/log.ts';
import { REPO_ROOT } from '../helpers/process.ts';

const CONFIG_DIR = `${REPO_ROOT}test/verify/fixtures/config`;
const REVOCATION_MS = 100;

interface Sidecar {
  readonly port: number;
  readonly child: Child;
}

describe('verify: revocation reaches every sidecar despite the session cache', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: KvSessionStore;
  const sidecars: Sidecar[] = [];

  const env = (port: number) => ({
    GOLDPATH_CONFIG_DIR: CONFIG_DIR, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
    GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 's3cret', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
  });

  before(async function () {
    redis = await RedisServer.start();
    store = createSessionStore({ url: redis.url, settings: loadSettings(env(0)), log: silentLogger });
    await Promise.all([0, 1].map(async () => {
      const port = await freePort();
      const child = runCli('node', ['verify'], env(port));
      sidecars.push({ port, child });
      // /readyz includes "subscribed to invalidations".
      await waitHealthy(`http://127.0.0.1:${port}/readyz`, child, 15_000);
    }));
  });
  after(async function () {
    await Promise.all(sidecars.map((s) => s.child.stop()));
    await store?.close();
    await redis?.stop();
  });

  async function verify(s: Sidecar, cookieValue: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${s.port}/auth/verify`, {
      headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders/1', Cookie: `goldpath=${cookieValue}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  async function cacheHits(s: Sidecar): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    return Number(/^goldpath_session_cache_hits_total (\d+)/m.exec(text)?.[1] ?? NaN);
  }

  /**
   * Both sidecars answer 200, and then from their cache (proved by the hit counter). A sidecar idle
   * for 5 s (between tests) has paused its heartbeat: its lookups read the store, keeping nothing,
   * until its wake-up probe is back, a round trip that a loaded machine stretches.
   */
  async function cachedEverywhere(cookieValue: string): Promise<void> {
    for (const s of sidecars) {
      const deadline = performance.now() + 2000;
      for (;;) {
        assert.equal(await verify(s, cookieValue), 200);
        const hits = await cacheHits(s);
        assert.equal(await verify(s, cookieValue), 200);
        if (await cacheHits(s) === hits + 1) break;
        assert.ok(performance.now() < deadline, 'the session is never answered from the session cache');
      }
    }
  }

  /** Polls every sidecar from `t0` until it answers 401; returns the slowest time to see it, in ms. */
  async function slowestRevocation(cookieValue: string, t0: number): Promise<number> {
    const seen = await Promise.all(sidecars.map(async (s) => {
      for (;;) {
        const status = await verify(s, cookieValue);
        const ms = performance.now() - t0;
        if (status === 401) return ms;
        assert.equal(status, 200, 'only 200 (before) or 401 (after)');
        if (ms > 2000) return ms;
      }
    }));
    return Math.max(...seen);
  }

  it('logout (store.delete): every sidecar answers 401 within 100 ms', async function () {
    const { cookieValue, session } = await store.create(newSession({ sub: 'logout' }));
    await cachedEverywhere(cookieValue);
    await store.delete(session.id);
    const ms = await slowestRevocation(cookieValue, performance.now());
    assert.ok(ms <= REVOCATION_MS, `the slowest sidecar saw the logout after ${ms.toFixed(1)} ms`);
  });

  it('back-channel logout (store.deleteBySid): every sidecar answers 401 within 100 ms, for every session of the sid', async function () {
    const a = await store.create(newSession({ sub: 'bcl', sid: 'idp-session-1' }));
    const b = await store.create(newSession({ sub: 'bcl', sid: 'idp-session-1' }));
    await cachedEverywhere(a.cookieValue);
    await cachedEverywhere(b.cookieValue);
    assert.equal(await store.deleteBySid('dev', 'idp-session-1'), 2);
    const t0 = performance.now();
    const ms = Math.max(await slowestRevocation(a.cookieValue, t0), await slowestRevocation(b.cookieValue, t0));
    assert.ok(ms <= REVOCATION_MS, `the slowest sidecar saw the back-channel logout after ${ms.toFixed(1)} ms`);
  });

  it('a deletion without a broadcast is still seen once the cache entry ages out (TTL backstop)', async function () {
    const { cookieValue, session } = await store.create(newSession({ sub: 'silent' }));
    await cachedEverywhere(cookieValue);
    const c = redis.client();
    try {
      await c.del(storeKeys.session(session.id)); // behind the store's back: no invalidation
      const t0 = performance.now();
      for (const s of sidecars) assert.equal(await verify(s, cookieValue), 200, 'served from the cache');
      // Gone everywhere after at most one TTL (plus scheduling slack).
      for (;;) {
        const statuses = await Promise.all(sidecars.map((s) => verify(s, cookieValue)));
        if (statuses.every((x) => x === 401)) break;
        assert.ok(performance.now() - t0 < DEFAULT_SESSION_CACHE_TTL_MS + 500, `still served after ${Math.round(performance.now() - t0)} ms`);
        await sleep(50);
      }
    } finally {
      c.disconnect();
    }
  });

  it('a dropped invalidation feed empties the cache: nothing missed meanwhile is served', async function () {
    const { cookieValue, session } = await store.create(newSession({ sub: 'resync' }));
    await cachedEverywhere(cookieValue);
    const c = redis.client();
    try {
      // A deletion nobody hears about, then every subscriber connection dropped (what a network
      // blip or a Redis failover does): the sidecars must not trust what they cached before.
      await c.del(storeKeys.session(session.id));
      await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      const t0 = performance.now();
      for (const s of sidecars) {
        for (;;) {
          const status = await verify(s, cookieValue);
          if (status === 401) break;
          assert.equal(status, 200);
          assert.ok(performance.now() - t0 < 500, 'the cache was not emptied when the feed dropped');
          await sleep(10);
        }
      }
      // And the feed comes back by itself: revocations work again, from the cache.
      const fresh = await store.create(newSession({ sub: 'after-resync' }));
      for (const s of sidecars) await waitHealthy(`http://127.0.0.1:${s.port}/readyz`, s.child, 10_000);
      await cachedEverywhere(fresh.cookieValue);
      await store.delete(fresh.session.id);
      const ms = await slowestRevocation(fresh.cookieValue, performance.now());
      assert.ok(ms <= REVOCATION_MS, `after the feed came back, the slowest sidecar saw the logout after ${ms.toFixed(1)} ms`);
    } finally {
      c.disconnect();
    }
  });
});
