// KvSessionStore.revalidate, which the sidecar's session cache calls once per cached session per
// TTL: against a real redis-server, it reads the session's metadata only (HMGET, not the
// ciphertext) while the version is unchanged, and everything when it changed.
import assert from 'node:assert/strict';
import { RedisServer } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { VERIFY_CONFIG_DIR, PUBLIC_URL } from '../helpers/verify-app.ts';

describe('session store: revalidate', function () {
  let redis: RedisServer;
  let store: KvSessionStore;

  before(async function () {
    redis = await RedisServer.start();
    const settings = loadSettings({
      GOLDPATH_CONFIG_DIR: VERIFY_CONFIG_DIR, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: PUBLIC_URL, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','),
    });
    store = createSessionStore({ url: redis.url, settings, log: silentLogger });
  });
  after(async function () {
    await store?.close();
    await redis?.stop();
  });

  const delta = async (before: Record<string, number>) => {
    const now = await redis.commandCalls();
    return { hmget: (now.hmget ?? 0) - (before.hmget ?? 0), hgetall: (now.hgetall ?? 0) - (before.hgetall ?? 0) };
  };

  it('unchanged: metadata only, the same secrets; changed: the new secrets; deleted: null', async function () {
    const { cookieValue } = await store.create(newSession({ sub: 'reval' }));
    const known = (await store.get(cookieValue))!;
    let before = await redis.commandCalls();
    const again = (await store.revalidate(known))!;
    assert.deepEqual(await delta(before), { hmget: 1, hgetall: 0 }, 'no ciphertext read');
    assert.equal(again.secrets, known.secrets, 'the secrets it had');
    assert.equal(again.version, known.version);
    assert.ok(again.idleExpiresAt >= known.idleExpiresAt);

    assert.ok(await store.updateSecrets(known.id, { ...known.secrets, csrf: 'csrf-new' }));
    before = await redis.commandCalls();
    const changed = (await store.revalidate(known))!;
    assert.deepEqual(await delta(before), { hmget: 1, hgetall: 1 }, 'a new version is read in full');
    assert.equal(changed.secrets.csrf, 'csrf-new');
    assert.equal(changed.version, known.version + 1);

    assert.ok(await store.delete(known.id));
    assert.equal(await store.revalidate(changed), null);
  });

  it('a session whose metadata says it expired is gone, without its secrets being read', async function () {
    const { cookieValue } = await store.create(newSession({ sub: 'reval-expired' }));
    const known = (await store.get(cookieValue))!;
    const c = redis.client();
    try {
      await c.hset(`gp:s:{${known.id}}`, 'expiresAt', String(Date.now() - 1));
    } finally {
      c.disconnect();
    }
    const before = await redis.commandCalls();
    assert.equal(await store.revalidate(known), null);
    assert.equal((await delta(before)).hgetall, 0);
  });
});
