// The Redis store under faults, beyond the basics in contract.test.ts (one kill, one short stall):
// a full Redis (maxmemory + noeviction), repeated kill -9/restart cycles, long stalls under
// concurrency, Redis absent at start-up, and a restart with persistence. Every failure must be
// StoreUnavailable (503), fast, and the same store instance must heal on its own.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { StoreUnavailable } from '../../src/errors.ts';
import { CachingSessionStore, createSessionStore, KvSessionStore, storeKeys } from '../../src/session/index.ts';
import { RedisBackend } from '../../src/session/redis-backend.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';
import { silentLogger } from '../../src/log.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { fillUntilOom, withOne } from '../helpers/redis-faults.ts';
import { KEY_A, MIN, newSession, secrets, uniq } from './contract-suite.ts';

const opened: KvSessionStore[] = [];
function open(url: string, now?: () => number): KvSessionStore {
  const s = createSessionStore({ url, settings: { sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN }, now });
  opened.push(s);
  return s;
}

/** Asserts `p` rejects with StoreUnavailable within `ms`; returns the error. */
async function failsFast(p: Promise<unknown>, ms = 1000): Promise<StoreUnavailable> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    const took = performance.now() - t0;
    assert.ok(err instanceof StoreUnavailable, `expected StoreUnavailable, got ${String(err)}`);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'unavailable');
    assert.ok(took < ms, `failed after ${Math.round(took)} ms (limit ${ms})`);
    return err;
  }
  assert.fail('expected StoreUnavailable');
}

/** Polls until `op` succeeds; every failure in between must be StoreUnavailable. */
async function heals<T>(op: () => Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      assert.ok(err instanceof StoreUnavailable, String(err));
      if (Date.now() > deadline) throw new Error('the store did not heal in time');
      await sleep(100);
    }
  }
}

