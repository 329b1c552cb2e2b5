// A short-lived in-process session cache for the verify sidecar: the hot path answers from memory
// instead of one Redis round trip (and an AES-GCM open and a JSON.parse) per request.
//
// Staleness, and why it is bounded:
//   - Deletion and secret changes (logout, back-channel logout, token refresh, a refresh the IdP
//     rejected) are broadcast by the store (onInvalidate, Redis pub/sub): every sidecar drops the
//     entry as soon as the message arrives, typically well under a millisecond after the write.
//   - Pub/sub can lose messages while the subscriber reconnects. The store tells us (onResync) when
//     the feed drops and when it is back: we empty the cache both times and do not serve from it
//     while the feed is down (invalidationsLive), so a missed message cannot leave a stale entry.
//   - A Redis that is gone closes the subscriber connection, which empties the cache at once. A
//     link that *stalls* (connections open, no answers: a partition, a frozen Redis, a deaf
//     Cluster subscriber that ioredis moved to another node without a word) is covered by a
//     heartbeat, and that is what bounds staleness whatever the link does: every `heartbeatMs`
//     (50 ms) the store is pinged and a probe is published that must come back through this
//     process's own subscriber connection (KvSessionStore.probeInvalidations). Redis writes what
//     it delivers to one subscriber connection in the order it executed the PUBLISHes, so a probe
//     SENT at time S that came back proves that every invalidation published before S (a logout
//     whose delete had completed by S) has reached this process, and was applied before the echo.
//     An entry is served from memory at time t only if such an S >= t - `freshMs` (100 ms): a
//     revoked session is served for at most freshMs after its delete completed, on every link. On
//     a healthy link the latest echoed probe is at most heartbeatMs + one round trip old (~51 ms).
//     When it is older (a slow link, a late event loop, a GC pause) lookups go to the store as
//     misses and what they load is not cached, but the entries stay: a 60 ms pause must not cost
//     every session a re-read. A probe unanswered for `stallMs` (400 ms), or failed, empties the
//     cache (a real stall: reads wait on Redis and time out into 503s like any other) and it
//     stays unserved until a probe answers again. (Before, the bound was heartbeatMs + stallMs,
//     250 + 400 ms: a sidecar cut off from Redis answered 200 for ~550 ms after a logout.)
//     On Redis Cluster a PUBLISH reaches the subscriber's node over the cluster bus, whose order
//     across publishing nodes Redis does not promise: there the bound holds up to that bus delay.
//   - The heartbeat's cost, per sidecar process: 20 probes a second, each a PUBLISH and a PING
//     (40 commands/s; a second PING on Sentinel, where writes have their own connection). A probe
//     goes to a channel only its sender subscribes to (RedisBackend.echo), so it is not fanned
//     out: Redis delivers 20 messages/s per process whatever the number of processes (on the
//     shared invalidation channel it would be 20 x N to each of N processes, 20 N^2 in all).
//     Only while sessions are looked up: after IDLE_BEATS beats (5 s) without a lookup of a
//     cookie with a valid MAC no probe is sent (an idle fleet of sidecars costs Redis nothing,
//     nor does one that only sees anonymous or forged requests), and the next lookup sends one at
//     once. Nothing is lost by the pause: freshness is proven by a probe sent after it (the
//     argument above does not care what came before), so until that probe is back, about one
//     round trip, lookups read the store, as on a slow link.
//   - As a backstop for anything else (a silently broken feed), an entry lives at most `ttlMs`
//     (default 5 s), and never past the session's absolute or idle expiry. (It was 1 s, and also
//     bounded the stall case, before the heartbeat: every cached session then cost a Redis read a
//     second, 0.27 commands per request for 10,000 sessions in round robin.)
//   - A load that was in flight while an invalidation arrived is answered but not cached (the
//     generation check), so a read racing a logout cannot re-insert the deleted session.
//   - "No such session" is cached too, for cookies with a valid MAC only: a session id is 256
//     random bits and is never re-created, so a deleted or expired session cannot come back; the
//     entry only spares Redis. Forged or malformed cookies never cost a Redis call and never enter
//     the session cache, so nobody can flood it with junk to push real sessions out. They go to a
//     small table of their own (REFUSED_ENTRIES, emptied when full): a value that keeps coming back
//     (a cookie signed with a key since rotated out, sent by every poll of a forgotten tab) is then
//     refused without recomputing its MAC; an attacker who varies the value only churns that table.
//
// Sliding idle expiry still works: a miss goes through the store (get, or revalidate for an entry
// that aged out), which records activity exactly as an uncached read does (one write at most per
// touch interval, default min(60 s, idle / 10)). An active session misses at least once per ttlMs,
// so its lastSeen lags real activity by at most touchInterval + ttlMs; with the defaults a user
// active at time T keeps the session until at least T + 30 min − 65 s.
//
// What is kept of a session: a CachedSession (cached-session.ts), its secrets as one JSON string
// without the refresh token and the ID token, which a sidecar never sends anywhere (a token refresh
// reads the session again from the store, under its lock).
//
// Keys are the exact cookie values: a hit costs one Map lookup (no HMAC, no SHA-256). Only values
// that the store accepted (valid MAC) ever become keys, so a forged cookie can never hit.
// Bounded: at most maxEntries entries and maxBytes of what they hold (a session over 1/256 of that
// is never kept), first cached first evicted. An entry that ages out is
// revalidated in place and keeps its place, so when the cache is full a session that has been busy
// for long goes before newer ones; that costs it one read (its secrets are decrypted again).
import { clearInterval, setInterval } from 'node:timers';
import { flatCopy } from '../strings.ts';
import { CachedSession } from './cached-session.ts';
import { COOKIE_VALUE_LENGTH } from './cookie.ts';
import type { NewSession, ReadOptions, Session, SessionSecrets, SessionStore } from './types.ts';

