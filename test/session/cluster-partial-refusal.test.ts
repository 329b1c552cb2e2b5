// A Cluster with one node refusing REDIS_URL's password is not 'restored' while that node refuses.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { capturingLogger } from '../helpers/idp-bff.ts';
import { RedisCluster, waitFor, withNode } from '../helpers/redis-cluster.ts';
import { RedisBackend } from '../../src/session/redis-backend.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';

describe('session store: one Cluster node refuses the credentials', function () {
  this.timeout(60_000);

  it('logs the refusal and no "restored" while that node still refuses', async () => {
    const pass = 'cluster-Passw0rd.for/this!test';
    const cluster = await RedisCluster.start({ masters: 3 });
    for (const port of cluster.ports) await withNode(port, (c) => c.config('SET', 'requirepass', pass));
    const { log, lines } = capturingLogger('info');
    const url = `redis+cluster://:${encodeURIComponent(pass)}@${cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
    const backend = new RedisBackend(parseRedisUrl(url), { log });
    try {
      await waitFor('the backend to answer', () => backend.ping().then(() => true, () => false));
      // One node only takes another password now, and drops its clients.
      const c = new Redis({ port: cluster.ports[0]!, host: '127.0.0.1', password: pass, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => {});
      await c.connect();
      await c.config('SET', 'requirepass', 'another-Passw0rd');
      await c.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      c.disconnect();
      await waitFor('a line about the credentials', async () => lines.some((l) => l.includes('refuses the user name or password')), 15_000);
      await sleep(5000);
      const reads = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => backend.get(`k${i}`)));
      assert.ok(reads.some((r) => r.status === 'rejected'), 'the keys of the refusing node fail closed');
      const restored = lines.filter((l) => l.includes('session store connection restored'));
      assert.deepEqual(restored, [], 'nothing is restored while a node refuses');
      const back = new Redis({ port: cluster.ports[0]!, host: '127.0.0.1', password: 'another-Passw0rd', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      back.on('error', () => {});
      await back.connect();
      await back.config('SET', 'requirepass', pass);
      back.disconnect();
      // Each connection that met the refusal: the reads' always did; the writes' only if one of its
      // slot refreshes asked that node (its node connections are made when first used).
      const refusedRoles = ['commands', 'writes', 'invalidations']
        .filter((role) => lines.some((l) => l.includes('refuses the user name or password') && l.includes(`"role":"${role}"`)));
      assert.ok(refusedRoles.includes('commands'), lines.join('\n'));
      await waitFor('"restored" once every node takes the password', async () => refusedRoles
        .every((role) => lines.some((l) => l.includes('session store connection restored') && l.includes(`"role":"${role}"`))), 15_000);
      const again = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => backend.get(`k${i}`)));
      assert.ok(again.every((r) => r.status === 'fulfilled'), 'every key answers');
    } finally {
      await backend.close();
      await cluster.stop();
    }
  });
});
