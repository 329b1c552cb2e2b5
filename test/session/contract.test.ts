// ONE suite (contract-suite.ts), run against memory:// and against a real redis-server: both
// backends must behave the same (SPEC 4). Redis-only properties (no command for a forged cookie,
// nothing usable in a dump, failing closed and fast, healing) follow in their own describe block.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { StoreUnavailable } from '../../src/errors.ts';
import { CookieCodec, createSessionStore, MemoryBackend, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { RedisServer } from '../helpers/redis.ts';
import { contract, KEY_A, KEY_B, MIN, newSession, secrets, uniq } from './contract-suite.ts';

// ---------------------------------------------------------------------------------------------

contract('memory://', () => ({
  url: () => `memory://t-${uniq()}`,
  async rawExists(url, id) {
    const b = new MemoryBackend(url);
    try {
      return await b.exists(storeKeys.session(id));
    } finally {
      await b.close();
    }
  },
  async counts(url) {
    const b = new MemoryBackend(url);
    const { reads, writes } = b.stats;
    await b.close();
    return { reads, writes };
  },
}));

let server: RedisServer;
let probe: Redis;

/** Commands that only set up, check or tear down a connection: never a read or a write of data. */
const CONNECTION_COMMANDS = new Set(['info', 'ping', 'subscribe', 'unsubscribe', 'hello', 'select', 'auth', 'quit']);

async function commandStats(): Promise<Map<string, number>> {
  const info = await probe.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

describe('redis-server for the session contract', function () {
  before(async function () {
    this.timeout(15_000);
    server = await RedisServer.start();
    probe = server.client();
  });
  after(async () => {
    probe?.disconnect();
    await server?.stop();
  });

  contract('redis', () => ({
    url: () => server.url,
    async rawExists(_url, id) {
      return (await probe.exists(storeKeys.session(id))) === 1;
    },
    async counts() {
      const stats = await commandStats();
      let reads = 0;
      let writes = 0;
      // INFO is this probe; everything else is the store's. Commands run inside scripts count too.
      // A connection's own set-up is neither: a store's subscriber connection sends SUBSCRIBE when
      // it becomes ready, which on a busy machine can be after the store's first commands (a CI
      // run counted it as a write).
      for (const [cmd, calls] of stats) {
        if (cmd === 'hgetall') reads += calls;
        else if (!CONNECTION_COMMANDS.has(cmd) && !cmd.startsWith('client')) writes += calls;
      }
      return { reads, writes };
    },
  }));

  describe('Redis only', function () {
    this.timeout(20_000);
    const opened: KvSessionStore[] = [];
    const open = (keys: Uint8Array[] = [KEY_A]) => {
      const s = createSessionStore({
        url: server.url, settings: { sessionKeys: keys, sessionIdleMs: 30 * MIN, sessionMaxMs: 12 * 60 * MIN },
      });
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      server.resume();
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it('makes zero Redis commands for a forged or malformed cookie', async () => {
      const store = open();
      await store.ping();
      const { cookieValue } = await store.create(newSession());
      const c0 = await server.commandCount();
      const c1 = await server.commandCount();
      const overhead = c1 - c0; // what commandCount() itself costs
      for (const v of ['garbage', '', new CookieCodec([KEY_B]).issue().cookieValue, `${cookieValue.slice(0, -1)}${cookieValue.endsWith('A') ? 'Q' : 'A'}`, `${cookieValue}x`]) {
        assert.equal(await store.get(v) === null, true, 'refused');
      }
      const c2 = await server.commandCount();
      assert.equal(c2 - c1, overhead, 'no command reached Redis');
      assert.ok(await store.get(cookieValue));
      const c3 = await server.commandCount();
      assert.equal(c3 - c2, overhead + 1, 'a genuine cookie costs exactly one command (HGETALL)');
    });

    it('deletes a session whose blob does not authenticate under a key it has (tampered, or moved from another session)', async () => {
      const store = open();
      const a = await store.create(newSession());
      const b = await store.create(newSession());
      const moved = await probe.hget(storeKeys.session(b.session.id), 'd');
      await probe.hset(storeKeys.session(a.session.id), 'd', moved!);
      assert.equal(await store.get(a.cookieValue), null, 'another session\'s blob does not open here');
      assert.equal(await probe.exists(storeKeys.session(a.session.id)), 0, 'and the session is removed');
      assert.ok(await store.get(b.cookieValue), 'the session it came from is untouched');
    });

    it('stores the documented layout with TTLs', async () => {
      const store = open();
      const idp = `idp-${uniq()}`;
      const browser = `browser-${uniq()}`;
      const { session } = await store.create(newSession({ idp, sub: 'bob', sid: 'sid-b', login: { browser, startedAt: Date.now() } }));
      const key = `gp:s:{${session.id}}`;
      const h = await probe.hgetall(key);
      assert.deepEqual(Object.keys(h).sort(), ['createdAt', 'd', 'end', 'expiresAt', 'idp', 'lastSeen', 'sid', 'sub', 'version']);
      assert.equal(h.sub, 'bob');
      assert.equal(h.idp, idp);
      assert.equal(h.sid, 'sid-b');
      // `end`: the absolute expiry on Redis's clock (TIME), within a second of the BFF's expiresAt here.
      assert.ok(Math.abs(Number(h.end) - Number(h.expiresAt)) < 1_000, `${h.end} vs ${h.expiresAt}`);
      const ttl = await probe.pttl(key);
      assert.ok(ttl > 29 * MIN && ttl <= 30 * MIN, `session TTL ${ttl}`);
      for (const k of [`gp:sid:{${idp}:sid-b}`, `gp:sub:{${idp}:bob}`]) {
        assert.deepEqual(await probe.smembers(k), [session.id], k);
        assert.ok((await probe.pttl(k)) >= 12 * 60 * MIN, `${k} outlives the session`);
      }
      assert.equal(await probe.get(`gp:browser:{${browser}}`), session.id, 'the browser\'s last sign-in');
      assert.ok((await probe.pttl(`gp:browser:{${browser}}`)) > 11 * 60 * MIN);
      await store.deleteBySid(idp, 'sid-b');
      await store.deleteBySub(idp, 'carol');
      assert.equal(await probe.get(`gp:sid-ended:{${idp}:sid-b}`), '1');
      assert.ok(Math.abs(Number(await probe.get(`gp:sub-ended:{${idp}:carol}`)) - Date.now()) < 5_000, 'when the user was logged out');
      for (const k of [`gp:sid-ended:{${idp}:sid-b}`, `gp:sub-ended:{${idp}:carol}`]) assert.ok((await probe.pttl(k)) >= 12 * 60 * MIN, k);
    });

    it('leaves nothing usable in a dump: no cookie, no token, no csrf', async () => {
      const store = open();
      const s = secrets();
      const { cookieValue } = await store.create(newSession({ secrets: s, sid: `sid-${uniq()}` }));
      await store.putTransient('login', `st-${uniq()}`, JSON.stringify({ verifier: 'pkce-verifier-secret-value' }), 60_000);
      const lock = await store.tryLock('refresh-x', 60_000);
      const parts: string[] = [];
      for (const k of await probe.keys('*')) {
        parts.push(k);
        const type = await probe.type(k);
        if (type === 'hash') parts.push(...Object.entries(await probe.hgetall(k)).flat());
        else if (type === 'set') parts.push(...(await probe.smembers(k)));
        else if (type === 'string') parts.push((await probe.get(k)) ?? '');
        else if (type === 'none') continue; // expired or deleted (another test's key) since KEYS
        else assert.fail(`unexpected ${type} key ${k}`);
      }
      const dump = parts.join('\n');
      assert.ok(dump.includes('gp:s:{'), 'the dump does contain the session');
      const forbidden = {
        cookie: cookieValue, random: cookieValue.slice(0, 43), mac: cookieValue.slice(44), csrf: s.csrf,
        access: s.tokens['']!.value, orders: s.tokens.orders!.value, refresh: s.refreshToken!, id: s.idToken!,
        dpop: String(s.dpopJwk!.d), email: 'alice@example.test', verifier: 'pkce-verifier-secret-value',
      };
      for (const [what, value] of Object.entries(forbidden)) assert.ok(!dump.includes(value), `${what} found in the dump`);
      assert.ok(lock);
    });

    it('fails closed and fast when Redis dies, and heals on its own', async () => {
      const store = open();
      const { cookieValue } = await store.create(newSession());
      await store.ping();
      await server.kill();
      for (const op of [() => store.get(cookieValue), () => store.ping(), () => store.create(newSession())]) {
        const t0 = performance.now();
        await assert.rejects(op(), StoreUnavailable);
        const ms = performance.now() - t0;
        assert.ok(ms < 1000, `took ${ms} ms`);
      }
      // getById/tryLock/transients go through the same path
      await assert.rejects(store.getById(randomBytes(32).toString('base64url')), StoreUnavailable);
      await assert.rejects(store.tryLock('x', 1000), StoreUnavailable);

      await server.start();
      const deadline = Date.now() + 8000;
      for (;;) {
        try {
          await store.ping();
          break;
        } catch (err) {
          assert.ok(err instanceof StoreUnavailable);
          if (Date.now() > deadline) throw new Error('the store did not reconnect');
          await sleep(100);
        }
      }
      assert.equal(await store.get(cookieValue), null, 'the restarted server lost the old session');
      const fresh = await store.create(newSession());
      assert.ok(await store.get(fresh.cookieValue), 'the same store instance works again');
    });

    it('fails within 1 s when Redis stalls', async () => {
      const store = open();
      const { cookieValue } = await store.create(newSession());
      await store.ping();
      server.pause();
      try {
        for (const op of [() => store.get(cookieValue), () => store.ping()]) {
          const t0 = performance.now();
          await assert.rejects(op(), StoreUnavailable);
          const ms = performance.now() - t0;
          assert.ok(ms < 1000, `took ${ms} ms`);
        }
      } finally {
        server.resume();
      }
      const deadline = Date.now() + 8000;
      while (Date.now() < deadline) {
        try {
          if (await store.get(cookieValue)) break;
        } catch {
          await sleep(100);
        }
      }
      assert.ok(await store.get(cookieValue), 'works again once Redis answers');
    });

    it('parses sentinel and cluster URLs into constructible stores', async () => {
      for (const u of ['redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster', 'redis+cluster://127.0.0.1:1,127.0.0.1:2']) {
        const s = createSessionStore({ url: u, settings: { sessionKeys: [KEY_A], sessionIdleMs: MIN, sessionMaxMs: 2 * MIN } });
        opened.push(s);
        const t0 = performance.now();
        await assert.rejects(s.ping(), StoreUnavailable);
        assert.ok(performance.now() - t0 < 1500);
      }
    });
  });
});