/** What the cache needs from a store beyond the contract (KvSessionStore has both). */
export interface ResyncSource {
  readonly invalidationsLive: boolean;
  /** The sessions' idle timeout: a cached session is read again well within it (see #until). */
  readonly sessionIdleMs: number;
  onResync(listener: () => void): () => void;
  /**
   * Optional, used by the heartbeat instead of ping(): the store answers AND this process's
   * invalidation feed hears what is published now (KvSessionStore.probeInvalidations).
   */
  probeInvalidations?(timeoutMs: number): Promise<void>;
  /** Optional: reads a known session again, keeping its decrypted secrets when unchanged. */
  revalidate?(known: Session): Promise<Session | null>;
}

export interface SessionCacheOptions {
  /** Longest a cached answer is used without reading the store. Default 5000 ms. */
  readonly ttlMs?: number;
  /**
   * How often the store is probed (a ping, and an echo through the invalidation feed), which keeps
   * the cache fresh (see freshMs) and finds a stalled Redis or a deaf feed (0: never, and entries
   * are served without a probe: tests). Default 50 ms.
   */
  readonly heartbeatMs?: number;
  /**
   * Longest time since the SENDING of the latest probe that came back for which memory may still
   * answer: the bound on how long a revoked session is served, whatever the link to Redis does.
   * Default 100 ms. Keep it well above heartbeatMs plus a round trip, or hits turn into reads.
   */
  readonly freshMs?: number;
  /** A probe unanswered this long: the store counts as stalled, nothing is served from memory. Default 400 ms. */
  readonly stallMs?: number;
  /** Upper bound on cached cookies. Default 20,000. */
  readonly maxEntries?: number;
  /**
   * Upper bound on what the cached sessions hold, in bytes (CachedSession.bytes): an IdP's tokens
   * (up to its 1 MiB answers) and a user's claims (up to 64 KiB) have no bound of their own that
   * would keep maxEntries of them small. Oldest first out; a session over 1/256 of it is never
   * cached (it is read at every request). Default 64 MiB.
   */
  readonly maxBytes?: number;
  /** Clock (tests). Default Date.now. */
  readonly now?: () => number;
  /**
   * Called for each cookie refused without a store read (malformed, or a MAC no session key
   * verifies): the sidecar's log line when its keys differ from the BFF's (every sign-in a 401).
   */
  readonly onRefused?: () => void;
}

export const DEFAULT_SESSION_CACHE_TTL_MS = 5000;
const DEFAULT_HEARTBEAT_MS = 50;
const DEFAULT_FRESH_MS = 100;
const DEFAULT_STALL_MS = 400;
export const DEFAULT_SESSION_CACHE_ENTRIES = 20_000;
export const DEFAULT_SESSION_CACHE_BYTES = 64 * 1024 * 1024;
/** What an entry for an absent session costs (its key and slot). */
const ABSENT_BYTES = 150;
/**
 * The clock going back by more than this empties the cache: entries' expiry times were computed on
 * the clock before the step, and would be served, unread, for as long as the step.
 */
