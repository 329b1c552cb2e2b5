// goldpath_store_errors_total counts the store's failures that no request hears (SPEC 9, "store
// errors"): best-effort work the sidecar goes on without, the connections and the invalidation
// feed, the session cache's heartbeat, /readyz, and the token refreshes' store calls whose failure
// is not thrown. Each is made to fail on a real redis-server or Sentinel (killed, paused, full, a
// user refused a command, or one backend call failing: withOne) and /metrics must show it. Failures a request
// hears are counted by run-chain.ts (test/verify/faults.test.ts) and must not be counted twice.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { storeErrors, storeErrorsRise } from '../helpers/store-errors.ts';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { CachingSessionStore, createSessionStore, KvSessionStore, RedisBackend, parseRedisUrl, storeKeys } from '../../src/session/index.ts';
import type { KvSessionStoreOptions } from '../../src/session/store.ts';
import { tokenProviderFactory } from '../../src/oidc/index.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { devIdpsYaml, loginExpiringAt, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { RedisServer } from '../helpers/redis.ts';
import { RedisSentinel } from '../helpers/redis-sentinel.ts';
import { fillUntilOom, withOne } from '../helpers/redis-faults.ts';
import { TEST_KEYS } from '../helpers/sessions.ts';
import { send, startVerifyApp, verifyEnv, type RunningVerify } from '../helpers/verify-app.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const rises = storeErrorsRise;

const injected = (what: string) => async (): Promise<never> => {
  throw new Error(`${what} (injected)`);
};

/** A KvSessionStore on the Redis at `url`, its backend as `fault` makes it. */
function kvStore(url: string, fault: (b: RedisBackend) => RedisBackend = (b) => b, more: Partial<KvSessionStoreOptions> = {}): KvSessionStore {
  const settings = loadSettings(verifyEnv(url));
  const backend = new RedisBackend(parseRedisUrl(url), { log: silentLogger });
  return new KvSessionStore({
    backend: fault(backend), sessionKeys: settings.sessionKeys, sessionIdleMs: settings.sessionIdleMs, sessionMaxMs: settings.sessionMaxMs,
    log: silentLogger, ...more,
  });
}

