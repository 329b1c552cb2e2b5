// The session store on a real Redis Cluster (3 masters, no replicas) through redis+cluster://:
// the whole store contract, hash-slot discipline, and /auth/verify on top of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { createSessionStore, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { keySlot } from '../../src/session/redis-backend.ts';
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
