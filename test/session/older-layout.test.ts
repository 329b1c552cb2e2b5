// Sessions as the previous release (7e6dc58) wrote them, read by this one: during a rolling
// upgrade, and for GOLDPATH_SESSION_MAX after it, Redis holds sessions without the `end` field
// (the layout in keys.ts). The idle touch must still serve and slide them, bounded by their expiresAt
// as before, and must not invent an `end` for them. (The other way round, a session with `end`
// touched by the old release, needs that release built: README "Upgrading" says what was run.)
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { keys } from '../../src/session/store.ts';
import { RedisServer, adminClient } from '../helpers/redis.ts';
import { KEY_A, MIN, newSession } from './contract-suite.ts';

const MAX_MS = 3_000;

describe('a session written by the previous release (no `end` field)', function () {
  this.timeout(15_000);
  let redis: RedisServer;
  let store: KvSessionStore;
  let c: Redis;
  before(async () => {
    redis = await RedisServer.start();
    store = createSessionStore({ url: redis.url, touchIntervalMs: 1, settings: { sessionKeys: [KEY_A], sessionIdleMs: MIN, sessionMaxMs: MAX_MS } });
    c = adminClient(redis.url);
  });
  after(async () => {
    c.disconnect();
    await store.close();
    await redis.stop();
  });

  it('is served and touched, its TTL bounded by expiresAt, no `end` added, and ends at expiresAt', async () => {
    const { cookieValue, session } = await store.create(newSession());
    const key = keys.session(session.id);
    assert.equal(await c.hdel(key, 'end'), 1, 'as 7e6dc58 wrote it');
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(await store.get(cookieValue), 'served (and touched)');
    const pttl = await c.pttl(key);
    const left = session.expiresAt - Date.now();
    assert.ok(pttl > 0 && pttl <= left + 50, `TTL ${pttl} ms within what is left of its lifetime (${left} ms)`);
    assert.equal(await c.hexists(key, 'end'), 0);
    await new Promise((r) => setTimeout(r, left + 100));
    assert.equal(await store.get(cookieValue), null);
  });
});
