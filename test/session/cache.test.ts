// The sidecar's session cache (src/session/cache.ts) over the real store code on memory:// (one
// dataset shared by several stores = several processes), with a clock the tests move; and, for
// the races and the invalidation-feed states, over a hand-driven stub store (pure unit tests).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CachedSession } from '../../src/session/cached-session.ts';
import { CachingSessionStore, CookieCodec, createSessionStore, MemoryBackend, storeKeys, type KvSessionStore, type ResyncSource } from '../../src/session/index.ts';
import type { Session, SessionStore } from '../../src/session/types.ts';
import { newSession } from '../helpers/sessions.ts';

const KEYS = [randomBytes(32)];

function world(o: { idleMs?: number; ttlMs?: number; maxEntries?: number } = {}) {
  let t = 1_700_000_000_000;
  const now = () => t;
  const url = `memory://cache-${randomBytes(6).toString('hex')}`;
  const settings = { sessionKeys: KEYS, sessionIdleMs: o.idleMs ?? 600_000, sessionMaxMs: 3_600_000 };
  const kv = createSessionStore({ url, settings, now });
  const other = createSessionStore({ url, settings, now }); // the BFF, or another sidecar
  // heartbeatMs 0: memory answers without probes, so the moved clock alone decides (freshness
  // has tests of its own, against the hand-driven store below).
  const cache = new CachingSessionStore(kv, { ttlMs: o.ttlMs ?? 2000, maxEntries: o.maxEntries, now, heartbeatMs: 0 });
  const stats = new MemoryBackend(url).stats; // the shared dataset's counters
  return {
    kv, other, cache, stats, url,
    advance: (ms: number) => { t += ms; },
    close: async () => { await cache.close(); await other.close(); },
  };
}