describe('verify: goldpath_store_errors_total counts the store failures no request hears', function () {
  this.timeout(30_000);
  const servers: RedisServer[] = [];
  const stores: { close(): Promise<void> }[] = [];
  const sidecars: RunningVerify[] = [];
  afterEach(async function () {
    for (const s of sidecars.splice(0)) await s.close();
    for (const s of stores.splice(0)) await s.close();
    for (const r of servers.splice(0)) await r.stop();
  });

  async function redisServer(args: string[] = []): Promise<RedisServer> {
    const r = await RedisServer.start(args);
    servers.push(r);
    return r;
  }

  async function sidecarOn(store: KvSessionStore | CachingSessionStore, url: string): Promise<RunningVerify> {
    stores.push(store);
    const s = await startVerifyApp(store, url);
    sidecars.push(s);
    return s;
  }

  /** A Redis user allowed everything but `command`; the REDIS_URL that signs in as it. */
  async function userWithout(redis: RedisServer, command: string): Promise<string> {
    const admin = redis.client();
    try {
      await admin.call('ACL', 'SETUSER', `no-${command}`, 'on', '>test-secret', '~*', '&*', '+@all', `-${command}`);
    } finally {
      admin.disconnect();
    }
    return `redis://no-${command}:test-secret@127.0.0.1:${redis.port}`;
  }

  it('a Redis that goes away: its connection errors, with no request at all', async function () {
    const redis = await redisServer();
    const sidecar = await sidecarOn(kvStore(redis.url), redis.url);
    assert.equal(await storeErrors(sidecar.url), 0);
    await redis.kill();
    await rises(sidecar.url, 0, 'connection errors');
  });

  it('a subscription to the invalidations that Redis refuses', async function () {
    const redis = await redisServer();
    const url = await userWithout(redis, 'subscribe');
    const sidecar = await sidecarOn(kvStore(url), url);
    await rises(sidecar.url, 0, 'SUBSCRIBE refused (NOPERM)');
  });

  it('/readyz that finds the store failing, once a probe', async function () {
    const redis = await redisServer();
    const url = await userWithout(redis, 'ping');
    const sidecar = await sidecarOn(kvStore(url), url);
    await sleep(100); // connected and subscribed: nothing else fails
    assert.equal(await storeErrors(sidecar.url), 0);
    await request(sidecar.url).get('/readyz').expect(503);
    assert.equal(await storeErrors(sidecar.url), 1);
  });

  it('an idle touch a full Redis refuses: the session is served, the refusal counted', async function () {
    const redis = await redisServer(['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction']);
    const sidecar = await sidecarOn(kvStore(redis.url, undefined, { touchIntervalMs: 1 }), redis.url);
    const { cookie } = await sidecar.login();
    // Kept connected until the end: its buffers count towards the memory that makes Redis full.
    const filler = redis.client();
    try {
      await fillUntilOom(filler);
      await sleep(5); // the touch is due
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200);
      assert.equal(await storeErrors(sidecar.url), 1);
    } finally {
      filler.disconnect();
    }
  });

  it('an idle touch that fails after the load\'s deadline: served from the read, the failure counted when it comes', async function () {
    const redis = await redisServer();
    const late = async (): Promise<never> => {
      await sleep(300);
      throw new Error('touch failed late (injected)');
    };
    const sidecar = await sidecarOn(kvStore(redis.url, (b) => withOne(b, 'hashTouch', late), { touchIntervalMs: 1, loadDeadlineMs: 100 }), redis.url);
    const { cookie } = await sidecar.login();
    await sleep(5);
    assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200);
    assert.equal(await storeErrors(sidecar.url), 0, 'not yet failed');
    await rises(sidecar.url, 0, 'the late touch');
    await sleep(300);
    assert.equal(await storeErrors(sidecar.url), 1);
  });

  it('an expired session whose removal fails: 401, the failed removal counted', async function () {
    const redis = await redisServer();
    let now = Date.now();
    const store = kvStore(redis.url, (b) => withOne(b, 'hashTake', injected('delete refused')), { now: () => now });
    const sidecar = await sidecarOn(store, redis.url);
    const { cookie } = await sidecar.login();
    now += store.sessionIdleMs + 1_000;
    assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 401);
    assert.equal(await storeErrors(sidecar.url), 1);
  });

  it('an index cleanup that fails (a real WRONGTYPE): the session is removed, the cleanup counted', async function () {
    const redis = await redisServer();
    let now = Date.now();
    const store = kvStore(redis.url, undefined, { now: () => now });
    const sidecar = await sidecarOn(store, redis.url);
    const { cookie, id } = await sidecar.login({ sub: 'ivy' });
    const client = redis.client();
    try {
      await client.set(storeKeys.bySub('dev', 'ivy'), 'not a set'); // SREM: WRONGTYPE
    } finally {
      client.disconnect();
    }
    now += store.sessionIdleMs + 1_000;
    assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 401);
    now -= store.sessionIdleMs + 1_000;
    assert.equal(await store.getById(id), null, 'the expired session itself is gone');
    assert.equal(await storeErrors(sidecar.url), 1);
  });

  it('an index prune that fails, in the background of a sign-in', async function () {
    const redis = await redisServer();
    const sidecar = await sidecarOn(kvStore(redis.url, (b) => withOne(b, 'setSample', injected('SRANDMEMBER refused'))), redis.url);
    for (let i = 0; i < 32; i++) await sidecar.login({ sub: 'pat' });
    assert.equal(await storeErrors(sidecar.url), 0, 'no prune below 33 members');
    await sidecar.login({ sub: 'pat' });
    await rises(sidecar.url, 0, 'the prune');
  });

  it('a deletion\'s broadcast given up on: once, not at each retry, and not the deletion its caller heard', async function () {
    const redis = await redisServer();
    const store = kvStore(redis.url, (b) => withOne(withOne(b, 'publish', injected('PUBLISH refused')), 'hashTake', injected('delete refused')));
    const sidecar = await sidecarOn(store, redis.url);
    const { id } = await sidecar.login();
    await assert.rejects(store.delete(id));
    assert.equal(await storeErrors(sidecar.url), 0, 'the delete\'s failure is its caller\'s to count');
    await sleep(5_600); // retried for a cache's TTL (5 s), then given up
    assert.equal(await storeErrors(sidecar.url), 1);
  });

  it('a sentinel that stops answering the replicas poll (Sentinel), with no request meanwhile', async function () {
    const deployment = await RedisSentinel.start({ replicas: 1, sentinels: 1 });
    try {
      const sidecar = await sidecarOn(createSessionStore({ url: deployment.url, settings: loadSettings(verifyEnv(deployment.url)), log: silentLogger }), deployment.url);
      await request(sidecar.url).get('/readyz').expect(200);
      await sleep(1_200); // a poll answered
      assert.equal(await storeErrors(sidecar.url), 0);
      // The master and its replica go on: only the poll of the replicas in sync (durable writes) fails.
      await deployment.sentinels[0]!.stop();
      await rises(sidecar.url, 0, 'the replicas poll');
    } finally {
      for (const s of sidecars.splice(0)) await s.close();
      for (const s of stores.splice(0)) await s.close();
      await deployment.stop();
    }
  });

  it('the session cache\'s heartbeat meeting a stalled Redis, with no request meanwhile', async function () {
    const redis = await redisServer();
    const sidecar = await sidecarOn(new CachingSessionStore(kvStore(redis.url)), redis.url);
    const { cookie } = await sidecar.login();
    assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: cookie })).status, 200); // the heartbeat wakes
    await sleep(200);
    assert.equal(await storeErrors(sidecar.url), 0);
    redis.pause();
    try {
      await sleep(1_000);
    } finally {
      redis.resume();
    }
    assert.ok(await storeErrors(sidecar.url) >= 1);
  });
});

