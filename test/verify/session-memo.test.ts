// The sidecar keeps a cached session's secrets as one JSON string (src/session/cached-session.ts)
// and answers repeated requests from what the chain derived from them (src/verify/session-memo.ts).
// Here, through the real chain, a real redis-server and the real Oso: after a session's first
// request, its requests never read the secrets again, and what they get is what an uncached
// sidecar answers.
import assert from 'node:assert/strict';
import request from 'supertest';
import { RedisServer } from '../helpers/redis.ts';
import { waitFor } from '../helpers/redis-cluster.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';
import { newSession } from '../helpers/sessions.ts';
import { VERIFY_CONFIG_DIR, verifyEnv } from '../helpers/verify-app.ts';
import { loadSettings } from '../../src/config/env.ts';
import { loadConfig } from '../../src/config/load.ts';
import { CachedSession } from '../../src/session/cached-session.ts';
import { CachingSessionStore, createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { createVerifyApp } from '../../src/verify/app.ts';
import { memoOf } from '../../src/verify/session-memo.ts';
import { buildVerifyPolicy } from '../../src/verify/policy.ts';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';
import { silentLogger } from '../../src/log.ts';

describe('verify: cached sessions and the session memo', function () {
  let redis: RedisServer;
  let kv: KvSessionStore;
  let cache: CachingSessionStore;
  let tokens: StoredTokens;
  let cookieName: string;
  let cached: ReturnType<ReturnType<typeof createVerifyApp>['callback']>;
  let uncached: ReturnType<ReturnType<typeof createVerifyApp>['callback']>;

  before(async function () {
    redis = await RedisServer.start();
    const env = verifyEnv(redis.url);
    const settings = loadSettings(env);
    cookieName = settings.cookieName;
    const config = await loadConfig(VERIFY_CONFIG_DIR, env);
    kv = createSessionStore({ url: redis.url, settings, log: silentLogger });
    const inner = createSessionStore({ url: redis.url, settings, log: silentLogger });
    // No heartbeat: its freshness is cache.test.ts's subject, not this file's. With it, a session's
    // first request on a loaded machine could find the cache paused (idle) or its probe late, read
    // the store without keeping what it read, and the memo's record was not the one cached.
    cache = new CachingSessionStore(inner, { ttlMs: 60_000, heartbeatMs: 0 });
    // The cache keeps nothing until the invalidation feed is up (cache.ts): the first test's first
    // request must not race the subscription.
    await waitFor('the invalidation feed', async () => inner.invalidationsLive, 5000, 10);
    tokens = new StoredTokens(kv);
    const policy = await buildVerifyPolicy(config, settings, silentLogger, tokens);
    const app = (store: typeof kv | typeof cache) =>
      createVerifyApp({ settings, store, log: silentLogger, metrics: createVerifyMetrics(), policy: () => policy }).callback();
    cached = app(cache);
    uncached = app(kv);
  });
  after(async function () {
    await cache?.close();
    await kv?.close();
    await redis?.stop();
  });

  function verify(server: typeof cached, method: string, uri: string, headers: Record<string, string>) {
    const r = request(server).get('/auth/verify')
      .set('X-Forwarded-Method', method).set('X-Forwarded-Proto', 'http')
      .set('X-Forwarded-Host', 'localhost:8080').set('X-Forwarded-Uri', uri);
    for (const [k, v] of Object.entries(headers)) r.set(k, v);
    return r;
  }
  const answer = (res: request.Response) => ({
    status: res.status, user: res.headers['x-auth-user'], roles: res.headers['x-auth-roles'], authorization: res.headers['authorization'],
  });

  /** Counts reads of the cached record's secrets (an own getter shadows the class's). */
  function countSecretReads(cookieValue: string): () => number {
    const record = cache.lookup(cookieValue);
    assert.ok(record instanceof CachedSession, 'the session is cached after its first request');
    const parse = Object.getOwnPropertyDescriptor(CachedSession.prototype, 'secrets')!.get!;
    let reads = 0;
    Object.defineProperty(record, 'secrets', { get() { reads++; return parse.call(this); } });
    return () => reads;
  }

  it('after the first request, allowed and denied requests and CSRF checks never read the secrets', async function () {
    const { cookieValue } = await kv.create(newSession({ sub: 'memo-reader', roles: ['reader'], csrf: 'csrf-memo' }));
    const cookie = { Cookie: `${cookieName}=${cookieValue}` };
    const first = await verify(cached, 'GET', '/api/orders/1', cookie);
    assert.equal(first.status, 200, first.text);
    const reads = countSecretReads(cookieValue);
    const calls = tokens.calls;
    for (let i = 0; i < 3; i++) {
      const again = await verify(cached, 'GET', '/api/orders/1', cookie);
      assert.deepEqual(answer(again), answer(first));
    }
    assert.equal(tokens.calls, calls, 'credentials from the memo');
    // A write: CSRF checked against the kept token, then denied (readers cannot write)...
    const wrongCsrf = await verify(cached, 'POST', '/api/orders/1', { ...cookie, 'X-CSRF-Token': 'nope' });
    assert.equal(wrongCsrf.status, 403);
    assert.match(wrongCsrf.text, /CSRF/i);
    const write = await verify(cached, 'POST', '/api/orders/1', { ...cookie, 'X-CSRF-Token': 'csrf-memo' });
    assert.equal(write.status, 403);
    assert.doesNotMatch(write.text, /CSRF/i, 'past the CSRF check, denied by the policy');
    // ...once by the policy, then from the memo.
    const readsAfterPolicy = reads();
    assert.equal((await verify(cached, 'POST', '/api/orders/1', { ...cookie, 'X-CSRF-Token': 'csrf-memo' })).status, 403);
    assert.equal(reads(), readsAfterPolicy, 'a remembered denial reads nothing');
    assert.ok(readsAfterPolicy <= 1, `${readsAfterPolicy} reads: at most the one Oso query needed`);
  });

  it('a decision the Pdp already holds for this user is found by the kept actor key, without the secrets', async function () {
    const session = newSession({ sub: 'memo-actor', roles: ['reader'] });
    const a = await kv.create(session);
    const b = await kv.create(session); // the same user in a second session (another browser)
    const ca = { Cookie: `${cookieName}=${a.cookieValue}` };
    const cb = { Cookie: `${cookieName}=${b.cookieValue}` };
    assert.equal((await verify(cached, 'GET', '/api/orders/7', ca)).status, 200); // the Pdp caches it
    assert.equal((await verify(cached, 'GET', '/api/orders/1', cb)).status, 200); // b's memo gets its actor key
    const reads = countSecretReads(b.cookieValue);
    assert.equal((await verify(cached, 'GET', '/api/orders/7', cb)).status, 200);
    assert.equal(reads(), 0, 'answered from the Pdp cache by key');
    assert.equal((await verify(cached, 'GET', '/api/orders/8', cb)).status, 200);
    assert.equal(reads(), 1, 'a new question for Oso materialises the user once');
  });

  it('answers exactly as the uncached chain does, for every kind of request', async function () {
    const reader = await kv.create(newSession({ sub: 'memo-same', roles: ['reader'], csrf: 'csrf-same' }));
    const nobody = await kv.create(newSession({ sub: 'memo-none', roles: [] }));
    const cases: [string, string, Record<string, string>][] = [
      ['GET', '/api/orders/1', {}],
      ['GET', '/api/reports', {}],
      ['POST', '/api/orders/1', { 'X-CSRF-Token': 'csrf-same' }],
      ['GET', '/api/boom', {}], // the policy throws: 403
      ['GET', '/api/orders', {}], // no rule: 403
      ['GET', '/api/public/x', {}],
    ];
    for (const { cookieValue } of [reader, nobody]) {
      for (const [method, uri, extra] of cases) {
        const h = { Cookie: `${cookieName}=${cookieValue}`, ...extra };
        for (let i = 0; i < 2; i++) { // the second answer comes from the memo
          const x = await verify(cached, method, uri, h);
          const y = await verify(uncached, method, uri, h);
          assert.deepEqual(answer(x), answer(y), `${method} ${uri} (${i === 0 ? 'first' : 'memo'})`);
        }
      }
    }
  });

  it('keeps no long path in a session\'s memo (20,000 sessions × 8 paths of 8 KiB were 1.3 GB), only short ones', async function () {
    const { cookieValue } = await kv.create(newSession({ sub: 'memo-long', roles: ['reader'] }));
    const cookie = { Cookie: `${cookieName}=${cookieValue}` };
    const long = `/api/orders/${'x'.repeat(8000)}`;
    assert.equal((await verify(cached, 'GET', long, cookie)).status, 200);
    assert.equal((await verify(cached, 'GET', '/api/orders/7?q=' + 'y'.repeat(8000), cookie)).status, 200);
    const record = cache.lookup(cookieValue);
    assert.ok(record instanceof CachedSession);
    const kept = (memoOf(record).decisions as unknown[]).filter((x) => typeof x === 'string' && x.startsWith('/'));
    assert.deepEqual(kept, ['/api/orders/7'], 'the short path is kept, the long one is not');
  });

  it('remembers refused cookie values only when well-formed: one of another length costs nothing to refuse again', function () {
    const before = cache.refusedSize;
    assert.equal(cache.lookup('p'.repeat(72_000)), null);
    assert.equal(cache.lookup('short'), null);
    assert.equal(cache.refusedSize, before, 'malformed values are not kept');
    assert.equal(cache.lookup(`${'A'.repeat(43)}.${'A'.repeat(22)}`), null); // well-formed, forged
    assert.equal(cache.refusedSize, before + 1);
  });
});
