// The session store on a Redis Cluster with replicas (3 masters + 3 replicas): the store contract
// again (writes now go through WAIT), durability of every confirmed write, and a master failing
// over in the middle of a run without losing a session, missing a read or letting verify say 401.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import { StoreUnavailable } from '../../src/errors.ts';
import { CachingSessionStore, createSessionStore, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { keySlot } from '../../src/session/redis-topology.ts';
import { silentLogger } from '../../src/log.ts';
import { loadSettings } from '../../src/config/env.ts';
import { RedisCluster, waitFor, withNode } from '../helpers/redis-cluster.ts';
import { startVerifyApp, verifyEnv, type RunningVerify } from '../helpers/verify-app.ts';
import { contract, newSession } from './contract-suite.ts';
import { lostSessions, runThroughFailover } from './failover-run.ts';
import { topologyHarness } from './topology-harness.ts';
import { storesOn } from './open-stores.ts';

describe('session store on Redis Cluster with replicas (3 masters + 3 replicas)', function () {
  this.timeout(30_000);
  let cluster: RedisCluster;
  let probe: Cluster;

  before(async function () {
    cluster = await RedisCluster.start({ masters: 3, replicas: 1 });
    probe = cluster.client();
  });
  after(async function () {
    probe?.disconnect();
    await cluster?.stop();
  });

  contract('redis cluster, 3 masters + 3 replicas', () => topologyHarness(
    () => cluster.url,
    (key) => probe.exists(key),
    () => cluster.commandStats(),
  ));

  describe('durability', function () {
    const open = storesOn(() => cluster);

    /** An IdP/sub pair whose index key lives in a slot served by master `port`. */
    async function subOnMaster(port: number): Promise<string> {
      for (let i = 0; ; i++) {
        if ((await cluster.masterOf(keySlot(storeKeys.bySub('dev', `u${i}`)))).port === port) return `u${i}`;
      }
    }

    /** A connected store, one master, its replica, and a sub whose index key that master serves. */
    async function shardUnderTest() {
      const store = open();
      await store.ping();
      const topo = await cluster.topology();
      const master = topo.find((n) => n.role === 'master')!;
      const replica = topo.find((n) => n.role === 'replica' && n.masterId === master.id)!;
      return { store, topo, master, replica, sub: await subOnMaster(master.port) };
    }

    it('a create resolves only once a replica holds the session: a stalled replica fails writes of its shard, never reads', async function () {
      const { store, topo, master, replica, sub } = await shardUnderTest();
      // A session stored on that very master, so the reads below go to the node whose write
      // connection is blocked in WAIT.
      let before = await store.create(newSession({ sub, sid: undefined }));
      while ((await cluster.masterOf(keySlot(storeKeys.session(before.session.id)))).port !== master.port) {
        before = await store.create(newSession({ sub, sid: undefined }));
      }

      // The replica's copy is there the moment create() resolved (no waiting, no polling).
      const { session } = await store.create(newSession({ sub, sid: undefined }));
      const slot = keySlot(storeKeys.session(session.id));
      const holder = (await cluster.masterOf(slot)).port;
      const holderReplica = topo.find((n) => n.role === 'replica' && n.masterId === topo.find((m) => m.port === holder)!.id)!;
      assert.equal(await withNode(holderReplica.port, async (c) => { await c.call('READONLY'); return c.exists(storeKeys.session(session.id)); }), 1);

      cluster.servers.find((s) => s.port === replica.port)!.pause(); // SIGSTOP: connected, silent
      try {
        const t0 = performance.now();
        // The create's WAIT now blocks the write connection until it gives up (500 ms)...
        const failing = assert.rejects(store.create(newSession({ sub, sid: undefined })), StoreUnavailable);
        await sleep(20);
        // ...while reads, on their own connection, are not queued behind it.
        for (let i = 0; i < 5; i++) {
          const t1 = performance.now();
          assert.equal((await store.get(before.cookieValue))?.id, before.session.id);
          assert.ok(performance.now() - t1 < 300, 'a read waited behind the blocked WAIT');
        }
        await failing;
        assert.ok(performance.now() - t0 < 1000, `failed in ${performance.now() - t0} ms`);
      } finally {
        cluster.servers.find((s) => s.port === replica.port)!.resume();
      }
      await waitFor('writes to heal', async () => {
        try {
          await store.create(newSession({ sub, sid: undefined }));
          return true;
        } catch {
          return false;
        }
      }, 10_000);
    });

    it('CLUSTER FAILOVER in the middle of a run: no confirmed session lost, no read misses, verify never 401s, heals by itself', async function () {
      const store = open();
      const sidecar: RunningVerify = await startVerifyApp(
        createSessionStore({ url: cluster.url, settings: loadSettings(verifyEnv(cluster.url)), log: silentLogger }),
        cluster.url,
      );
      try {
        // Fail over the master that holds the sidecar's own session, so verify is in the blast radius.
        const probeSession = await sidecar.login({ sub: 'probe' });
        const slot = keySlot(storeKeys.session(probeSession.id));
        let ports: [number, number] = [0, 0];
        const report = await runThroughFailover(store, async () => {
          ports = await cluster.failover(slot);
        }, { sidecar });
        assert.notEqual(ports[0], ports[1]);
        assert.equal((await cluster.masterOf(slot)).port, ports[1], 'the replica now serves the slot');
        const byPhase = (p: string) => report.confirmed.filter((c) => c.phase === p).length;
        assert.ok(byPhase('during') + byPhase('after') >= 10, `sessions created through the failover: ${JSON.stringify(report.confirmed.map((c) => c.phase))}`);
        assert.deepEqual(await lostSessions(store, report.confirmed), [], 'every confirmed session survives');
        assert.equal(report.misses, 0, 'a session that existed was never reported absent');
        for (const status of report.verifyStatuses.keys()) assert.ok(status === 200 || status === 503, `verify answered ${status}`);
        assert.ok((report.verifyStatuses.get(200) ?? 0) > 0);
        const after = await sidecar.verify('GET', '/api/orders/1', { Cookie: probeSession.cookie });
        assert.equal(after.status, 200, 'the session that lived on the failed-over master still verifies');
        assert.equal((await sidecar.get('/readyz')).status, 200);
      } finally {
        await sidecar.close();
      }
    });

    /** Pub/sub subscribers on every node, as `port/client-id`. */
    async function subscribers(): Promise<Set<string>> {
      const out = new Set<string>();
      for (const port of cluster.ports) {
        const list = await withNode(port, (c) => c.client('LIST') as Promise<string>);
        for (const line of list.split('\n')) if (/ sub=[1-9]/.test(line)) out.add(`${port}/${/^id=(\d+)/.exec(line)![1]}`);
      }
      return out;
    }

    it('a node that stalls while it holds a sidecar\'s subscriber: the cache stops serving within ~100 ms (no probe echoes, so it is not fresh), not its 5 s TTL', async function () {
      this.timeout(60_000);
      const topo = await cluster.topology();
      // ioredis puts a Cluster's subscriber on a random node: open stores until one is on a replica
      // (stalling a replica leaves every shard readable, so only the feed is hit).
      let inner: KvSessionStore | undefined;
      let port = 0;
      for (let i = 0; i < 30 && !inner; i++) {
        const before = await subscribers();
        const s = open();
        await s.ping();
        const mine = [...await subscribers()].filter((x) => !before.has(x));
        assert.equal(mine.length, 1, `one new subscriber (${mine.join(', ')})`);
        const p = Number(mine[0]!.split('/')[0]);
        if (topo.find((n) => n.port === p)!.role === 'replica') [inner, port] = [s, p];
      }
      assert.ok(inner, 'a subscriber on a replica');
      const stalledShard = topo.find((n) => n.port === port)!.masterId;
      const onStalledShard = (key: string) => topo.find((n) => n.role === 'master' && n.slots.some(([a, b]) => keySlot(key) >= a && keySlot(key) <= b))!.id === stalledShard;
      let i = 0;
      while (onStalledShard(storeKeys.bySub('dev', `deaf${i}`)) || onStalledShard(storeKeys.bySid('dev', `deaf-sid${i}`))) i++;
      const bff = open();
      const create = async () => {
        for (;;) {
          const c = await bff.create(newSession({ sub: `deaf${i}`, sid: `deaf-sid${i}` }));
          if (!onStalledShard(storeKeys.session(c.session.id))) return c;
        }
      };
      const cache = new CachingSessionStore(inner, { ttlMs: 5000 }); // the sidecar's defaults, heartbeat on
      try {
        const served = async (cookie: string) => {
          for (let tries = 0; tries < 100; tries++) {
            const found = cache.lookup(cookie);
            if (!(found instanceof Promise)) return found;
            await found;
            await sleep(20);
          }
          assert.fail('never served from the cache');
        };
        // Healthy feed: a deletion elsewhere empties the cache at once.
        const control = await create();
        assert.ok(await served(control.cookieValue));
        await bff.delete(control.session.id);
        await sleep(100);
        assert.equal(await cache.lookup(control.cookieValue), null, 'invalidated within 100 ms');

        const victim = await create();
        assert.ok(await served(victim.cookieValue));
        cluster.servers.find((s) => s.port === port)!.pause();
        await bff.delete(victim.session.id); // a logout, while the sidecar's feed is deaf
        const t0 = performance.now();
        let last = -1;
        while (performance.now() - t0 < 2000) {
          const r = cache.lookup(victim.cookieValue);
          if (!(r instanceof Promise) && r !== null) last = performance.now() - t0;
          else if (r instanceof Promise) r.catch(() => undefined);
          await sleep(20);
        }
        assert.ok(last < 1000, `the deleted session was served ${Math.round(last)} ms after the deletion`);
        assert.equal(inner.invalidationsLive, true, 'the subscriber\'s connection never said it was down');
      } finally {
        cluster.servers.find((s) => s.port === port)!.resume();
        await cache.close();
      }
    });

    it('a logout during a resharding: a session whose slot is being migrated, already moved to the new master (ASK), is deleted', async function () {
      // redis-cli --cluster reshard moves a slot key by key: meanwhile the old master answers ASK
      // for the keys that have moved. A back-channel logout refused there is not sent again.
      const store = open();
      const { cookieValue, session } = await store.create(newSession({ sub: `ask-${Date.now()}` }));
      const key = storeKeys.session(session.id);
      const slot = keySlot(key);
      const topo = await cluster.topology();
      const from = await cluster.masterOf(slot);
      const to = topo.find((n) => n.role === 'master' && n.id !== from.id)!;
      await withNode(to.port, (c) => c.cluster('SETSLOT', slot, 'IMPORTING', from.id));
      await withNode(from.port, (c) => c.cluster('SETSLOT', slot, 'MIGRATING', to.id));
      try {
        await withNode(from.port, (c) => c.migrate('127.0.0.1', to.port, '', 0, 5000, 'KEYS', key));
        // The importing master answers for the slot only after ASKING.
        const onNewMaster = () => withNode(to.port, async (c) => { await c.call('ASKING'); return c.exists(key); });
        assert.equal(await onNewMaster(), 1, 'the session moved ahead of its slot');
        assert.equal(await store.delete(session.id), true, 'the logout went through');
        assert.equal(await onNewMaster(), 0);
        assert.equal(await store.get(cookieValue), null);
      } finally {
        for (const n of [from, to]) await withNode(n.port, (c) => c.cluster('SETSLOT', slot, 'STABLE'));
      }
    });

    it('a dead replica: writes of its shard fail closed at first, then heal on their own once the cluster marks it failed', async function () {
      this.timeout(40_000);
      const { store, master, replica, sub } = await shardUnderTest();
      const existing = await store.create(newSession({ sub, sid: undefined }));
      const server = cluster.servers.find((s) => s.port === replica.port)!;
      await server.kill();
      try {
        await assert.rejects(store.create(newSession({ sub, sid: undefined })), StoreUnavailable);
        assert.equal((await store.get(existing.cookieValue))?.id, existing.session.id, 'reads keep working');
        // cluster-node-timeout (5 s) marks it failed, CLUSTER SLOTS drops it, the client refreshes.
        await waitFor('writes to resume without the dead replica', async () => {
          try {
            await store.create(newSession({ sub, sid: undefined }));
            return true;
          } catch (err) {
            assert.ok(err instanceof StoreUnavailable);
            return false;
          }
        }, 25_000, 250);
      } finally {
        await server.start();
        await cluster.waitSettled();
      }
      const { cookieValue } = await store.create(newSession({ sub, sid: undefined }));
      assert.ok(await store.get(cookieValue));
    });
  });
});