describe('verify: goldpath_store_errors_total counts the token refreshes\' store failures no request hears', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let dir: string;
  let sidecar: VerifyProcess | undefined;
  let store: KvSessionStore | undefined;

  before(async () => {
    // The BFF signs users in with the keys the sidecar reads their cookies with.
    env = await startIdpBff({ settings: { sessionKeys: TEST_KEYS.map((k) => new Uint8Array(Buffer.from(k, 'base64url'))) } });
    dir = mkdtempSync(join(tmpdir(), 'goldpath-store-errors-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
    writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(env.idp.issuer));
  });
  after(async () => {
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await sidecar?.close();
    await store?.close();
    sidecar = store = undefined;
  });

  /**
   * The sidecar process (its own token provider, its IdP calls through `fetch` when given) over a
   * store on the BFF's Redis, its backend as `fault` makes it.
   */
  async function sidecarWith(fault: (b: RedisBackend) => RedisBackend, fetch?: FetchLike): Promise<VerifyProcess> {
    store = kvStore(env.redis.url, fault);
    sidecar = await startVerify({
      env: { GOLDPATH_CONFIG_DIR: dir, REDIS_URL: env.redis.url, GOLDPATH_PUBLIC_URL: env.url, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET },
      store, port: 0, host: '127.0.0.1', log: silentLogger,
      ...(fetch ? { tokens: (args) => tokenProviderFactory({ ...args, fetch }) } : {}),
    });
    return sidecar;
  }

  const verify = (v: VerifyProcess, cookie: string) => send(v.port, '/auth/verify', {
    'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders/1', 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http', Cookie: cookie,
  });

  it('a refresh ahead of time the store fails: the unexpired token is served, the failure counted', async () => {
    const v = await sidecarWith((b) => withOne(b, 'put', injected('SET refused'))); // the refresh lock
    const { cookie, token } = await loginExpiringAt(env, 'amy', Date.now() + 10_000);
    const res = await verify(v, cookie);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['authorization'], `Bearer ${token}`);
    assert.equal(await storeErrors(v.url), 1);
  });

  it('a refresh ahead of time that fails on the store after its request was answered (nobody hears it)', async () => {
    const slowly = async (): Promise<never> => {
      await sleep(400);
      throw new Error('SET refused late (injected)');
    };
    const v = await sidecarWith((b) => withOne(b, 'put', slowly));
    const { cookie, token } = await loginExpiringAt(env, 'bea', Date.now() + 10_000);
    const res = await verify(v, cookie);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['authorization'], `Bearer ${token}`);
    await rises(v.url, 0, 'the refresh that failed unheard');
    await sleep(200);
    assert.equal(await storeErrors(v.url), 1);
  });

  it('a refresh lock that cannot be released: the refresh is served, the release counted', async () => {
    const v = await sidecarWith((b) => withOne(b, 'deleteIfEquals', injected('unlock refused')));
    const { cookie, token } = await loginExpiringAt(env, 'cleo', Date.now() - 1_000);
    const res = await verify(v, cookie);
    assert.equal(res.status, 200, res.body);
    assert.notEqual(res.headers['authorization'], `Bearer ${token}`, 'refreshed');
    await rises(v.url, 0, 'the lock release');
  });

  it('a session whose refresh the IdP rejects and that cannot be deleted: 401, the deletion counted', async () => {
    const v = await sidecarWith((b) => withOne(b, 'hashTake', injected('delete refused')));
    const { cookie, session } = await loginExpiringAt(env, 'dora', Date.now() - 1_000);
    assert.ok(await env.store.updateSecrets(session.id, { ...session.secrets, refreshToken: 'not-a-refresh-token-of-the-idp' }));
    assert.equal((await verify(v, cookie)).status, 401);
    await rises(v.url, 0, 'the deletion');
  });

  it('a session logged out during its refresh whose replacement the store cannot tell (nothing revoked): counted', async () => {
    let deleteOnRefresh: string | undefined;
    // The user logs out while the IdP answers the refresh: the save finds no session, and whether
    // a new sign-in replaced it (REPLACED, read with GETDEL) decides whether the rotated refresh
    // token is revoked. That read fails.
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init as RequestInit);
      if (deleteOnRefresh !== undefined && String(init.body ?? '').includes('grant_type=refresh_token')) await env.store.delete(deleteOnRefresh);
      return res;
    };
    const v = await sidecarWith((b) => withOne(b, 'take', injected('GETDEL refused')), fetch);
    const { cookie, session } = await loginExpiringAt(env, 'fay', Date.now() - 1_000);
    deleteOnRefresh = session.id;
    assert.equal((await verify(v, cookie)).status, 401);
    await rises(v.url, 0, 'the read of REPLACED');
  });

  it('refreshed tokens the store cannot take: the 503 once, and each retry of the save in the background', async () => {
    const v = await sidecarWith((b) => withOne(b, 'hashUpdate', injected('HSET refused')));
    const { cookie } = await loginExpiringAt(env, 'edna', Date.now() - 1_000);
    assert.equal((await verify(v, cookie)).status, 503);
    // The 503 is counted by the chain; the save is retried after 100, 200, 400 ms...
    await rises(v.url, 1, 'the save\'s retries', 3_000);
  });
});