const CLOCK_STEP_BACK_MS = 1000;
/**
 * Beats without a lookup after which the heartbeat sends no probe until the next lookup: 5 s at
 * 50 ms, the cache's TTL. (After a pause the first lookups read Redis for a round trip: a shorter
 * idle time would pause and resume a sidecar with a request every second or two, for nothing.)
 */
const IDLE_BEATS = 100;
/** Cookie values refused by the codec (bad MAC, malformed) remembered, at most. */
const REFUSED_ENTRIES = 4096;

const sizeOf = (e: Entry): number => (e instanceof CachedSession ? e.bytes : ABSENT_BYTES);

/** A cookie with a valid MAC whose session does not exist (it cannot come back: see above). */
class Absent {
  constructor(readonly until: number) {}
}

type Entry = CachedSession | Absent;

export class CachingSessionStore implements SessionStore {
  readonly #inner: SessionStore & ResyncSource;
  readonly #ttl: number;
  readonly #max: number;
  readonly #maxBytes: number;
  /** The sum of the entries' sizes (sizeOf). */
  #bytes = 0;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Session id → the cookie its entry is cached under. */
  readonly #byId = new Map<string, string>();
  readonly #inflight = new Map<string, Promise<Session | null>>();
  readonly #refused = new Set<string>();
  readonly #unsubscribe: (() => void)[];
  readonly #heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #stallMs: number;
  readonly #freshMs: number;
  /** The clock is Date.now (not injected): lookup's `now` is also the freshness clock. */
  readonly #dateClock: boolean;
  /** The last probe answered in time (see the heartbeat above). */
  #answering = true;
  /** When the probe in flight was sent (performance.now(): a stall is timed on a monotonic clock), or 0. */
  #pingSent = 0;
  /** Beats since the last lookup (see IDLE_BEATS): a counter, so the hot path reads no clock for it. */
  #quietBeats = 0;
  /**
   * Memory may answer while Date.now() is at most this: when the latest probe that came back was
   * sent, plus freshMs. Infinity without a heartbeat; -Infinity once stalled, until a probe answers.
   * (Date.now(), whatever the injected clock: that one is for expiry only.)
   */
  #freshUntil: number;
  /** Bumped by every invalidation and resync: a load that saw a bump is not cached. */
  #gen = 0;
  /** The latest time lookup() saw on the clock (a step back, see CLOCK_STEP_BACK_MS). */
  #latest = 0;
  readonly #onRefused: (() => void) | undefined;
  hits = 0;
  misses = 0;
  /** Cookies refused without a store read (see onRefused). */
  refused = 0;

