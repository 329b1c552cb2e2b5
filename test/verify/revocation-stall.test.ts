// Revocation with the session cache on, when ONE sidecar's link to Redis stalls (a partition: the
// sockets stay open, nothing gets through) while the BFF keeps a direct link and logs the user
// out. The sidecar cannot hear the invalidation; its cache must still stop answering from memory
// within the freshness bound (cache-freshness.ts: ~100 ms after the delete completed), and what it answers
// afterwards must not be a 200 (its reads wait on the stalled link and fail closed: 503).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { RedisServer } from '../helpers/redis.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { spawnVerify, type VerifyChild } from '../helpers/verify-process.ts';
import { verifyEnv, type VerifyResponse } from '../helpers/verify-app.ts';
import { newSession } from '../helpers/sessions.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { RedisBackend } from '../../src/session/redis-backend.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';
import { silentLogger } from '../../src/log.ts';

/** The target: a revocation is seen within 100 ms. The slack is for the test's own scheduling. */
const BOUND_MS = 100 + 50;
/** How long requests are sent after the delete: well past the old window (~650 ms). */
const WATCH_MS = 1200;

describe('verify: revocation reaches a sidecar whose link to Redis stalls', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let proxy: TcpProxy;
  let bff: KvSessionStore;
  let sidecar: VerifyChild;

  before(async function () {
    redis = await RedisServer.start();
    proxy = await TcpProxy.start(redis.port);
    bff = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
    sidecar = await spawnVerify('node', proxy.url); // the sidecar's only way to Redis is the proxy
  });
  after(async function () {
    await sidecar?.stop();
    await bff?.close();
    await proxy?.close();
    await redis?.stop();
  });

  async function cacheHits(): Promise<number> {
    const text = (await sidecar.get('/metrics')).body;
    return Number(/^goldpath_session_cache_hits_total (\d+)/m.exec(text)?.[1] ?? NaN);
  }

  /** A 200 answered from the sidecar's cache (proved by the hit counter), retried while its feed comes up. */
  async function cached(cookieValue: string): Promise<void> {
    const deadline = performance.now() + 10_000;
    for (;;) {
      assert.equal((await sidecar.verify(cookieValue)).status, 200);
      const hits = await cacheHits();
      assert.equal((await sidecar.verify(cookieValue)).status, 200);
      if (await cacheHits() === hits + 1) return;
      assert.ok(performance.now() < deadline, 'never answered from the session cache');
      await sleep(50);
    }
  }

  it('logout while the sidecar\'s link to Redis stalls: no 200 later than ~100 ms after the delete, then 503s (test: no 200 for a request sent 150 ms after it)', async function () {
    const { cookieValue, session } = await bff.create(newSession({ sub: 'partitioned' }));
    await cached(cookieValue);
    proxy.stall();
    assert.equal(await bff.delete(session.id), true); // the BFF's logout: deletes, then publishes
    const deleted = performance.now();
    // A request every 10 ms, without waiting for answers (those that miss wait on the stalled
    // link). Each answer is dated by when its request was SENT: the sidecar decided at that time
    // or later, so a 200 for a request sent after the bound is a 200 given after the bound, however
    // slow this machine is (slowness can only move the sidecar's decision later, past its window).
    const answers: Promise<{ sent: number; status: number | string }>[] = [];
    while (performance.now() - deleted < WATCH_MS) {
      const sent = performance.now() - deleted;
      answers.push(sidecar.verify(cookieValue).then(
        (r: VerifyResponse) => ({ sent, status: r.status }),
        (err: Error) => ({ sent, status: err.message }),
      ));
      await sleep(10);
    }
    const seen = await Promise.all(answers);
    const late200 = seen.filter((a) => a.status === 200 && a.sent > BOUND_MS);
    const last200 = Math.max(-1, ...seen.filter((a) => a.status === 200).map((a) => a.sent));
    assert.deepEqual(late200, [], `a 200 for a request sent ${Math.round(last200)} ms after the logout completed (bound ${BOUND_MS} ms); ${late200.length} such`);
    for (const a of seen) assert.ok(a.status === 200 || a.status === 503, `only 200 (before) or 503 (stalled store), got ${a.status} at ${Math.round(a.sent)} ms`);
    assert.ok(seen.some((a) => a.status === 503 && a.sent > BOUND_MS), 'afterwards the sidecar fails closed (503)');
    proxy.resume();
  });

  it('the heartbeat\'s probe reaches its sender only (no fan-out to every sidecar), after what was published before it', async function () {
    const open = () => new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger });
    const [a, b] = [open(), open()];
    try {
      const heard: Record<'a' | 'b', string[]> = { a: [], b: [] };
      a.onMessage((m) => heard.a.push(m));
      b.onMessage((m) => heard.b.push(m));
      await Promise.all([a.ping(), b.ping()]); // subscribed
      await b.publish('b|an-invalidation');
      await a.echo('a|~probe:1');
      const deadline = performance.now() + 5000;
      while (heard.a.length < 2) {
        assert.ok(performance.now() < deadline, 'the probe never came back');
        await sleep(5);
      }
      await sleep(100); // what b would have heard by now
      assert.deepEqual(heard.a, ['b|an-invalidation', 'a|~probe:1'], 'the echo comes after what was published before it');
      assert.deepEqual(heard.b, ['b|an-invalidation'], 'other processes never hear the probe');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
