// No connection the Redis backend makes, nor any ioredis makes for it inside (Sentinel lookups
// and failover detector, Cluster subscriber and slot refreshes), is left without an 'error'
// listener: an error nobody hears is printed ("[ioredis] Unhandled error event", on stderr, past
// the JSON log) or, on a socket, thrown from the event loop (the process ends). Real servers,
// killed under clients made as the backend makes them (connect()).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { connect, guarded, type Client } from '../../src/session/redis-connect.ts';
import { SentinelReplicas } from '../../src/session/redis-topology.ts';
import { parseRedisUrl, type RedisTarget } from '../../src/session/redis-url.ts';
import { freePort, RedisServer } from '../helpers/redis.ts';
import { waitFor, withNode } from '../helpers/redis-cluster.ts';
import { RedisSentinel } from '../helpers/redis-sentinel.ts';

/** What ioredis printed about errors nobody heard (it prints with console.error) while `fn` ran. */
async function unheardDuring(fn: () => Promise<void>): Promise<string[]> {
  const unheard: string[] = [];
  const print = console.error;
  console.error = (...args: unknown[]) => {
    const line = args.map(String).join(' ');
    if (line.includes('Unhandled error event')) unheard.push(line);
    else print(...args);
  };
  try {
    await fn();
  } finally {
    console.error = print;
  }
  return unheard;
}

/** Waits for `c` to be ready (its first connection made). */
function ready(c: Client): Promise<void> {
  return waitFor('the client to connect', async () => c.status === 'ready', 10_000, 20);
}

describe('Redis connections: every error is heard, none printed or thrown', function () {
  this.timeout(30_000);

  it('finds the ioredis internals it hooks (a Sentinel client\'s lookups, a Cluster\'s subscriber)', function () {
    const sentinel = guarded(new Redis({ sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm', lazyConnect: true }));
    const cluster = guarded(new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true }));
    try {
      assert.equal(sentinel.hooked, true, 'SentinelConnector.connectToSentinel: every connection to a sentinel goes unheard');
      assert.equal(cluster.hooked, true, 'ClusterSubscriber.selectSubscriber: the subscriber connection goes unheard');
    } finally {
      sentinel.client.disconnect();
      cluster.client.disconnect();
    }
  });

  it('standalone: the server killed under the client, which reconnects again and again', async function () {
    const server = await RedisServer.start();
    let c: Client | undefined;
    try {
      const unheard = await unheardDuring(async () => {
        c = connect(parseRedisUrl(server.url), 500);
        await ready(c);
        await server.kill();
        await sleep(1500); // refused at every attempt (50 ms doubling)
      });
      assert.deepEqual(unheard, []);
    } finally {
      c?.disconnect();
      await server.stop();
    }
  });

  describe('Sentinel (1 master, 2 sentinels)', function () {
    let deployment: RedisSentinel;
    before(async function () {
      deployment = await RedisSentinel.start({ replicas: 0, sentinels: 2, downAfterMs: 2000 });
    });
    after(async function () {
      await deployment?.stop();
    });

    it('a sentinel down: the failover detector\'s connection to it is refused, heard', async function () {
      // ioredis subscribes to every sentinel once connected to the master (failoverDetector),
      // on connections of its own, with no 'error' listener: one to a sentinel that is down
      // printed ECONNREFUSED at once, and every minute after (its reconnection delay).
      const [up, down] = deployment.sentinels;
      await down!.stop(); // for the rest of this suite
      let c: Client | undefined;
      try {
        const unheard = await unheardDuring(async () => {
          c = connect(parseRedisUrl(`redis+sentinel://127.0.0.1:${up!.port},127.0.0.1:${down!.port}/${deployment.name}`), 500);
          await ready(c);
          await c.ping();
          await sleep(500); // the detector's connections are made once the client is connected
        });
        assert.deepEqual(unheard, []);
      } finally {
        c?.disconnect();
      }
    });

    it('closing the replica poll while it connects leaves no connection to the sentinel open', async function () {
      const sentinel = deployment.sentinels[0]!;
      const clients = () => withNode(sentinel.port, async (c) => String(await c.call('CLIENT', 'LIST')).trim().split('\n').length);
      const before = await clients();
      const target = parseRedisUrl(`redis+sentinel://127.0.0.1:${sentinel.port}/${deployment.name}`) as Extract<RedisTarget, { mode: 'sentinel' }>;
      // The first poll starts as it is made: closed at once, it was still connecting.
      new SentinelReplicas(target, 1000, 500, () => {}).close();
      await sleep(300);
      await waitFor('the poll\'s connection to be closed', async () => (await clients()) === before, 2000, 50);
    });
  });

  it('Cluster: made while no node is up, its slot refreshes failing again and again', async function () {
    // As at a sidecar's start before Redis is up: the Cluster's own error ("Failed to refresh
    // slots cache") at every attempt, on a client no ConnectionWatch listens to here.
    const ports = [await freePort(), await freePort(), await freePort()];
    let c: Client | undefined;
    try {
      const unheard = await unheardDuring(async () => {
        c = connect(parseRedisUrl(`redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`), 500);
        await sleep(1000);
      });
      assert.deepEqual(unheard, []);
    } finally {
      c?.disconnect();
    }
  });
});
