// A Redis that comes back with other credentials (a rotated password) than REDIS_URL's: the store
// fails closed, and its log says why. It said "connection lost" at the outage's start and nothing
// more: a password change read as an outage that never ended.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { capturingLogger } from '../helpers/idp-bff.ts';
import { Redis } from 'ioredis';
import { RedisServer } from '../helpers/redis.ts';
import { RedisCluster, waitFor, withNode } from '../helpers/redis-cluster.ts';
import { RedisBackend } from '../../src/session/redis-backend.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';

describe('session store: Redis refuses the credentials after a restart', function () {
  this.timeout(20_000);

  it('logs an error naming the credentials (never the password) and fails closed; restored when they are accepted again', async () => {
    const first = 'first-Passw0rd.for/this!test';
    const redis = await RedisServer.start(['--requirepass', first]);
    const { log, lines } = capturingLogger('info');
    const backend = new RedisBackend(parseRedisUrl(`redis://:${encodeURIComponent(first)}@127.0.0.1:${redis.port}`), { log });
    const rotated = new RedisServer(redis.port, ['--requirepass', 'second-Passw0rd.for/this!test']);
    try {
      await backend.ping();
      await redis.kill();
      await sleep(300); // the outage is seen: "connection lost"
      await rotated.start();
      const deadline = Date.now() + 8000;
      while (!lines.some((l) => l.includes('refuses the user name or password'))) {
        assert.ok(Date.now() < deadline, `no line about the credentials:\n${lines.join('\n')}`);
        await sleep(50);
      }
      const line = JSON.parse(lines.find((l) => l.includes('refuses the user name or password'))!) as Record<string, unknown>;
      assert.equal(line['level'], 'error');
      assert.match(String(line['err']), /^WRONGPASS/);
      await assert.rejects(backend.ping(), 'fails closed');
      // It keeps trying (reconnecting, as the password may be given back), and never claims to be back.
      await sleep(1500);
      await assert.rejects(backend.ping(), 'still fails closed');
      assert.ok(!lines.some((l) => l.includes('connection restored')), `"restored" while Redis refuses the password:\n${lines.join('\n')}`);
      assert.equal(lines.filter((l) => l.includes('refuses the user name or password')).length, 2, 'one line per connection (commands, invalidations), not one per retry');
      // The password of REDIS_URL is back: so is the store.
      await rotated.kill();
      await redis.start();
      // Each connection (commands, invalidations) reconnects on its own backoff: wait for both.
      const back = Date.now() + 8000;
      const restored = (role: string) => lines.some((l) => l.includes('session store connection restored') && l.includes(`"role":"${role}"`));
      while (!restored('commands') || !restored('invalidations')) {
        assert.ok(Date.now() < back, `not restored:\n${lines.join('\n')}`);
        await sleep(50);
      }
      await backend.ping();
      assert.ok(!lines.join('\n').includes('Passw0rd'), 'no password in any line');
    } finally {
      await backend.close();
      await rotated.stop();
      await redis.stop();
    }
  });
});

describe('session store: a Redis Cluster refuses the credentials after its clients reconnect', function () {
  this.timeout(60_000);

  it('fails closed with an error line, and is back once the cluster takes REDIS_URL\'s password again', async () => {
    const pass = 'cluster-Passw0rd.for/this!test';
    const cluster = await RedisCluster.start({ masters: 3 });
    const admin = (port: number, password: string, fn: (c: Redis) => Promise<unknown>) => {
      const c = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      return c.connect().then(() => fn(c)).finally(() => c.disconnect());
    };
    // Every node takes `to` from now on, and drops its clients: they reconnect with REDIS_URL's.
    const rotate = async (from: string, to: string) => {
      for (const port of cluster.ports) {
        await admin(port, from, async (c) => {
          await c.config('SET', 'requirepass', to);
          await c.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
          await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        });
      }
    };
    for (const port of cluster.ports) await withNode(port, (c) => c.config('SET', 'requirepass', pass));
    const { log, lines } = capturingLogger('info');
    const url = `redis+cluster://:${encodeURIComponent(pass)}@${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
    const backend = new RedisBackend(parseRedisUrl(url), { log });
    const rotated = 'rotated-Passw0rd.for/this!test';
    // While the password is refused ioredis picks a new subscriber node about ten times a second;
    // each pick disconnected the last one that had the subscriptions again, a listener more on
    // its closed socket each time (redis-connect.ts).
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      await waitFor('the backend to answer', () => backend.ping().then(() => true, () => false));
      await rotate(pass, rotated);
      // Said by each connection (the Cluster's own errors only say "Failed to refresh slots cache").
      await waitFor('a line about the credentials', async () => lines.filter((l) => l.includes('refuses the user name or password')).length === 3, 15_000);
      await assert.rejects(backend.ping(), 'fails closed');
      await sleep(1500);
      await assert.rejects(backend.ping(), 'still fails closed');
      await rotate(rotated, pass);
      await waitFor('the store to answer again', () => backend.ping().then(() => true, () => false), 20_000);
      await waitFor('"restored" for every connection', async () => ['commands', 'writes', 'invalidations']
        .every((role) => lines.some((l) => l.includes('session store connection restored') && l.includes(`"role":"${role}"`))), 10_000);
      assert.ok(!lines.join('\n').includes('Passw0rd'), 'no password in any line');
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), []);
    } finally {
      process.off('warning', onWarning);
      await backend.close();
      await cluster.stop();
    }
  });
});