  constructor(inner: SessionStore & ResyncSource, opts: SessionCacheOptions = {}) {
    this.#inner = inner;
    this.#ttl = opts.ttlMs ?? DEFAULT_SESSION_CACHE_TTL_MS;
    this.#max = Math.max(1, opts.maxEntries ?? DEFAULT_SESSION_CACHE_ENTRIES);
    this.#maxBytes = opts.maxBytes ?? DEFAULT_SESSION_CACHE_BYTES;
    this.#now = opts.now ?? Date.now;
    this.#dateClock = this.#now === Date.now;
    this.#onRefused = opts.onRefused;
    if (!(this.#ttl > 0)) throw new RangeError('ttlMs must be positive');
    this.#stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.#freshMs = opts.freshMs ?? DEFAULT_FRESH_MS;
    if (!(this.#freshMs > 0)) throw new RangeError('freshMs must be positive');
    const every = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    // Not fresh until a first probe has come back (the feed is not up yet anyway).
    this.#freshUntil = every > 0 ? -Infinity : Infinity;
    this.#unsubscribe = [
      inner.onInvalidate((id) => this.#invalidate(id)),
      inner.onResync(() => {
        this.clear();
        // The feed is back: probe now rather than at the next beat, so serving resumes sooner.
        if (this.#heartbeat !== undefined && inner.invalidationsLive) this.#beat();
      }),
    ];
    if (every > 0) {
      this.#heartbeat = setInterval(() => {
        this.#quietBeats++;
        this.#beat();
      }, every);
      this.#heartbeat.unref();
      this.#beat();
    }
  }

  /**
   * Whether cached answers may be served now (and loads kept): the feed is live and a probe sent
   * within freshMs came back. Off the hot path (lookup inlines it on the clock it already read).
   */
  get serving(): boolean {
    const t = Date.now();
    return (this.#dateClock && this.#latest > t ? this.#latest : t) <= this.#freshUntil && this.#inner.invalidationsLive;
  }

  #beat(): void {
    if (this.#pingSent !== 0) {
      if (performance.now() - this.#pingSent <= this.#stallMs) return; // one probe at a time
      // Unanswered too long: stalled. The next beat sends a new probe (the old one may never settle).
      this.#pingSent = 0;
      this.#stalled();
      return;
    }
    // A feed that is down cannot echo (and nothing is served meanwhile): probe once it is back.
    if (!this.#inner.invalidationsLive) return;
    // Idle: no probe until a lookup asks for one (lookup() beats at once). Nothing is fresh
    // meanwhile: a pause notices no stall, and a clock stepped back during it (no lookup saw the
    // step) would otherwise make the last probe before it look recent again.
    if (this.#quietBeats > IDLE_BEATS) {
      this.#freshUntil = -Infinity;
      return;
    }
    // Taken BEFORE the probe is handed to the client: Redis executes it later still, so whatever
    // was published before `sentAt` is ordered before it (the freshness argument at the top).
    const sentAt = Date.now();
    const sent = (this.#pingSent = performance.now());
    let answer: Promise<void>;
    try {
      answer = this.#inner.probeInvalidations ? this.#inner.probeInvalidations(this.#stallMs) : this.#inner.ping();
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(() => {
      if (this.#pingSent === sent) this.#pingSent = 0;
      if (performance.now() - sent > this.#stallMs) return; // too late: a stall was (or will be) declared
      this.#answering = true;
      // A sending time ahead of the clock now means the clock went back meanwhile: not proof of
      // anything on the clock we compare against.
      const until = sentAt + this.#freshMs;
      if (sentAt <= Date.now() && until > this.#freshUntil) this.#freshUntil = until;
    }, () => {
      if (this.#pingSent !== sent) return; // abandoned as stalled already
      this.#pingSent = 0;
      this.#stalled();
    });
  }

  #stalled(): void {
    this.#freshUntil = -Infinity;
    if (!this.#answering) return;
    this.#answering = false;
    this.clear();
  }

  /** Cached entries (metrics, tests). */
  get size(): number {
    return this.#entries.size;
  }

  /** What the cached entries hold, roughly (CachedSession.bytes; metrics, tests). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Cookie values remembered as refused (tests). */
  get refusedSize(): number {
    return this.#refused.size;
  }

  /** Drops everything (also done on every resync of the invalidation feed). */
  clear(): void {
    this.#gen++;
    this.#entries.clear();
    this.#bytes = 0;
    this.#byId.clear();
    this.#inflight.clear();
  }

  /**
   * The session for a cookie value (without its refresh and ID tokens): synchronously when cached
   * (the hot path awaits nothing), otherwise through the store, concurrent misses for one cookie
   * sharing one load.
   */
  lookup(cookieValue: string): Session | null | Promise<Session | null> {
    const now = this.#now();
    if (now > this.#latest) this.#latest = now;
    else if (now < this.#latest) {
      // The clock went back. Probe times were taken on the clock before the step, so they prove
      // nothing on this one: wait for a probe sent after it (≤ heartbeatMs; lookups read the
      // store meanwhile). Kept as they were, a step back of up to a second froze the comparison
      // below on the old time, and memory answered whatever the link did.
      if (this.#dateClock && this.#heartbeat !== undefined) this.#freshUntil = -Infinity;
      if (now < this.#latest - CLOCK_STEP_BACK_MS) this.clear();
      this.#latest = now;
    }
    const e = this.#entries.get(cookieValue);
    let known: CachedSession | undefined;
    if (e !== undefined) {
      this.#awake();
      // Fresh (see the top): compared on the clock already read when it is Date.now (a step back
      // is handled above). One more clock read only when a test injected its own.
      if (e.until > now && (this.#dateClock ? this.#latest : Date.now()) <= this.#freshUntil && this.#inner.invalidationsLive) {
        this.hits++;
        return e instanceof CachedSession ? e : null;
      }
      // Left in place until the reload replaces it: a Map that deletes and re-adds every entry
      // each second keeps twice the slots, and this one is not served meanwhile (expired).
      if (e instanceof CachedSession) known = e;
    }
    if (known !== undefined) {
      this.misses++;
      return this.#load(cookieValue, known, known.id);
    }
    if (this.#refused.has(cookieValue)) return this.#refuse();
    const id = this.#inner.idOf(cookieValue);
    if (id === null) {
      // Forged or malformed: no I/O, and never in the session cache. Only well-formed values are
      // remembered (a value of another length is refused on its length alone, for nothing), as
      // copies: the value is a slice of the Cookie header, which a kept slice keeps alive whole
      // (4,096 forged values in 72 KiB headers held 300 MB).
      if (cookieValue.length === COOKIE_VALUE_LENGTH) {
        if (this.#refused.size >= REFUSED_ENTRIES) this.#refused.clear();
        this.#refused.add(flatCopy(cookieValue));
      }
      return this.#refuse();
    }
    this.misses++;
    return this.#load(cookieValue, undefined, id);
  }

  /**
   * A lookup that memory may answer, or that reads the store: the heartbeat is needed. Waking from
   * idle, it probes now; memory is not fresh after the pause, so this lookup and those until the
   * probe is back (a round trip) read the store. Refused cookies do not count: they need no probe.
   */
  #awake(): void {
    if (this.#quietBeats > IDLE_BEATS) {
      this.#quietBeats = 0;
      this.#beat();
    } else this.#quietBeats = 0;
  }

  #refuse(): null {
    this.refused++;
    this.#onRefused?.();
    return null;
  }

  /**
   * Reads the store. An entry that merely aged out is revalidated (same reads, same activity
   * recording, but its secrets are not decrypted and parsed again when unchanged): the session
   * keeps its secrets, and what the chain keeps with them (authorize.ts, allow.ts...) stays warm.
   */
  #load(cookieValue: string, known: CachedSession | undefined, id: string): Promise<Session | null> {
    this.#awake();
    // A revalidation in flight is kept on its record, a first load in #inflight: a Map that takes
    // and drops a key per revalidation (thousands a second) keeps reallocating its table, and
    // those tables lived long enough to fill the old generation.
    const pending = known !== undefined ? known.reloading : this.#inflight.get(cookieValue);
    if (pending !== undefined) return pending;
    const inner = this.#inner;
    // The cookie's MAC is valid (idOf, or an entry cached under it): "no session" may be cached.
    const read = known !== undefined && inner.revalidate !== undefined ? inner.revalidate(known) : inner.getById(id);
    const gen = this.#gen;
    const settled = () => {
      if (known !== undefined) {
        if (known.reloading === p) known.reloading = undefined;
      } else if (this.#inflight.get(cookieValue) === p) {
        this.#inflight.delete(cookieValue);
      }
    };
    const p: Promise<Session | null> = read.then((found) => {
      settled();
      if (found === null) {
        if (gen === this.#gen && this.serving) this.#put(cookieValue, null);
        return null;
      }
      const session = CachedSession.of(found, this.#until(found), known);
      // Loaded while not fresh: answered, not kept (an invalidation may be on its way).
      if (gen === this.#gen && this.serving) this.#put(cookieValue, session);
      return session;
    }, (err: unknown) => {
      settled();
      throw err; // a store failure is never cached
    });
    if (known !== undefined) known.reloading = p;
    else this.#inflight.set(cookieValue, p);
    return p;
  }

  /**
   * How long a session just read may be served: the TTL, never past its own expiry, and never past
   * half its idle timeout since the store last saw it. Answers from memory record no activity; only
   * the read that ends an entry does (the store's touch). With an idle timeout shorter than the TTL,
   * an entry served up to its idle expiry would let a session in constant use expire in Redis.
   */
  #until(session: Session): number {
    return Math.min(this.#now() + this.#ttl, session.expiresAt, session.idleExpiresAt - this.#inner.sessionIdleMs / 2);
  }

  #put(cookieValue: string, session: CachedSession | null): void {
    const now = this.#now();
    const old = this.#entries.get(cookieValue);
    if (session !== null && session.bytes > this.#maxBytes / 256) {
      // Too large to keep (see maxBytes): read at every request. Its previous version goes too.
      if (old !== undefined) this.#drop(cookieValue, old);
      return;
    }
    // A copy of the key: the value handed in is usually a slice of the whole Cookie header, which
    // a Map key would keep alive for as long as the entry lives.
    let key: string | undefined;
    if (session !== null) {
      if (session.until <= now) return;
      const other = this.#byId.get(session.id);
      if (other !== undefined && other !== cookieValue) return; // one id, two spellings: do not cache
      if (other === undefined) this.#byId.set(session.id, key = flatCopy(cookieValue));
    } else if (old instanceof CachedSession) {
      this.#byId.delete(old.id);
    }
    const entry = session ?? new Absent(now + this.#ttl);
    if (old !== undefined) {
      // Replaced in place: keeps its slot and its place in the eviction order (first cached, first
      // evicted: a full cache may evict a busy session, which then costs one read).
      this.#entries.set(cookieValue, entry);
      this.#bytes += sizeOf(entry) - sizeOf(old);
    } else {
      if (this.#entries.size >= this.#max) this.#dropOldest();
      this.#entries.set(key ?? flatCopy(cookieValue), entry);
      this.#bytes += sizeOf(entry);
    }
    while (this.#bytes > this.#maxBytes && this.#entries.size > 0) this.#dropOldest();
  }

  #dropOldest(): void {
    const oldest = this.#entries.keys().next().value as string;
    this.#drop(oldest, this.#entries.get(oldest)!);
  }

  #drop(cookieValue: string, e: Entry): void {
    this.#entries.delete(cookieValue);
    this.#bytes -= sizeOf(e);
    if (e instanceof CachedSession && this.#byId.get(e.id) === cookieValue) this.#byId.delete(e.id);
  }

  #invalidate(id: string): void {
    this.#gen++;
    // Loads already in flight may predate the change: later callers start a fresh one.
    this.#inflight.clear();
    const cookie = this.#byId.get(id);
    if (cookie === undefined) return;
    const e = this.#entries.get(cookie);
    if (e !== undefined) this.#drop(cookie, e);
    this.#byId.delete(id);
  }

  // The SessionStore contract: reads by cookie go through the cache, everything else (including
  // getById, which token refresh uses to see the latest secrets under its lock) goes straight
  // to the store, whose writes broadcast the invalidations this cache listens to.
  async get(cookieValue: string, opts?: ReadOptions): Promise<Session | null> {
    // A read that must not slide goes to the store: a cache entry's revalidation would.
    return opts?.slide === false ? this.#inner.get(cookieValue, opts) : this.lookup(cookieValue);
  }
  getById(id: string): Promise<Session | null> {
    return this.#inner.getById(id);
  }
  idOf(cookieValue: string): string | null {
    return this.#inner.idOf(cookieValue);
  }
  tally(kind: string, windowMs: number): Promise<number> {
    return this.#inner.tally(kind, windowMs);
  }

  create(input: NewSession): Promise<{ cookieValue: string; session: Session }> {
    return this.#inner.create(input);
  }
  updateSecrets(id: string, secrets: SessionSecrets): Promise<boolean> {
    return this.#inner.updateSecrets(id, secrets);
  }
  delete(id: string): Promise<boolean> {
    return this.#inner.delete(id);
  }
  take(id: string): Promise<SessionSecrets | null> {
    return this.#inner.take(id);
  }
  lastSignInIdp(browser: string, sub?: string): Promise<string | null> {
    return this.#inner.lastSignInIdp(browser, sub);
  }
  deleteBySid(idp: string, sid: string, sub?: string): Promise<number> {
    return this.#inner.deleteBySid(idp, sid, sub);
  }
  clock(): Promise<number> {
    return this.#inner.clock();
  }
  deleteBySub(idp: string, sub: string): Promise<number> {
    return this.#inner.deleteBySub(idp, sub);
  }
  tryLock(name: string, ttlMs: number): Promise<string | null> {
    return this.#inner.tryLock(name, ttlMs);
  }
  unlock(name: string, token: string): Promise<void> {
    return this.#inner.unlock(name, token);
  }
  putTransient(kind: string, key: string, value: string, ttlMs: number): Promise<void> {
    return this.#inner.putTransient(kind, key, value, ttlMs);
  }
  takeTransient(kind: string, key: string): Promise<string | null> {
    return this.#inner.takeTransient(kind, key);
  }
  markOnce(kind: string, key: string, ttlMs: number): Promise<boolean> {
    return this.#inner.markOnce(kind, key, ttlMs);
  }

  unmark(kind: string, key: string): Promise<void> {
    return this.#inner.unmark(kind, key);
  }
  onInvalidate(listener: (id: string) => void): () => void {
    return this.#inner.onInvalidate(listener);
  }
  ping(): Promise<void> {
    return this.#inner.ping();
  }
  async close(): Promise<void> {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    for (const u of this.#unsubscribe) u();
    this.clear();
    await this.#inner.close();
  }
}