describe('session store under Redis faults', function () {
  this.timeout(30_000);
  afterEach(async function () {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  describe('a full Redis (maxmemory 2mb, noeviction)', function () {
    let redis: RedisServer;
    let probe: Redis;
    before(async function () {
      redis = await RedisServer.start(['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']);
      probe = redis.client();
    });
    after(async function () {
      probe?.disconnect();
      await redis?.stop();
    });

    it('refuses new sessions and other writes with a clear StoreUnavailable, keeps reads and deletes working, and recovers when memory frees up', async function () {
      let t = Date.now();
      const store = open(redis.url, () => t);
      const a = await store.create(newSession({ sid: `a-${uniq()}` }));
      const b = await store.create(newSession({ idp: `i-${uniq()}`, sid: 'b' }));
      assert.ok((await fillUntilOom(probe)) > 0);

      const err = await failsFast(store.create(newSession()));
      assert.equal(err.message, 'the session store is unavailable');
      assert.match(String((err.cause as Error)?.message), /^OOM command not allowed/, 'the cause says why, for the logs');
      await failsFast(store.updateSecrets(a.session.id, secrets()));
      await failsFast(store.tryLock(`refresh:${a.session.id}`, 10_000));
      await failsFast(store.putTransient('login', uniq(), 'tx', 10_000));
      await failsFast(store.markOnce('bcl-jti', uniq(), 10_000));

      // Reads go on: a plain read, and a read whose idle touch is due (the touch cannot be stored).
      assert.equal((await store.get(a.cookieValue))?.id, a.session.id);
      t += 10 * MIN;
      const touched = await store.get(a.cookieValue);
      assert.equal(touched?.id, a.session.id, 'a read that would record activity still answers');
      assert.equal((await store.getById(b.session.id))?.id, b.session.id);
      await store.ping();
      // Deleting frees memory and must work on a full Redis: logout and back-channel logout.
      assert.equal(await store.delete(a.session.id), true);
      assert.equal(await store.get(a.cookieValue), null);
      assert.equal(await store.deleteBySid(b.session.idp, 'b'), 1);

      await probe.flushall();
      const fresh = await heals(() => store.create(newSession()));
      assert.ok(await store.get(fresh.cookieValue), 'the same store works again by itself');
    });
  });

  describe('a killed and restarted Redis', function () {
    let redis: RedisServer;
    before(async function () {
      redis = await RedisServer.start();
    });
    after(async function () {
      await redis?.stop();
    });

    it('fails fast and heals, three kill -9 cycles in a row, invalidations included', async function () {
      const store = open(redis.url);
      const other = open(redis.url);
      const heard: string[] = [];
      other.onInvalidate((id) => heard.push(id));
      for (let cycle = 0; cycle < 3; cycle++) {
        const { cookieValue } = await heals(() => store.create(newSession()));
        await redis.kill();
        await failsFast(store.get(cookieValue));
        await failsFast(store.create(newSession()));
        await failsFast(store.ping());
        await redis.start();
        await heals(() => store.ping());
        await heals(() => other.ping()); // re-subscribed to invalidations
        const { session } = await heals(() => store.create(newSession()));
        await store.delete(session.id);
        const deadline = Date.now() + 1000;
        while (!heard.includes(session.id) && Date.now() < deadline) await sleep(5);
        assert.ok(heard.includes(session.id), `cycle ${cycle}: a delete after the restart reached the other instance`);
      }
    });

    it('reports the invalidation feed down the moment its subscriber connection closes, and live again once re-subscribed', async function () {
      // Whatever is published while the subscriber reconnects is lost: a cache must stop serving
      // (and empty itself) when the connection closes, not only when it is back. Killing only the
      // pub/sub connection leaves the command connection up, so nothing else reports the gap.
      const store = open(redis.url);
      await heals(() => store.ping());
      const live = Date.now() + 5000;
      while (!store.invalidationsLive) {
        assert.ok(Date.now() < live, 'never subscribed');
        await sleep(10);
      }
      const seen: boolean[] = [];
      store.onResync(() => seen.push(store.invalidationsLive));
      const c = redis.client();
      try {
        await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      } finally {
        c.disconnect();
      }
      const deadline = Date.now() + 5000;
      while (!seen.includes(true)) {
        assert.ok(Date.now() < deadline, `the feed never came back (states seen: ${seen.join(', ')})`);
        await sleep(10);
      }
      assert.deepEqual(seen, [false, true]);
    });

    it('works once Redis comes up for the first time (down when the store was created)', async function () {
      const late = new RedisServer(await freePort());
      try {
        const store = open(late.url);
        await failsFast(store.ping());
        await failsFast(store.create(newSession()));
        await late.start();
        const { cookieValue } = await heals(() => store.create(newSession()));
        assert.ok(await store.get(cookieValue));
      } finally {
        await late.stop();
      }
    });

    it('keeps sessions across a restart when Redis persists (appendonly, SIGTERM)', async function () {
      const durable = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
      try {
        const store = open(durable.url);
        const { cookieValue, session } = await store.create(newSession());
        await durable.kill('SIGTERM');
        await failsFast(store.get(cookieValue));
        await durable.start();
        assert.equal((await heals(() => store.get(cookieValue)))?.id, session.id);
      } finally {
        await durable.stop();
      }
    });
  });

  describe('a stalled Redis (SIGSTOP)', function () {
    let redis: RedisServer;
    before(async function () {
      redis = await RedisServer.start();
    });
    after(async function () {
      redis?.resume();
      await redis?.stop();
    });

    it('fails every one of 50 concurrent calls within 1 s, keeps failing fast past the socket timeout, and heals with the data intact', async function () {
      const store = open(redis.url);
      const { cookieValue, session } = await store.create(newSession());
      await store.ping();
      redis.pause();
      try {
        await Promise.all(Array.from({ length: 50 }, (_, i) => failsFast(i % 5 === 0 ? store.create(newSession()) : store.get(cookieValue))));
        // Past socketTimeout (6 x 500 ms) the stalled connection is recycled; calls still fail fast.
        const until = Date.now() + 3500;
        while (Date.now() < until) {
          await failsFast(store.get(cookieValue));
          await sleep(250);
        }
        await failsFast(store.ping());
      } finally {
        redis.resume();
      }
      const back = await heals(() => store.get(cookieValue));
      assert.equal(back?.id, session.id, 'nothing was lost: the process was only paused');
      assert.ok(await store.create(newSession()));
    });

    it('never reports a stalled read as "no session"', async function () {
      const store = open(redis.url);
      const { cookieValue } = await store.create(newSession());
      redis.pause();
      try {
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => store.get(cookieValue)));
        for (const r of results) {
          assert.equal(r.status, 'rejected', 'a stalled store must not answer null (that would log the user out)');
          assert.ok(r.reason instanceof StoreUnavailable);
        }
      } finally {
        redis.resume();
      }
      assert.ok(await heals(() => store.get(cookieValue)));
    });
  });

  describe('writes that land out of order (as on Redis Cluster)', function () {
    let redis: RedisServer;
    before(async function () {
      redis = await RedisServer.start();
    });
    after(async function () {
      await redis?.stop();
    });

    it('a session whose record is written late is still found by a back-channel logout of its user, however many sessions the user has', async function () {
      // On a Cluster the session's record and the user's index live on different nodes: writes
      // sent together land in no particular order. Here the record is sent 150 ms late.
      const backend = new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger });
      const late = withOne(backend, 'hashCreate', async (...args: Parameters<RedisBackend['hashCreate']>) => {
        await sleep(150);
        return backend.hashCreate(...args);
      });
      const bff = new KvSessionStore({ backend: late, sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN, log: silentLogger });
      opened.push(bff);
      const store = open(redis.url);
      const sub = `many-${uniq()}`;
      // Enough sessions that the next index write prunes the index (of members whose session is gone).
      for (let i = 0; i < 33; i++) await store.create(newSession({ sub, sid: undefined }));
      // Another sign-in of the user meanwhile: its index write prunes the index.
      const [{ session }] = await Promise.all([
        bff.create(newSession({ sub, sid: undefined })),
        sleep(50).then(() => store.create(newSession({ sub, sid: undefined }))),
      ]);
      await sleep(300); // the prune runs in the background
      assert.equal(await store.deleteBySub('dev', sub), 35);
      assert.equal(await store.getById(session.id), null, 'the newest session outlived its user\'s logout');
    });
  });

  describe('a deletion that fails halfway', function () {
    // What a sidecar's cache holds must end with the session, however the deletion went: a
    // logged-out session must not be served for the cache's TTL.
    let redis: RedisServer;
    before(async function () {
      redis = await RedisServer.start();
    });
    after(async function () {
      await redis?.stop();
    });

    async function cachedElsewhere(store: KvSessionStore) {
      const sidecar = new CachingSessionStore(open(redis.url), { ttlMs: 5000 });
      const { cookieValue, session } = await store.create(newSession({ sub: `half-${uniq()}`, sid: `sid-${uniq()}` }));
      // Cached once the sidecar's invalidation feed is up (until then it keeps nothing).
      const deadline = performance.now() + 5000;
      for (let found = sidecar.lookup(cookieValue); found instanceof Promise; found = sidecar.lookup(cookieValue)) {
        assert.equal((await found)?.id, session.id);
        assert.ok(performance.now() < deadline, 'never served from the cache');
        await sleep(20);
      }
      return { sidecar, cookieValue, session };
    }

    async function goneWithin(sidecar: CachingSessionStore, cookieValue: string, ms: number) {
      const deadline = performance.now() + ms;
      while (await sidecar.lookup(cookieValue) !== null) {
        assert.ok(performance.now() < deadline, `still served ${ms} ms after the deletion`);
        await sleep(5);
      }
    }

    it('an index that cannot be updated (a real Redis error) does not keep the session in any cache', async function () {
      const bff = open(redis.url);
      const { sidecar, cookieValue, session } = await cachedElsewhere(bff);
      const client = redis.client();
      try {
        await client.set(storeKeys.bySub(session.idp, session.sub), 'not a set'); // SREM: WRONGTYPE
        assert.equal(await bff.delete(session.id), true, 'the session is gone: a logout that happened');
        await goneWithin(sidecar, cookieValue, 100);
        assert.equal(await bff.getById(session.id), null);
      } finally {
        client.disconnect();
      }
      await sidecar.close();
    });

    it('a deletion that ran but failed to confirm is still announced to every cache', async function () {
      // As a write a replica did not confirm in time (WAIT) does: it ran on the master, and failed.
      const backend = new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger });
      const unconfirmed = withOne(backend, 'hashTake', async (...args: Parameters<RedisBackend['hashTake']>) => {
        await backend.hashTake(...args);
        throw new Error('write not confirmed by a replica (injected)');
      });
      const bff = new KvSessionStore({ backend: unconfirmed, sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN, log: silentLogger });
      opened.push(bff);
      const { sidecar, cookieValue, session } = await cachedElsewhere(bff);
      await failsFast(bff.delete(session.id));
      await goneWithin(sidecar, cookieValue, 100);
      await sidecar.close();
    });

    it('a deletion is announced by the delete itself: every cache drops it even when this process\'s link fails right after, with no PUBLISH of its own getting through', async function () {
      // This process's link to Redis fails once the delete has run (a blip, a command timeout):
      // its reply is lost and no separate PUBLISH can be sent, while the sidecars' links are fine
      // and their caches hold the session for up to 5 s. (With a PUBLISH sent after the delete,
      // the caches kept serving it for their TTL.)
      const backend = new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger });
      let publishes = 0;
      const cut = withOne(withOne(backend, 'hashTake', async (...args: Parameters<RedisBackend['hashTake']>) => {
        await backend.hashTake(...args);
        throw new Error('Connection is closed. (injected)');
      }), 'publish', async () => {
        publishes++;
        throw new Error('Connection is closed. (injected)');
      });
      const bff = new KvSessionStore({ backend: cut, sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN, log: silentLogger });
      opened.push(bff);
      const { sidecar, cookieValue, session } = await cachedElsewhere(bff);
      await failsFast(bff.delete(session.id));
      assert.ok(publishes >= 1, 'a PUBLISH of its own was tried, and failed');
      assert.equal(await bff.getById(session.id), null, 'the session is gone: a logout that happened');
      await goneWithin(sidecar, cookieValue, 100);
      await sidecar.close();
    });
  });
});

