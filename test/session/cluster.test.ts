// The session store on a real Redis Cluster (3 masters, no replicas) through redis+cluster://:
// the whole store contract, hash-slot discipline, and /auth/verify on top of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { CachingSessionStore, createSessionStore, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { keySlot } from '../../src/session/redis-topology.ts';
import { silentLogger } from '../../src/log.ts';
import { loadSettings } from '../../src/config/env.ts';
import { RedisCluster, withNode } from '../helpers/redis-cluster.ts';
import { startVerifyApp, verifyEnv, type RunningVerify } from '../helpers/verify-app.ts';
import { itServesVerifyProcesses } from '../helpers/verify-process.ts';
import { contract, newSession } from './contract-suite.ts';
import { topologyHarness } from './topology-harness.ts';

/** CROSSSLOT errors over all nodes: any multi-key command across slots would show here. */
async function crossSlotErrors(cluster: RedisCluster): Promise<number> {
  let n = 0;
  for (const port of cluster.ports) {
    const info = await withNode(port, (c) => c.info('errorstats'));
    n += Number(/errorstat_CROSSSLOT:count=(\d+)/.exec(info)?.[1] ?? 0);
  }
  return n;
}

describe('session store on Redis Cluster (3 masters)', function () {
  this.timeout(30_000);
  let cluster: RedisCluster;
  let probe: Cluster;

  before(async function () {
    cluster = await RedisCluster.start({ masters: 3, replicas: 0 });
    probe = cluster.client();
  });
  after(async function () {
    probe?.disconnect();
    await cluster?.stop();
  });

  contract('redis cluster, 3 masters', () => topologyHarness(
    () => cluster.url,
    (key) => probe.exists(key),
    () => cluster.commandStats(),
  ));

  describe('hash slots', function () {
    it('computes slots exactly as CLUSTER KEYSLOT does, hash tags included', async function () {
      const id = randomBytes(32).toString('base64url');
      const keys = [
        storeKeys.session(id), storeKeys.bySid('dev', 'sid-1'), storeKeys.bySub('dev', 'alice'),
        storeKeys.lock(`refresh:${id}`), storeKeys.transient('login', 'state'), storeKeys.once('bcl-jti', 'dev:jti'),
        'plain', '{}', '{}x', 'a{b}c{d}', 'a{}{b}', '{', '}{', 'zoë{ünïcode}', '',
      ];
      for (const k of keys) assert.equal(keySlot(k), await cluster.keyslot(k), k);
    });

    it('keeps each record in the slot of its own tag, so no name can move it or forge a tag', async function () {
      const id = randomBytes(32).toString('base64url');
      // The session hash is placed by its storage id alone.
      assert.equal(await cluster.keyslot(storeKeys.session(id)), await cluster.keyslot(id));
      // Names are percent-encoded: braces in an IdP, sid or sub cannot open or close a tag.
      for (const [idp, v] of [['a}{b', 'x'], ['dev', '{evil}'], ['{', '}'], ['dev', 'a}b{c']]) {
        const bySid = storeKeys.bySid(idp!, v!);
        assert.equal((bySid.match(/[{}]/g) ?? []).length, 2, bySid);
        const inner = bySid.slice(bySid.indexOf('{') + 1, bySid.lastIndexOf('}'));
        assert.equal(await cluster.keyslot(bySid), await cluster.keyslot(inner), bySid);
        assert.equal(inner, `${encodeURIComponent(idp!)}:${encodeURIComponent(v!)}`);
      }
    });

    it('never sends a multi-key command across slots (no CROSSSLOT, after the whole contract)', async function () {
      // Runs after the contract suite above: every store operation has been exercised by then.
      const store = createSessionStore({ url: cluster.url, settings: { sessionKeys: [randomBytes(32)], sessionIdleMs: 60_000, sessionMaxMs: 120_000 } });
      try {
        const { session } = await store.create(newSession());
        await store.deleteBySub(session.idp, session.sub);
      } finally {
        await store.close();
      }
      assert.equal(await crossSlotErrors(cluster), 0);
    });

    it('spreads sessions over all three masters', async function () {
      const store = createSessionStore({ url: cluster.url, settings: { sessionKeys: [randomBytes(32)], sessionIdleMs: 60_000, sessionMaxMs: 120_000 } });
      try {
        const owners = new Set<number>();
        for (let i = 0; i < 30; i++) {
          const { session } = await store.create(newSession({ sid: undefined }));
          owners.add((await cluster.masterOf(keySlot(storeKeys.session(session.id)))).port);
        }
        assert.equal(owners.size, 3);
      } finally {
        await store.close();
      }
    });
  });

  describe('the invalidation feed on a cluster', function () {
    it('a subscriber connection that drops empties the session cache: an invalidation missed meanwhile is not served for the TTL', async function () {
      // ioredis moves a Cluster's subscriber to another node by itself and re-subscribes, without
      // a word to its owner: what was published in between is lost. Here the missed message is a
      // deletion behind the store's back, then every subscriber connection is cut (a network blip,
      // a node restart, CLIENT KILL): as on a standalone Redis, the cache must not trust what it held.
      const settings = { sessionKeys: [randomBytes(32)], sessionIdleMs: 60_000, sessionMaxMs: 120_000 };
      const bff = createSessionStore({ url: cluster.url, settings, log: silentLogger });
      const cache = new CachingSessionStore(createSessionStore({ url: cluster.url, settings, log: silentLogger }), { ttlMs: 5000 });
      try {
        const { cookieValue, session } = await bff.create(newSession({ sub: 'feed-drop' }));
        const deadline = performance.now() + 5000;
        for (let found = cache.lookup(cookieValue); found instanceof Promise; found = cache.lookup(cookieValue)) {
          assert.equal((await found)?.id, session.id);
          assert.ok(performance.now() < deadline, 'never served from the cache');
          await sleep(20);
        }
        await probe.del(storeKeys.session(session.id)); // a deletion whose message never arrives
        for (const port of cluster.ports) await withNode(port, (c) => c.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
        const t0 = performance.now();
        for (;;) {
          const r = cache.lookup(cookieValue);
          const s = r instanceof Promise ? await r.catch(() => 'error' as const) : r;
          if (s === null) break;
          assert.ok(performance.now() - t0 < 500, `the deleted session is still served ${Math.round(performance.now() - t0)} ms after the feed dropped`);
          await sleep(10);
        }
        // And the feed is back: a deletion through the store reaches the cache again at once.
        const fresh = await bff.create(newSession({ sub: 'feed-back' }));
        const until = performance.now() + 5000;
        for (let found = cache.lookup(fresh.cookieValue); found instanceof Promise; found = cache.lookup(fresh.cookieValue)) {
          await found.catch(() => undefined);
          assert.ok(performance.now() < until, 'the cache never trusted its feed again');
          await sleep(20);
        }
        await bff.delete(fresh.session.id);
        await sleep(100);
        assert.equal(await cache.lookup(fresh.cookieValue), null);
      } finally {
        await cache.close();
        await bff.close();
      }
    });

    /**
     * A sidecar's cache (heartbeat on) over its own store, the BFF's store, and a session it has
     * cached that lives on a master other than the one holding the sidecar's subscriber (so that
     * the feed itself never drops when that master fails).
     */
    async function cachedOffTheFeed(tag: string) {
      const settings = { sessionKeys: [randomBytes(32)], sessionIdleMs: 60_000, sessionMaxMs: 120_000 };
      const bff = createSessionStore({ url: cluster.url, settings, log: silentLogger });
      const subscribersNow = async () => {
        const out = new Set<string>();
        for (const port of cluster.ports) {
          const list = await withNode(port, (c) => c.client('LIST') as Promise<string>);
          for (const line of list.split('\n')) if (/ sub=[1-9]/.test(line)) out.add(`${port}/${/^id=(\d+)/.exec(line)![1]}`);
        }
        return out;
      };
      await bff.ping();
      const before = await subscribersNow();
      const inner = createSessionStore({ url: cluster.url, settings, log: silentLogger });
      await inner.ping();
      const subPorts = new Set([...await subscribersNow()].filter((x) => !before.has(x)).map((x) => Number(x.split('/')[0])));
      const cache = new CachingSessionStore(inner, { ttlMs: 5000 });
      const topo = await cluster.topology();
      let victim: Awaited<ReturnType<KvSessionStore['create']>> | undefined;
      let port = 0;
      for (let i = 0; i < 50 && !victim; i++) {
        const c = await bff.create(newSession({ sub: `${tag}-${i}`, sid: undefined }));
        const slot = keySlot(storeKeys.session(c.session.id));
        const owner = topo.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b))!;
        if (!subPorts.has(owner.port)) [victim, port] = [c, owner.port];
      }
      assert.ok(victim, 'a session on a master that does not hold the sidecar\'s subscriber');
      const deadline = performance.now() + 5000;
      for (let found = cache.lookup(victim.cookieValue); found instanceof Promise; found = cache.lookup(victim.cookieValue)) {
        assert.equal((await found)?.id, victim.session.id);
        assert.ok(performance.now() < deadline, 'never served from the cache');
        await sleep(20);
      }
      const server = cluster.servers.find((s) => s.port === port)!;
      return { bff, cache, victim, server, close: async () => { await cache.close(); await bff.close(); } };
    }

    /** The last time within `ms` of now that the cache answered `cookie` from memory (-1: never). */
    async function lastServedFromMemory(cache: CachingSessionStore, cookie: string, ms: number): Promise<number> {
      const t0 = performance.now();
      let last = -1;
      while (performance.now() - t0 < ms) {
        const r = cache.lookup(cookie);
        if (!(r instanceof Promise) && r !== null) last = performance.now() - t0;
        else if (r instanceof Promise) r.catch(() => undefined);
        await sleep(20);
      }
      return last;
    }

    it('a master that is killed and comes back empty: its sessions stop being served from any cache at once, not after the TTL', async function () {
      // Redis without persistence: a restarted master keeps its slots (nodes.conf) but not its
      // data. The sidecar's subscriber sits on another node, so its feed never drops; the sessions
      // of that shard must still not be answered from memory while it is gone, nor after.
      const w = await cachedOffTheFeed('empty');
      try {
        await w.server.kill();
        const restarted = w.server.start(); // back at once, empty
        const last = await lastServedFromMemory(w.cache, w.victim.cookieValue, 2000);
        await restarted;
        assert.ok(last < 1000, `a session of the killed master was answered from memory ${Math.round(last)} ms after the kill`);
        // Once the master answers again, the session is gone (never an error taken for "absent" before).
        const deadline = performance.now() + 10_000;
        for (;;) {
          const r = w.cache.lookup(w.victim.cookieValue);
          const s = r instanceof Promise ? await r.catch(() => 'error' as const) : r;
          if (s === null) break;
          assert.equal(s, 'error', 'the vanished session was served');
          assert.ok(performance.now() < deadline, 'the restarted master never answered');
          await sleep(50);
        }
      } finally {
        if (!w.server.proc) await w.server.start();
        await cluster.waitSettled();
        await w.close();
      }
    });
  });

  itServesVerifyProcesses('redis+cluster://', () => cluster.url);

  describe('/auth/verify on the cluster store', function () {
    let store: KvSessionStore;
    let sidecar: RunningVerify;
    before(async function () {
      store = createSessionStore({ url: cluster.url, settings: loadSettings(verifyEnv(cluster.url)), log: silentLogger });
      sidecar = await startVerifyApp(store, cluster.url);
    });
    after(async function () {
      await sidecar?.close();
      await store?.close();
    });

    it('allows a session stored in the cluster (200 with the upstream headers), denies without one', async function () {
      const { cookie } = await sidecar.login({ sub: 'carol', roles: ['reader'] });
      const ok = await sidecar.verify('GET', '/api/orders/42', { Cookie: cookie });
      assert.equal(ok.status, 200, ok.body);
      assert.match(String(ok.headers.authorization), /^Bearer at-carol-/);
      assert.equal(ok.headers['x-auth-user'], 'carol');
      assert.equal((await sidecar.verify('GET', '/api/orders/42')).status, 401);
      assert.equal((await sidecar.get('/readyz')).status, 200);
    });
  });
});