describe('session cache', function () {
  it('answers a cached session synchronously, without reading the store', async function () {
    const w = world();
    try {
      const { cookieValue, session } = await w.other.create(newSession());
      const first = await w.cache.lookup(cookieValue);
      assert.equal(first?.id, session.id);
      const reads = w.stats.reads;
      const again = w.cache.lookup(cookieValue);
      assert.ok(!(again instanceof Promise), 'a hit is synchronous');
      assert.equal(again, first);
      assert.equal(w.stats.reads, reads, 'no store read for a hit');
      assert.equal(w.cache.hits, 1);
    } finally {
      await w.close();
    }
  });

  it('serves an entry for at most the TTL, then reads the store again', async function () {
    const w = world({ ttlMs: 2000 });
    try {
      const { cookieValue } = await w.other.create(newSession());
      await w.cache.lookup(cookieValue);
      const reads = w.stats.reads;
      w.advance(1999);
      assert.ok(!(w.cache.lookup(cookieValue) instanceof Promise));
      w.advance(1);
      assert.ok(w.cache.lookup(cookieValue) instanceof Promise, 'aged out: read again');
      await new Promise((r) => setImmediate(r));
      assert.equal(w.stats.reads, reads + 1);
    } finally {
      await w.close();
    }
  });

  it('drops a session deleted through any store on the same backend, at once', async function () {
    const w = world();
    try {
      const { cookieValue, session } = await w.other.create(newSession());
      assert.ok(await w.cache.lookup(cookieValue));
      await w.other.delete(session.id);
      assert.equal(await w.cache.lookup(cookieValue), null);
    } finally {
      await w.close();
    }
  });

  it('drops a session whose secrets changed (token refresh), and serves the new secrets', async function () {
    const w = world();
    try {
      const { cookieValue, session } = await w.other.create(newSession());
      assert.equal((await w.cache.lookup(cookieValue))!.version, 1);
      await w.other.updateSecrets(session.id, { ...session.secrets, csrf: 'rotated' });
      const after = await w.cache.lookup(cookieValue);
      assert.equal(after!.secrets.csrf, 'rotated');
      assert.equal(after!.version, 2);
    } finally {
      await w.close();
    }
  });

  it('an aged-out entry is revalidated: same secrets and memo when unchanged, activity still recorded', async function () {
    const w = world({ idleMs: 100_000, ttlMs: 2000 }); // touch interval: 10 s
    try {
      const { cookieValue } = await w.other.create(newSession());
      const first = (await w.cache.lookup(cookieValue)) as CachedSession;
      assert.ok(first instanceof CachedSession);
      const memo = { kept: 'by the verify chain' };
      first.memo = memo;
      const idleBefore = first.idleExpiresAt;
      const secretsBefore = first.secrets;
      w.advance(11_000);
      const writes = w.stats.writes;
      const second = (await w.cache.lookup(cookieValue)) as CachedSession;
      assert.equal(second, first, 'the same record, renewed in place (no garbage per revalidation)');
      assert.equal(second.memo, memo, 'what was derived from this version is kept');
      assert.deepEqual(second.secrets, secretsBefore);
      assert.ok(second.idleExpiresAt > idleBefore, 'idle expiry moved');
      assert.equal(w.stats.writes, writes + 1, 'lastSeen written (the touch)');
      // A new version (a refresh) is a new record: nothing derived from the old secrets survives.
      const changed = { ...first.secrets, csrf: 'csrf-after-refresh' };
      assert.ok(await w.other.updateSecrets(first.id, changed));
      await new Promise((r) => setTimeout(r, 50)); // the invalidation message
      const third = (await w.cache.lookup(cookieValue)) as CachedSession;
      assert.equal(third.memo, undefined);
      assert.equal(third.csrf, 'csrf-after-refresh');
      assert.equal(third.secrets.csrf, 'csrf-after-refresh');
      assert.equal(third.version, first.version + 1);
    } finally {
      await w.close();
    }
  });

  it('idle expiry still slides while every request is a cache hit, and still ends when idle', async function () {
    const w = world({ idleMs: 10_000, ttlMs: 2000 }); // touch interval 1 s
    try {
      const { cookieValue } = await w.other.create(newSession());
      const writes = w.stats.writes;
      // One request every 100 ms for 60 s: 5x the idle timeout, mostly cache hits.
      for (let i = 0; i < 600; i++) {
        w.advance(100);
        assert.ok(await w.cache.lookup(cookieValue), `session lost at ${i * 100} ms`);
      }
      assert.ok(w.cache.hits > 500, `${w.cache.hits} hits`);
      const touches = w.stats.writes - writes;
      assert.ok(touches >= 20 && touches <= 61, `${touches} touches: at most one per touch interval, and they happen`);
      // Silence for longer than the idle timeout: gone for every store, cached or not.
      w.advance(10_001);
      assert.equal(await w.cache.lookup(cookieValue), null);
      assert.equal(await w.other.get(cookieValue), null);
    } finally {
      await w.close();
    }
  });

  it('a session in constant use outlives an idle timeout shorter than the cache TTL', async function () {
    // GOLDPATH_SESSION_IDLE=3s with the sidecar's default 5 s TTL: an entry kept until the idle
    // expiry would be served from memory (no activity recorded) while the session dies in the store.
    for (const idleMs of [3000, 1000]) {
      const w = world({ idleMs, ttlMs: 5000 });
      try {
        const { cookieValue } = await w.other.create(newSession());
        for (let i = 0; i < 300; i++) {
          w.advance(100);
          assert.ok(await w.cache.lookup(cookieValue), `idle ${idleMs} ms: session lost at ${(i + 1) * 100} ms`);
        }
        assert.ok(w.cache.hits > 200, `${w.cache.hits} hits: still answered from memory`);
        w.advance(idleMs + 1);
        assert.equal(await w.cache.lookup(cookieValue), null, 'and still ends when idle');
      } finally {
        await w.close();
      }
    }
  });

  it('a wall clock that steps back does not stretch what is cached: an entry still ages out after its TTL', async function () {
    // NTP stepping the clock back (a VM resumed, a bad time source corrected): an entry whose
    // expiry was computed on the old clock would be served, without a store read, for as long as
    // the step, past sessions that ended without a broadcast and with no idle activity recorded.
    const w = world({ ttlMs: 2000 });
    try {
      const { cookieValue, session } = await w.other.create(newSession());
      assert.ok(await w.cache.lookup(cookieValue));
      w.advance(-3_600_000);
      await new MemoryBackend(w.url).hashTake(storeKeys.session(session.id), []); // gone, no broadcast (a Redis TTL, a flush)
      w.advance(2000);
      assert.equal(await w.cache.lookup(cookieValue), null, 'served from memory after the TTL, because the clock stepped back');
    } finally {
      await w.close();
    }
  });

  it('never serves past the absolute expiry, even within the TTL', async function () {
    let t = 1_700_000_000_000;
    const now = () => t;
    const url = `memory://cache-${randomBytes(6).toString('hex')}`;
    const kv = createSessionStore({ url, settings: { sessionKeys: KEYS, sessionIdleMs: 60_000, sessionMaxMs: 5_000 }, now });
    const cache = new CachingSessionStore(kv, { ttlMs: 60_000, now, heartbeatMs: 0 });
    try {
      const { cookieValue } = await kv.create(newSession());
      assert.ok(await cache.lookup(cookieValue));
      t += 5_000;
      assert.equal(await cache.lookup(cookieValue), null);
    } finally {
      await cache.close();
    }
  });

  it('caches "no such session" for genuine cookies, but never lets forged cookies in', async function () {
    const w = world();
    try {
      const unknown = new CookieCodec(KEYS).issue().cookieValue; // valid MAC, never stored
      assert.equal(await w.cache.lookup(unknown), null);
      const reads = w.stats.reads;
      assert.equal(w.cache.lookup(unknown), null, 'cached, synchronously');
      assert.equal(w.stats.reads, reads);
      const size = w.cache.size;
      for (let i = 0; i < 100; i++) {
        const forged = new CookieCodec([randomBytes(32)]).issue().cookieValue;
        assert.equal(w.cache.lookup(forged), null, 'refused synchronously');
      }
      assert.equal(w.cache.size, size, 'forged cookies take no room');
      assert.equal(w.stats.reads, reads, 'and cost no store read');
    } finally {
      await w.close();
    }
  });

  it('keeps no refresh token and no ID token in memory; the store still has them for a refresh', async function () {
    const w = world();
    try {
      const { cookieValue, session } = await w.other.create(newSession({ sub: 'slim' }));
      const full = session.secrets;
      assert.ok(full.refreshToken, 'the test session has a refresh token');
      for (const got of [await w.cache.lookup(cookieValue), w.cache.lookup(cookieValue)]) {
        const s = got as Session;
        assert.equal(s.secrets.refreshToken, undefined);
        assert.equal(s.secrets.idToken, undefined);
        assert.deepEqual(s.secrets.tokens, full.tokens);
        assert.deepEqual(s.secrets.user, full.user);
        assert.equal(s.secrets.csrf, full.csrf);
      }
      assert.equal((await w.cache.getById(session.id))!.secrets.refreshToken, full.refreshToken);
    } finally {
      await w.close();
    }
  });

  it('a revalidated entry keeps its place in the eviction order: first cached, first evicted', async function () {
    const w = world({ maxEntries: 2, ttlMs: 2000 });
    try {
      const a = (await w.other.create(newSession({ sub: 'a' }))).cookieValue;
      const b = (await w.other.create(newSession({ sub: 'b' }))).cookieValue;
      const c = (await w.other.create(newSession({ sub: 'c' }))).cookieValue;
      await w.cache.lookup(a);
      await w.cache.lookup(b);
      w.advance(2500);
      await w.cache.lookup(b); // both aged out; b is revalidated in place
      await w.cache.lookup(a);
      assert.equal(w.cache.size, 2);
      await w.cache.lookup(c); // evicts a, the first cached, although it was read last
      assert.equal(w.cache.size, 2);
      assert.ok(w.cache.lookup(a) instanceof Promise, 'a evicted');
      assert.ok(!(w.cache.lookup(b) instanceof Promise), 'b kept');
      // A revalidation that finds the session idle-expired answers null, and never serves it again.
      w.advance(601_000);
      assert.equal(await w.cache.lookup(b), null);
      assert.equal(await w.cache.lookup(b), null);
      assert.ok(w.cache.size <= 2);
    } finally {
      await w.close();
    }
  });

  it('is bounded: the oldest entries go first', async function () {
    const w = world({ maxEntries: 3 });
    try {
      const cookies = [];
      for (let i = 0; i < 5; i++) cookies.push((await w.other.create(newSession({ sub: `u${i}` }))).cookieValue);
      for (const c of cookies) await w.cache.lookup(c);
      assert.equal(w.cache.size, 3);
      assert.ok(w.cache.lookup(cookies[0]!) instanceof Promise, 'evicted');
      assert.ok(!(w.cache.lookup(cookies[4]!) instanceof Promise), 'kept');
    } finally {
      await w.close();
    }
  });

  describe('against a hand-driven store', function () {
    /** A store whose reads resolve when the test says so, and whose feed state the test sets. */
    class Stub implements Partial<SessionStore>, ResyncSource {
      invalidationsLive = true;
      readonly sessionIdleMs = 1_800_000; // the sessions below are last seen now, idle for an hour
      readonly reads: { id: string; resolve: (s: Session | null) => void }[] = [];
      #invalidate: ((id: string) => void)[] = [];
      #resync: (() => void)[] = [];
      macChecks = 0;
      /** A stalled store: pings get no answer. */
      stalled = false;
      /** A slow link: pings are answered when the test releases them (releasePings). */
      held: (() => void)[] | undefined;
      /** Probes sent (the heartbeat's pings). */
      pings = 0;
      ping(): Promise<void> {
        this.pings++;
        if (this.stalled) return new Promise(() => {});
        const held = this.held;
        return held === undefined ? Promise.resolve() : new Promise((resolve) => held.push(resolve));
      }
      releasePings(): void {
        const held = this.held ?? [];
        this.held = undefined;
        for (const r of held) r();
      }
      idOf(cookie: string): string | null {
        this.macChecks++;
        return cookie.startsWith('ok-') ? cookie.slice(3) : null;
      }
      getById(id: string): Promise<Session | null> {
        return new Promise((resolve) => this.reads.push({ id, resolve }));
      }
      revalidate(known: Session): Promise<Session | null> {
        return this.getById(known.id);
      }
      onInvalidate(l: (id: string) => void): () => void {
        this.#invalidate.push(l);
        return () => {};
      }
      onResync(l: () => void): () => void {
        this.#resync.push(l);
        return () => {};
      }
      fireInvalidate(id: string): void { for (const l of this.#invalidate) l(id); }
      fireResync(live: boolean): void {
        this.invalidationsLive = live;
        for (const l of this.#resync) l();
      }
    }
    const session = (id: string): Session => ({
      id, sub: 's', idp: 'dev', sid: undefined, createdAt: 0, expiresAt: Date.now() + 3_600_000,
      idleExpiresAt: Date.now() + 3_600_000, version: 1, secrets: newSession().secrets,
    });
    const make = (o: { heartbeatMs?: number; stallMs?: number; freshMs?: number; maxBytes?: number } = {}) => {
      const stub = new Stub();
      return { stub, cache: new CachingSessionStore(stub as unknown as SessionStore & ResyncSource, { heartbeatMs: 0, ...o }) };
    };

    async function waitServing(cache: CachingSessionStore): Promise<void> {
      const t0 = Date.now();
      while (!cache.serving) {
        assert.ok(Date.now() - t0 < 2000, 'never fresh');
        await new Promise((x) => setTimeout(x, 5));
      }
    }

    /**
     * Looks `id` up until memory answers it (the stub answering each read meanwhile), within 1 s:
     * after a stall or a pause, once a probe is back.
     */
    async function untilServedAgain(stub: Stub, cache: CachingSessionStore, id: string, why: string): Promise<void> {
      const t1 = Date.now();
      for (;;) {
        const r = cache.lookup(`ok-${id}`);
        if (!(r instanceof Promise)) return;
        stub.reads.at(-1)!.resolve(session(id));
        await r;
        assert.ok(Date.now() - t1 < 1000, why);
        await new Promise((x) => setTimeout(x, 5));
      }
    }

    /**
     * Date.now made movable (the cache reads Date.now for freshness, not an injected clock):
     * installed before the cache is made; `back` steps it back; `restore` puts the real one back.
     */
    function movableDateNow(): { back(ms: number): void; restore(): void } {
      const real = Date.now;
      let by = 0;
      Date.now = () => real() - by;
      return { back: (ms) => { by = ms; }, restore: () => { Date.now = real; } };
    }

    /** Loads session `id` through the cache (the stub answers the read) and checks it is cached. */
    async function cacheOne(stub: Stub, cache: CachingSessionStore, id: string): Promise<void> {
      const p = cache.lookup(`ok-${id}`);
      stub.reads.at(-1)!.resolve(session(id));
      await p;
      assert.ok(!(cache.lookup(`ok-${id}`) instanceof Promise), 'cached');
    }

    it('bounds what it holds in bytes: oldest out first; a session over 1/256 of the bound is never kept', async function () {
      const maxBytes = 256 * 2000; // sessions over 2,000 bytes are never kept
      const { stub, cache } = make({ maxBytes });
      // An IdP's 30 KB token (a session up to the IdP's 1 MiB answers could be cached before).
      const small = session('big');
      const big: Session = { ...small, secrets: { ...small.secrets, tokens: { '': { value: 'x'.repeat(30_000), type: 'Bearer', expiresAt: Date.now() + 3_600_000, scope: undefined } } } };
      for (let i = 0; i < 2; i++) {
        const p = cache.lookup('ok-big');
        assert.ok(p instanceof Promise, 'read from the store every time');
        stub.reads.at(-1)!.resolve(big);
        assert.equal((await p)?.id, 'big', 'and answered');
      }
      assert.equal(cache.size, 0);
      // Small sessions until the bound: the oldest go first, the sum stays under it.
      for (let i = 0; i < 600; i++) await cacheOne(stub, cache, `s${i}`);
      assert.ok(cache.bytes <= maxBytes, `${cache.bytes} bytes held`);
      assert.ok(cache.size > 100 && cache.size < 600, `${cache.size} entries`);
      assert.ok(cache.lookup('ok-s0') instanceof Promise, 'the oldest was evicted');
      stub.reads.at(-1)!.resolve(session('s0'));
      assert.ok(!(cache.lookup('ok-s599') instanceof Promise), 'the newest is kept');
      // An invalidation gives its bytes back.
      const held = cache.bytes;
      stub.fireInvalidate('s599');
      assert.ok(cache.bytes < held);
    });

    it('a read that raced a deletion is answered but not cached', async function () {
      const { stub, cache } = make();
      const p = cache.lookup('ok-a') as Promise<Session | null>;
      assert.equal(stub.reads.length, 1);
      stub.fireInvalidate('a'); // the logout lands while our read is in flight
      stub.reads[0]!.resolve(session('a')); // and the read returns what it saw before
      assert.equal((await p)?.id, 'a');
      assert.ok(cache.lookup('ok-a') instanceof Promise, 'not cached: the next request reads again');
      assert.equal(stub.reads.length, 2);
    });

    it('concurrent misses share one read; after an invalidation, new callers start a new one', async function () {
      const { stub, cache } = make();
      const a = cache.lookup('ok-a');
      const b = cache.lookup('ok-a');
      assert.equal(a, b);
      assert.equal(stub.reads.length, 1);
      stub.fireInvalidate('x'); // any invalidation
      const c = cache.lookup('ok-a');
      assert.notEqual(c, a);
      assert.equal(stub.reads.length, 2);
      for (const r of stub.reads) r.resolve(session('a'));
      await Promise.all([a, c]);
    });

    it('while the invalidation feed is down nothing is served from or put in the cache; a resync empties it', async function () {
      const { stub, cache } = make();
      const p = cache.lookup('ok-a');
      stub.reads[0]!.resolve(session('a'));
      await p;
      assert.ok(!(cache.lookup('ok-a') instanceof Promise));
      stub.fireResync(false); // subscriber connection lost
      assert.equal(cache.size, 0);
      const q = cache.lookup('ok-a');
      assert.ok(q instanceof Promise, 'read from the store');
      stub.reads[1]!.resolve(session('a'));
      await q;
      assert.equal(cache.size, 0, 'not cached while the feed is down');
      stub.fireResync(true);
      const r = cache.lookup('ok-a');
      stub.reads[2]!.resolve(session('a'));
      await r;
      assert.equal(cache.size, 1, 'cached again once the feed is back');
    });

    it('an idle cache sends no probes; the next lookup probes at once and reads the store until that probe is back', async function () {
      this.timeout(10_000);
      const { stub, cache } = make({ heartbeatMs: 10, freshMs: 60, stallMs: 300 });
      try {
        await waitServing(cache);
        await cacheOne(stub, cache, 'a');
        await new Promise((x) => setTimeout(x, 1300)); // 130 beats without a lookup: idle after 100
        const idle = stub.pings;
        await new Promise((x) => setTimeout(x, 200));
        assert.equal(stub.pings, idle, 'no probe while nothing is looked up');
        // The session is deleted while the sidecar is idle and the link is stalled: no probe can
        // prove memory fresh, so the entry must not be served after the pause.
        stub.stalled = true;
        const p = cache.lookup('ok-a');
        assert.equal(stub.pings, idle + 1, 'the first lookup sent a probe at once');
        assert.ok(p instanceof Promise, 'read from the store, not served from memory after the pause');
        stub.reads.at(-1)!.resolve(null);
        assert.equal(await p, null);
        // The link answers again: lookups bring a probe, the probe freshness, and hits come back.
        // (Idle again by now, the stall declared: nothing probes until a lookup asks.)
        stub.stalled = false;
        await untilServedAgain(stub, cache, 'b', 'served from memory again once a probe is answered');
      } finally {
        await cache.close().catch(() => {});
      }
    });

    it('after a pause, a clock stepped back does not make the last probe before it count: nothing served until a new probe is back', async function () {
      this.timeout(10_000);
      const clock = movableDateNow();
      const { stub, cache } = make({ heartbeatMs: 10, freshMs: 60, stallMs: 300 });
      try {
        await waitServing(cache);
        await cacheOne(stub, cache, 'p');
        // Wait for the pause (100 beats without a lookup): probes stop.
        for (let last = -1; stub.pings !== last;) {
          last = stub.pings;
          await new Promise((x) => setTimeout(x, 200));
        }
        stub.stalled = true; // the link stalls during the pause: nothing notices
        clock.back(1000); // and the clock steps back to before the last probe's window ended
        const p = cache.lookup('ok-p');
        assert.ok(p instanceof Promise, 'read from the store, not served on a probe from before the pause');
        stub.reads.at(-1)!.resolve(null);
        assert.equal(await p, null);
      } finally {
        clock.restore();
        await cache.close().catch(() => {});
      }
    });

    it('a store that stops answering pings (a stalled Redis) is not trusted: nothing served or kept until it answers again', async function () {
      // freshMs above stallMs: this is about the stall (emptying), not the freshness window.
      const { stub, cache } = make({ heartbeatMs: 20, stallMs: 60, freshMs: 1000 });
      try {
        await cacheOne(stub, cache, 'a');
        stub.stalled = true;
        const t0 = Date.now();
        while (!(cache.lookup('ok-a') instanceof Promise)) {
          assert.ok(Date.now() - t0 < 20 + 60 + 200, 'still served from memory after the heartbeat should have noticed');
          await new Promise((r) => setTimeout(r, 5));
        }
        assert.equal(cache.size, 0, 'emptied');
        stub.reads.at(-1)!.resolve(session('a')); // a read that got through: answered, not kept
        assert.ok(cache.lookup('ok-a') instanceof Promise, 'not cached while the store does not answer pings');
        stub.stalled = false;
        await untilServedAgain(stub, cache, 'a', 'trusted again once pings are answered');
      } finally {
        await cache.close().catch(() => {});
      }
    });

    it('a probe that comes back late stops memory answering after freshMs, without emptying the cache; it answers again once a probe is back', async function () {
      const { stub, cache } = make({ heartbeatMs: 10, freshMs: 60, stallMs: 10_000 });
      try {
        await waitServing(cache);
        await cacheOne(stub, cache, 'a');
        stub.held = []; // the link slows down: no probe comes back, and none is late enough for a stall
        const t0 = Date.now();
        let r = cache.lookup('ok-a');
        while (!(r instanceof Promise)) {
          assert.ok(Date.now() - t0 < 60 + 500, 'still served from memory long after the latest probe that came back');
          await new Promise((x) => setTimeout(x, 5));
          r = cache.lookup('ok-a');
        }
        assert.equal(cache.size, 1, 'not emptied for a late probe');
        stub.reads.at(-1)!.resolve(session('a')); // a read that got through: answered...
        assert.equal((await r)?.id, 'a');
        assert.ok(cache.lookup('ok-a') instanceof Promise, '...and while not fresh, neither kept nor served from memory');
        stub.reads.at(-1)!.resolve(session('a'));
        stub.releasePings(); // the probes come back: fresh again, the entry is served from memory
        await waitServing(cache);
        assert.ok(!(cache.lookup('ok-a') instanceof Promise), 'served from memory again, without a reload');
      } finally {
        stub.releasePings();
        await cache.close().catch(() => {});
      }
    });

    it('a clock that steps back (under a second) does not keep memory answering while no probe comes back', async function () {
      const clock = movableDateNow();
      const { stub, cache } = make({ heartbeatMs: 10, freshMs: 60, stallMs: 10_000 });
      try {
        await waitServing(cache);
        await cacheOne(stub, cache, 'c');
        clock.back(600); // an NTP step back of 0.6 s...
        stub.held = []; // ...and the link goes silent: no probe comes back
        const t0 = performance.now();
        while (!(cache.lookup('ok-c') instanceof Promise)) {
          assert.ok(performance.now() - t0 < 60 + 200, 'still served from memory after the step, with no probe back');
          await new Promise((x) => setTimeout(x, 5));
        }
        stub.releasePings(); // probes sent on the new clock come back: served from memory again
        await waitServing(cache);
        assert.ok(!(cache.lookup('ok-c') instanceof Promise), 'served from memory again');
      } finally {
        clock.restore();
        stub.releasePings();
        await cache.close().catch(() => {});
      }
    });

    it('a clock that steps back while no lookup comes (a quiet moment) does not keep memory answering while no probe comes back', async function () {
      // The step is seen by the heartbeat, not only by lookups: a lookup sees one only while the
      // clock is still behind the previous lookup's time. Seen by none, the latest probe's window,
      // taken on the clock before the step, stayed open for as long as the step.
      const clock = movableDateNow();
      const { stub, cache } = make({ heartbeatMs: 10, freshMs: 200, stallMs: 10_000 });
      try {
        await waitServing(cache);
        await cacheOne(stub, cache, 'q');
        clock.back(500); // an NTP step back of 0.5 s, no request meanwhile...
        stub.held = []; // ...and the link goes silent: no probe comes back
        await new Promise((x) => setTimeout(x, 580)); // the clock is past the last lookup's time again
        assert.ok(cache.lookup('ok-q') instanceof Promise, 'served from memory 580 ms after the last probe came back (freshMs 200)');
      } finally {
        clock.restore();
        stub.releasePings();
        await cache.close().catch(() => {});
      }
    });

    it('a ping that fails (not merely slow) stops the cache serving at once', async function () {
      const { stub, cache } = make({ heartbeatMs: 20, stallMs: 1000 });
      try {
        await cacheOne(stub, cache, 'b');
        stub.ping = () => Promise.reject(new Error('not subscribed to session invalidations'));
        await new Promise((r) => setTimeout(r, 80));
        assert.ok(cache.lookup('ok-b') instanceof Promise);
      } finally {
        await cache.close().catch(() => {});
      }
    });

    it('a refused cookie value is remembered (no second MAC check), in a table of its own', async function () {
      const { stub, cache } = make();
      // Well-formed (the cookie's length): only those are remembered; others are refused on
      // their length alone, which costs nothing to do again.
      const forged = (i: number) => `${'F'.repeat(43)}.${String(i).padStart(22, 'A')}`;
      assert.equal(cache.lookup(forged(1)), null);
      assert.equal(cache.lookup(forged(1)), null);
      assert.equal(stub.macChecks, 1, 'the MAC of a value already refused is not computed again');
      assert.equal(cache.lookup('forged-1'), null);
      assert.equal(cache.lookup('forged-1'), null);
      assert.equal(stub.macChecks, 3, 'a malformed value is not remembered');
      for (let i = 0; i < 10_000; i++) cache.lookup(forged(i));
      assert.equal(cache.size, 0, 'refused values never take room in the session cache');
      assert.equal(stub.reads.length, 0, 'and never reach the store');
    });

    it('a store failure is passed on and never cached', async function () {
      const stub = new Stub();
      let fail = true;
      stub.getById = (id) => (fail ? Promise.reject(new Error('down')) : Promise.resolve(session(id)));
      const cache = new CachingSessionStore(stub as unknown as SessionStore & ResyncSource, { heartbeatMs: 0 });
      await assert.rejects(Promise.resolve(cache.lookup('ok-a')), /down/);
      fail = false;
      assert.equal((await cache.lookup('ok-a'))?.id, 'a');
    });
  });

  it('KvSessionStore reports the memory backend\'s feed as always live', function () {
    const kv: KvSessionStore = createSessionStore({ url: `memory://cache-${randomBytes(4).toString('hex')}`, settings: { sessionKeys: KEYS, sessionIdleMs: 1000, sessionMaxMs: 2000 } });
    assert.equal(kv.invalidationsLive, true);
    return kv.close();
  });
});
