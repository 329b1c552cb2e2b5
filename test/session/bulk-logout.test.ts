// A back-channel logout of a user with thousands of sessions works through them in batches. All at
// once, 20,000 deletions queued their commands on one Redis connection past the 500 ms command
// bound: the logout answered 503 though every session was gone, and every other user's session
// reads waited behind them. A real redis-server; the backend only counts the calls it is in.
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.ts';
import { KvSessionStore, storeKeys } from '../../src/session/index.ts';
import { RedisBackend } from '../../src/session/redis-backend.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';
import { LOGOUT_BATCH } from '../../src/session/store.ts';
import { RedisServer } from '../helpers/redis.ts';
import { KEY_A, MIN, newSession, uniq } from './contract-suite.ts';

/** The backend, and the most calls it has had under way at once since `settled()`. */
function counting(backend: RedisBackend): { backend: RedisBackend; most(): number; settled(): Promise<void> } {
  let now = 0;
  let most = 0;
  const proxy = new Proxy(backend, {
    get(target, p) {
      const v = Reflect.get(target, p, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (!(r instanceof Promise)) return r;
        most = Math.max(most, ++now);
        return r.finally(() => { now--; });
      };
    },
  });
  return {
    backend: proxy,
    most: () => most,
    // Once no call is under way (a sign-in's index pruning runs in the background), counting anew.
    settled: async () => {
      while (now > 0) await new Promise((r) => setTimeout(r, 10));
      most = 0;
    },
  };
}

describe('session store: a back-channel logout of thousands of sessions', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.stop());

  for (const by of ['sub', 'sid and sub'] as const) {
    it(`by ${by}: deletes them all, ${LOGOUT_BATCH} at a time, not all at once`, async () => {
      const counted = counting(new RedisBackend(parseRedisUrl(redis.url), { log: silentLogger }));
      const store = new KvSessionStore({ backend: counted.backend, sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN, log: silentLogger });
      try {
        const idp = `bulk-${uniq()}`;
        const n = 2_000;
        // Without a sid: a logout naming a sid and the sub reads each of them to find those.
        for (let i = 0; i < n; i += 100) {
          await Promise.all(Array.from({ length: 100 }, () => store.create(newSession({ idp, sub: 'many', sid: undefined }))));
        }
        await counted.settled();
        const deleted = by === 'sub' ? await store.deleteBySub(idp, 'many') : await store.deleteBySid(idp, 'sid-of-none', 'many');
        assert.equal(deleted, n);
        // One batch's calls (a deletion's removal, then its index entries), not the user's 2,000.
        assert.ok(counted.most() <= 3 * LOGOUT_BATCH, `${counted.most()} backend calls under way at once`);
        assert.equal(await counted.backend.setSample(storeKeys.bySub(idp, 'many'), 1).then((m) => m.length), 0);
      } finally {
        await store.close();
      }
    });
  }
});
