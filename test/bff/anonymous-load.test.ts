// What anonymous clients can make the BFF keep in Redis. /auth/login needs no session and no
// cookie: anyone can call it as often as they like, and each call stores a login transaction for
// 10 minutes. Unbounded, a script fills Redis: with maxmemory and noeviction every real sign-in
// and token refresh is refused; without maxmemory Redis grows until the host kills it (compose
// runs it without persistence, so every session goes). GOLDPATH_MAX_LOGINS_PER_MINUTE bounds it.
import assert from 'node:assert/strict';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer, adminClient } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';

async function usage(redis: RedisServer): Promise<{ bytes: number; keys: number }> {
  const c = adminClient({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    const bytes = Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
    return { bytes, keys: await c.dbsize() };
  } finally {
    c.disconnect();
  }
}

/** `n` anonymous GET /auth/login (no cookie: a script drops Set-Cookie), 16 at a time; the statuses seen. */
async function flood(env: IdpBff, n: number, query = ''): Promise<{ statuses: Map<number, number>; retryAfter: Set<string> }> {
  const statuses = new Map<number, number>();
  const retryAfter = new Set<string>();
  let sent = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (sent < n) {
      sent++;
      const r = await httpCall(`${env.url}/auth/login${query}`, { headers: { accept: 'application/json' } });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 429) retryAfter.add(String(r.headers['retry-after']));
    }
  }));
  return { statuses, retryAfter };
}

/**
 * A describe block whose tests run against a BFF with GOLDPATH_MAX_LOGINS_PER_MINUTE = LIMIT and
 * a 4 MB Redis with noeviction of its own (each block its own minute's count).
 */
const LIMIT = 300;
function againstSmallRedis(title: string, tests: (get: () => { redis: RedisServer; env: IdpBff }) => void): void {
  describe(title, function () {
    this.timeout(120_000);
    let redis: RedisServer;
    let env: IdpBff;
    before(async () => {
      redis = await RedisServer.start(['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction']);
      env = await startIdpBff({ redis, settings: { loginsPerMinute: LIMIT } });
    });
    after(async () => {
      await env?.close();
      await redis?.stop();
    });
    tests(() => ({ redis, env }));
  });
}

againstSmallRedis('BFF: anonymous /auth/login requests against a 4 MB Redis (noeviction)', (get) => {

  it('6,000 of them store at most GOLDPATH_MAX_LOGINS_PER_MINUTE transactions a minute, and lose no signed-in session', async () => {
    const { redis, env } = get();
    const bob = await env.login('bob');
    assert.ok(bob.sessionCookie, 'bob has a session');
    const before = await usage(redis);
    const { statuses, retryAfter } = await flood(env, 6000);
    const after = await usage(redis);
    const grew = `Redis grew by ${after.keys - before.keys} keys, ${Math.round((after.bytes - before.bytes) / 1024)} KiB`;
    // The minute may turn during the flood: at most two windows' worth get through.
    const started = statuses.get(302) ?? 0;
    assert.ok(started >= LIMIT - 1 && started <= 2 * LIMIT, `${started} sign-ins started (${grew})`);
    assert.equal((statuses.get(429) ?? 0) + started, 6000, `every other answer is a 429: ${JSON.stringify([...statuses])}`);
    for (const s of retryAfter) assert.ok(Number(s) >= 1 && Number(s) <= 60, `Retry-After ${s}`);
    assert.ok(after.keys - before.keys <= 2 * LIMIT + 2, grew);
    assert.ok(await env.store.get(bob.sessionCookie), `bob's session is still there (${grew})`);
    assert.equal((await httpCall(`${env.url}/auth/session`, { jar: bob.jar })).status, 200, 'and serves');
    assert.ok(await env.store.create(newSession({ sub: 'carol' })), 'Redis still takes new sessions');
    // A real person starting a sign-in meanwhile is told what is going on, and when to retry.
    const alice = await httpCall(`${env.url}/auth/login`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    if (alice.status === 429) {
      assert.match(alice.body, /Too many sign-ins are in progress/);
      assert.ok(Number(alice.headers['retry-after']) >= 1);
    } else {
      assert.equal(alice.status, 302, 'a new minute began: the sign-in starts');
    }
  });
});

againstSmallRedis('BFF: anonymous /auth/login requests with the longest return_to, against a 4 MB Redis (noeviction)', (get) => {

  it('an 8 KiB return_to counts for what its transaction holds: the limit still bounds the bytes, and Redis keeps taking sessions', async () => {
    const { redis, env } = get();
    // The longest return_to kept (8 KiB, as long a link as the sidecar lets through) makes a
    // transaction of ~11 KiB, 16 times an ordinary one (~700 bytes): counted as one sign-in, the
    // limit let a flood make Redis hold 16 times what GOLDPATH_MAX_LOGINS_PER_MINUTE is sized for
    // (here 300 a minute filled the 4 MB Redis: new sessions refused with OOM).
    const returnTo = `/${'a'.repeat(8191)}`;
    const before = await usage(redis);
    const { statuses } = await flood(env, 1000, `?return_to=${returnTo}`);
    const after = await usage(redis);
    const grew = `Redis grew by ${after.keys - before.keys} keys, ${Math.round((after.bytes - before.bytes) / 1024)} KiB`;
    const started = statuses.get(302) ?? 0;
    assert.equal((statuses.get(429) ?? 0) + started, 1000, `only 302s and 429s: ${JSON.stringify([...statuses])}`);
    assert.ok(started >= 1, 'a long return_to still signs in');
    // At most two windows' worth of ordinary transactions (~700 bytes each), in bytes.
    assert.ok(after.bytes - before.bytes <= 2 * LIMIT * 1200, grew);
    assert.ok(await env.store.create(newSession({ sub: 'carol' })), `Redis still takes new sessions (${grew})`);
  });
});
