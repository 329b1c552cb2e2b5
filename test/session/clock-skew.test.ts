// Processes on different hosts disagree on the time by seconds. A session's absolute expiry is
// written on the BFF's clock; the idle touch's TTL was "expiresAt - my now" on the toucher's: a
// sidecar whose clock lagged by d kept the session in Redis (and served it) d past it, once its
// clock had passed the creator's lastSeen (d later). The store's own clock (Redis TIME, recorded
// at creation) now bounds every touch. Here d = 2 s and a 4 s lifetime; the minute of skew the
// brief asks about behaves the same, only a minute later.
import assert from 'node:assert/strict';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { keys } from '../../src/session/store.ts';
import { RedisServer, adminClient } from '../helpers/redis.ts';
import { KEY_A, MIN, newSession, uniq } from './contract-suite.ts';

const MAX_MS = 4_000;

for (const kind of ['redis', 'memory'] as const) {
  describe(`absolute expiry across skewed clocks (${kind})`, function () {
    this.timeout(15_000);
    let redis: RedisServer | undefined;
    const opened: KvSessionStore[] = [];
    before(async function () {
      if (kind === 'redis') redis = await RedisServer.start();
    });
    after(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await redis?.stop();
    });

    function open(url: string, skewMs: number): KvSessionStore {
      const s = createSessionStore({
        url, touchIntervalMs: 1, now: () => Date.now() + skewMs,
        settings: { sessionKeys: [KEY_A], sessionIdleMs: MIN, sessionMaxMs: MAX_MS },
      });
      opened.push(s);
      return s;
    }

    for (const skewMs of [-2_000]) {
      it(`a toucher whose clock is ${-skewMs / 1000} s behind keeps the session no longer than its absolute lifetime`, async function () {
        const url = kind === 'redis' ? redis!.url : `memory://skew-${uniq()}`;
        const bff = open(url, 0);
        const sidecar = open(url, skewMs);
        const { cookieValue, session } = await bff.create(newSession());
        const created = Date.now();
        // The lagging clock passes the creator's lastSeen: its next read touches.
        await new Promise((r) => setTimeout(r, -skewMs + 100));
        assert.ok(await sidecar.get(cookieValue), 'read (and touched) by the lagging process');
        const left = created + MAX_MS - Date.now();
        if (kind === 'redis') {
          const c = adminClient(redis!.url);
          try {
            const pttl = await c.pttl(keys.session(session.id));
            assert.ok(pttl > 0 && pttl <= left + 50, `the session key's TTL ${pttl} ms is within what is left of its lifetime (${left} ms)`);
          } finally {
            c.disconnect();
          }
        }
        await new Promise((r) => setTimeout(r, left + 100));
        assert.equal(await sidecar.get(cookieValue), null, 'ended at its absolute expiry for the lagging process too');
      });
    }
  });
}
