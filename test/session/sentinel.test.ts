// The session store on a real Redis Sentinel deployment (1 master, 1 replica, 3 sentinels) through
// redis+sentinel://: the whole store contract, /auth/verify on top of it, the replica rules for
// durable writes, and failovers (planned and kill -9) in the middle of a run without losing a
// confirmed session.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { StoreUnavailable } from '../../src/errors.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { guarded } from '../../src/session/redis-connect.ts';
import { silentLogger } from '../../src/log.ts';
import { loadSettings } from '../../src/config/env.ts';
import { waitFor, withNode } from '../helpers/redis-cluster.ts';
import { RedisSentinel } from '../helpers/redis-sentinel.ts';
import { startVerifyApp, verifyEnv, type RunningVerify } from '../helpers/verify-app.ts';
import { itServesVerifyProcesses } from '../helpers/verify-process.ts';
import { contract, newSession } from './contract-suite.ts';
import { lostSessions, runThroughFailover } from './failover-run.ts';
import { topologyHarness } from './topology-harness.ts';
import { storesOn } from './open-stores.ts';

describe('session store on Redis Sentinel (1 master, 1 replica, 3 sentinels)', function () {
  this.timeout(30_000);
  let deployment: RedisSentinel;
  let probe: Redis;

  before(async function () {
    deployment = await RedisSentinel.start({ replicas: 1, sentinels: 3, downAfterMs: 2000 });
    // The probe follows the master through Sentinel too; guarded as the store's clients are, or
    // its failover detector's connections to the sentinels would go unheard.
    probe = guarded(new Redis({
      sentinels: deployment.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), name: deployment.name, failoverDetector: true, lazyConnect: true,
    })).client;
    probe.on('error', () => {});
    probe.connect().catch(() => { /* its commands say so */ });
  });
  after(async function () {
    probe?.disconnect();
    await deployment?.stop();
  });

  contract('redis sentinel', () => topologyHarness(
    () => deployment.url,
    (key) => probe.exists(key),
    async () => {
      const out = new Map<string, number>();
      for (const s of deployment.servers.filter((x) => x.proc)) {
        const info = await withNode(s.port, (c) => c.info('commandstats'));
        for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
      }
      return out;
    },
  ));

  describe('/auth/verify on the sentinel store', function () {
    it('allows a session stored through Sentinel, denies without one, and is ready', async function () {
      const store = createSessionStore({ url: deployment.url, settings: loadSettings(verifyEnv(deployment.url)), log: silentLogger });
      const sidecar = await startVerifyApp(store, deployment.url);
      try {
        const { cookie } = await sidecar.login({ sub: 'sam', roles: ['reader'] });
        const ok = await sidecar.verify('GET', '/api/orders/9', { Cookie: cookie });
        assert.equal(ok.status, 200, ok.body);
        assert.match(String(ok.headers.authorization), /^Bearer at-sam-/);
        assert.equal(ok.headers['x-auth-user'], 'sam');
        assert.equal((await sidecar.verify('GET', '/api/orders/9')).status, 401);
        assert.equal((await sidecar.get('/readyz')).status, 200);
      } finally {
        await sidecar.close();
        await store.close();
      }
    });
  });

  itServesVerifyProcesses('redis+sentinel://', () => deployment.url);

  describe('durability and failover', function () {
    const open = storesOn(() => deployment);

    const replicaServer = async () => {
      const master = await deployment.masterPort();
      return deployment.servers.find((s) => s.proc && s.port !== master)!;
    };
    const created = async (store: KvSessionStore) => {
      try {
        await store.create(newSession());
        return true;
      } catch (err) {
        assert.ok(err instanceof StoreUnavailable, String(err));
        return false;
      }
    };

    it('a create resolves only once the replica holds it: a stalled replica fails writes fast, never reads', async function () {
      const store = open();
      await store.ping();
      await waitFor('a write confirmed by the replica', () => created(store)); // Sentinel's view is polled
      const existing = await store.create(newSession());
      const { session } = await store.create(newSession());
      const replica = await replicaServer();
      assert.equal(await withNode(replica.port, (c) => c.exists(`gp:s:{${session.id}}`)), 1, 'on the replica when create() resolved');

      replica.pause(); // SIGSTOP: Sentinel still lists it as in sync for down-after-milliseconds
      try {
        const t0 = performance.now();
        // The create's WAIT now blocks the write connection until it gives up (500 ms)...
        const failing = assert.rejects(store.create(newSession()), StoreUnavailable);
        await sleep(20);
        // ...while reads, on their own connection, are not queued behind it.
        for (let i = 0; i < 5; i++) {
          const t1 = performance.now();
          assert.equal((await store.get(existing.cookieValue))?.id, existing.session.id);
          assert.ok(performance.now() - t1 < 300, 'a read waited behind the blocked WAIT');
        }
        await failing;
        assert.ok(performance.now() - t0 < 1000, `failed in ${performance.now() - t0} ms`);
      } finally {
        replica.resume();
      }
      await waitFor('writes to heal', () => created(store), 10_000);
    });

    it('a lock whose write a stalled replica did not confirm is not left behind: the next tryLock gets it', async function () {
      const store = open();
      await store.ping();
      await waitFor('a write confirmed by the replica', () => created(store));
      const replica = await replicaServer();
      const name = `refresh:${Math.random()}`;
      replica.pause();
      try {
        await assert.rejects(store.tryLock(name, 15_000), StoreUnavailable);
      } finally {
        replica.resume();
      }
      await waitFor('writes to heal', () => created(store), 10_000);
      const token = await store.tryLock(name, 15_000);
      assert.ok(token, 'the unconfirmed lock was released, not held for its 15 s');
      await store.unlock(name, token);
    });

    it('a dead replica: writes fail closed at first, then go on without it once Sentinel marks it down; it rejoins', async function () {
      const store = open();
      await waitFor('a write confirmed by the replica', () => created(store));
      const existing = await store.create(newSession());
      const replica = await replicaServer();
      await replica.kill();
      try {
        await assert.rejects(store.create(newSession()), StoreUnavailable);
        assert.equal((await store.get(existing.cookieValue))?.id, existing.session.id, 'reads keep working');
        // down-after-milliseconds (2 s) + one poll of Sentinel's view.
        await waitFor('writes to resume without the dead replica', () => created(store), 15_000, 200);
      } finally {
        await replica.start();
      }
      await deployment.waitSettled();
      await waitFor('writes confirmed by the returned replica', () => created(store), 10_000);
      const s = await store.create(newSession());
      await waitFor('the new write on the replica', async () => (await withNode(replica.port, (c) => c.exists(`gp:s:{${s.session.id}}`))) === 1, 2000);
    });

    it('SENTINEL FAILOVER in the middle of a run: no confirmed session lost, no read misses, verify never 401s, heals by itself', async function () {
      const store = open();
      const sidecar: RunningVerify = await startVerifyApp(
        createSessionStore({ url: deployment.url, settings: loadSettings(verifyEnv(deployment.url)), log: silentLogger }),
        deployment.url,
      );
      try {
        await waitFor('a write confirmed by the replica', () => created(store));
        let ports: [number, number] = [0, 0];
        const report = await runThroughFailover(store, async () => {
          ports = await deployment.failover();
        }, { sidecar });
        assert.notEqual(ports[0], ports[1]);
        assert.equal(await deployment.masterPort(), ports[1]);
        assert.ok(report.confirmed.filter((c) => c.phase !== 'before').length >= 10);
        assert.deepEqual(await lostSessions(store, report.confirmed), [], 'every confirmed session survives');
        assert.equal(report.misses, 0, 'a session that existed was never reported absent');
        for (const status of report.verifyStatuses.keys()) assert.ok(status === 200 || status === 503, `verify answered ${status}`);
        assert.ok((report.verifyStatuses.get(200) ?? 0) > 0);
        assert.equal((await sidecar.get('/readyz')).status, 200);
        // The old master rejoins as a replica; what it held before is gone, what matters survived.
        await deployment.waitSettled();
        assert.deepEqual(await lostSessions(store, report.confirmed), [], 'still all there once the old master is a replica');
      } finally {
        await sidecar.close();
      }
    });

    it('kill -9 of the master in the middle of a run: elected failover, no confirmed session lost', async function () {
      this.timeout(45_000);
      const store = open();
      await waitFor('a write confirmed by the replica', () => created(store));
      let ports: [number, number] = [0, 0];
      const report = await runThroughFailover(store, async () => {
        ports = await deployment.killMaster();
      });
      assert.notEqual(ports[0], ports[1]);
      assert.ok(report.failedCreates > 0, 'writes failed while there was no master');
      assert.ok(report.confirmed.filter((c) => c.phase === 'after').length >= 10, 'and resumed on the new master by themselves');
      assert.deepEqual(await lostSessions(store, report.confirmed), []);
      assert.equal(report.misses, 0);
      await deployment.server(ports[0]).start(); // comes back as master, Sentinel demotes it
      await deployment.waitSettled();
    });
  });
});
