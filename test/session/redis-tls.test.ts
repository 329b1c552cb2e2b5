// The session store over TLS against real TLS-only Redis deployments (no plain port at all), with a
// throwaway CA made by openssl at test time: rediss:// (standalone), rediss+sentinel:// and
// rediss+cluster://. Each runs the store contract with the CA trusted as REDIS_TLS_CA_FILE gives
// it, and refuses a server whose certificate chains to another CA: the store is unavailable (fails
// closed), never connected some other way.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailable } from '../../src/errors.ts';
import { CachingSessionStore, createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { makeTestPki, type TestPki } from '../helpers/idp-tls.ts';
import { RedisServer } from '../helpers/redis.ts';
import { RedisCluster, waitFor, withNode } from '../helpers/redis-cluster.ts';
import { RedisSentinel } from '../helpers/redis-sentinel.ts';
import { itServesVerifyProcesses } from '../helpers/verify-process.ts';
import { contract, newSession } from './contract-suite.ts';
import { topologyHarness } from './topology-harness.ts';

/** INFO commandstats of the data nodes on `ports`, summed. */
async function commandStats(ports: readonly number[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const port of ports) {
    const info = await withNode(port, (c) => c.info('commandstats'));
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

const settings = (redisTlsCa: string | undefined) => ({ sessionKeys: [randomBytes(32)], sessionIdleMs: 60_000, sessionMaxMs: 120_000, redisTlsCa });

/** A store on `url` trusting `ca` reports unavailable for reads and writes, and for /readyz's ping. */
async function assertRefused(url: string, ca: string | undefined): Promise<void> {
  const store = createSessionStore({ url, settings: settings(ca), log: silentLogger, commandTimeoutMs: 500 });
  try {
    // More than one attempt: ioredis reconnects on its own, and none of them may get through.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(store.ping(), StoreUnavailable);
      await assert.rejects(store.create(newSession()), StoreUnavailable);
      await assert.rejects(store.getById(randomBytes(32).toString('base64url')), StoreUnavailable);
      await sleep(150);
    }
  } finally {
    await store.close();
  }
}

/** A session created through one store on `url` reads back through another. */
async function assertRoundTrip(url: string, ca: string): Promise<void> {
  const s = settings(ca);
  const writer = createSessionStore({ url, settings: s, log: silentLogger, commandTimeoutMs: 2000 });
  const reader = createSessionStore({ url, settings: s, log: silentLogger, commandTimeoutMs: 2000 });
  try {
    const { cookieValue, session } = await writer.create(newSession({ sub: 'tls-user' }));
    assert.equal((await reader.get(cookieValue))?.sub, 'tls-user');
    await writer.delete(session.id);
    assert.equal(await reader.get(cookieValue), null);
  } finally {
    await writer.close();
    await reader.close();
  }
}

describe('session store over TLS (real TLS-only Redis, private CA)', function () {
  this.timeout(30_000);
  let pki: TestPki;
  /** Another CA, with a certificate for the same names: what the servers present is NOT from it. */
  let stranger: TestPki;

  before(function () {
    // clientAuth too: cluster nodes present it to each other on the cluster bus.
    pki = makeTestPki('goldpath-client', { serverEku: 'serverAuth,clientAuth' });
    stranger = makeTestPki();
  });
  after(function () {
    pki?.cleanup();
    stranger?.cleanup();
  });

  describe('rediss:// (standalone)', function () {
    let server: RedisServer;
    let probe: Redis;

    before(async function () {
      server = await RedisServer.start([], { tls: pki });
      probe = server.client();
    });
    after(async function () {
      probe?.disconnect();
      await server?.stop();
    });

    it('the server speaks TLS only: the URL is rediss://, and a plain client gets nowhere', async function () {
      assert.match(server.url, /^rediss:\/\/127\.0\.0\.1:\d+$/);
      await assertRefused(server.url.replace(/^rediss:/, 'redis:'), undefined);
    });

    contract('rediss://', () => topologyHarness(() => server.url, (key) => probe.exists(key), () => commandStats([server.port]), { redisTlsCa: pki.caCert }));

    it('a session written over TLS reads back through another store', async function () {
      await assertRoundTrip(server.url, pki.caCert);
    });

    it('the invalidation feed works over TLS: a deletion by another store empties the session cache at once', async function () {
      const s = settings(pki.caCert);
      const bff = createSessionStore({ url: server.url, settings: s, log: silentLogger });
      const cache = new CachingSessionStore(createSessionStore({ url: server.url, settings: s, log: silentLogger }), { ttlMs: 5000 });
      try {
        const { cookieValue, session } = await bff.create(newSession({ sub: 'feed-tls' }));
        // Until the cache answers from memory (it trusts its feed once subscribed).
        const deadline = performance.now() + 5000;
        for (let found = cache.lookup(cookieValue); found instanceof Promise; found = cache.lookup(cookieValue)) {
          assert.equal((await found)?.id, session.id);
          assert.ok(performance.now() < deadline, 'never served from the cache: the feed never came up over TLS');
          await sleep(20);
        }
        await bff.delete(session.id); // published on the TLS connection, received on the cache's
        await waitFor('the deletion to reach the cache', async () => {
          const r = cache.lookup(cookieValue);
          return (r instanceof Promise ? await r : r) === null;
        }, 1000, 10);
      } finally {
        await cache.close();
        await bff.close();
      }
    });

    it('refuses a server whose certificate chains to another CA: unavailable, never plain text', async function () {
      const before = (await server.commandCalls()).ping ?? 0;
      await assertRefused(server.url, stranger.caCert);
      // Nothing of the refused store reached the server (this probe's INFO aside).
      assert.equal((await server.commandCalls()).ping ?? 0, before);
    });

    it('without a CA setting, Node\'s CAs: the private CA is not trusted', async function () {
      await assertRefused(server.url, undefined);
    });

    it('refuses a server whose certificate, from the trusted CA, does not name the host of the URL', async function () {
      const elsewhere = makeTestPki('goldpath-client', { san: 'DNS:redis.example' });
      const named = await RedisServer.start([], { tls: elsewhere, tlsName: 'redis.example' });
      try {
        await assertRefused(named.url, elsewhere.caCert);
        // Node checks the name once the handshake is done and destroys the socket; a TLS alert
        // from the server read meanwhile is a second error on it, which ioredis (listening with
        // once()) did not hear: it was thrown from the event loop, ending the process (mocha:
        // "Uncaught Error"). It takes many sockets to happen: a few hundred, new ones.
        for (const until = performance.now() + 3000; performance.now() < until;) {
          const stores = Array.from({ length: 10 }, () => createSessionStore({ url: named.url, settings: settings(elsewhere.caCert), log: silentLogger }));
          try {
            await Promise.all(stores.map((store) => assert.rejects(store.ping(), StoreUnavailable)));
          } finally {
            await Promise.all(stores.map((store) => store.close()));
          }
        }
      } finally {
        await named.stop();
        elsewhere.cleanup();
      }
    });

    it('rediss:// to a plain-text server fails closed: TLS is never dropped for plain text', async function () {
      const plain = await RedisServer.start();
      try {
        const before = (await plain.commandCalls()).ping ?? 0;
        await assertRefused(`rediss://127.0.0.1:${plain.port}`, pki.caCert);
        assert.equal((await plain.commandCalls()).ping ?? 0, before, 'a command reached the plain server');
      } finally {
        await plain.stop();
      }
    });

    itServesVerifyProcesses('rediss:// and REDIS_TLS_CA_FILE', () => server.url, () => ({ REDIS_TLS_CA_FILE: pki.caCertPath }));
  });

  describe('rediss+sentinel:// (1 master, 1 replica, 3 sentinels, all TLS only)', function () {
    let deployment: RedisSentinel;

    before(async function () {
      deployment = await RedisSentinel.start({ replicas: 1, sentinels: 3, downAfterMs: 2000, tls: pki });
    });
    after(async function () {
      await deployment?.stop();
    });

    it('is reached through the sentinels: a session written is read back', async function () {
      assert.match(deployment.url, /^rediss\+sentinel:\/\//);
      await assertRoundTrip(deployment.url, pki.caCert);
    });

    contract('rediss+sentinel://', () => topologyHarness(
      () => deployment.url,
      async (key) => {
        const master = await deployment.masterClient();
        try {
          return await master.exists(key);
        } finally {
          master.disconnect();
        }
      },
      () => commandStats(deployment.servers.filter((s) => s.proc).map((s) => s.port)),
      { redisTlsCa: pki.caCert },
    ));

    it('refuses sentinels whose certificates chain to another CA: unavailable', async function () {
      await assertRefused(deployment.url, stranger.caCert);
    });

    it('polls Sentinel over TLS for the replicas in sync: once a dead replica is marked down, writes go on without it', async function () {
      // Writes wait for a replica unless Sentinel, asked over TLS, says there is none in sync: were
      // that poll not over TLS it would never answer, and writes would fail for as long as the
      // replica is away.
      const store = createSessionStore({ url: deployment.url, settings: settings(pki.caCert), log: silentLogger, commandTimeoutMs: 500 });
      const created = () => store.create(newSession()).then(() => true, (err: unknown) => {
        assert.ok(err instanceof StoreUnavailable, String(err));
        return false;
      });
      const master = await deployment.waitSettled();
      const replica = deployment.servers.find((s) => s.port !== master)!;
      try {
        await waitFor('a write confirmed by the replica', created);
        await replica.kill();
        await waitFor('writes to resume without the dead replica', created, 15_000, 200);
      } finally {
        if (!replica.proc) await replica.start();
        await store.close();
      }
      await deployment.waitSettled();
    });
  });

  describe('rediss+cluster:// (3 masters, TLS only, cluster bus on TLS)', function () {
    let cluster: RedisCluster;
    let probe: Cluster;

    before(async function () {
      cluster = await RedisCluster.start({ masters: 3, replicas: 0, tls: pki });
      probe = cluster.client();
    });
    after(async function () {
      probe?.disconnect();
      await cluster?.stop();
    });

    it('announces its TLS ports, and a session written is read back', async function () {
      assert.match(cluster.url, /^rediss\+cluster:\/\//);
      // The nodes the client learns from CLUSTER SLOTS (what it then connects to) are the TLS ports.
      const announced = (await cluster.topology()).map((n) => n.port).sort();
      assert.deepEqual(announced, [...cluster.ports].sort());
      await assertRoundTrip(cluster.url, pki.caCert);
    });

    contract('rediss+cluster://', () => topologyHarness(() => cluster.url, (key) => probe.exists(key), () => commandStats(cluster.ports), { redisTlsCa: pki.caCert }));

    it('refuses nodes whose certificates chain to another CA: unavailable', async function () {
      await assertRefused(cluster.url, stranger.caCert);
    });
  });
});
