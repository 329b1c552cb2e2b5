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
//   - A Redis that is gone closes the subscriber connection: the feed drops and the cache empties at
//     once (above). A link that stalls: the freshness heartbeat bounds it (cache-freshness.ts).
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
import { flatCopy } from '../strings.ts';
import { CacheFreshness } from './cache-freshness.ts';
import { CachedSession } from './cached-session.ts';
import { COOKIE_VALUE_LENGTH } from './cookie.ts';
import type { ResyncSource, SessionCacheOptions } from './cache-types.ts';
import type { NewSession, ReadOptions, Session, SessionSecrets, SessionStore } from './types.ts';

export type { ResyncSource, SessionCacheOptions } from './cache-types.ts';

export const DEFAULT_SESSION_CACHE_TTL_MS = 5000;
export const DEFAULT_SESSION_CACHE_ENTRIES = 20_000;
export const DEFAULT_SESSION_CACHE_BYTES = 64 * 1024 * 1024;
/** What an entry for an absent session costs (its key and slot). */
const ABSENT_BYTES = 150;
/**
 * The clock going back by more than this empties the cache: entries' expiry times were computed on
 * the clock before the step, and would be served, unread, for as long as the step.
 */
const CLOCK_STEP_BACK_MS = 1000;
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
  /** onCaughtError's listeners for this cache's own failures (the heartbeat's). */
  readonly #caughtListeners = new Set<(err: unknown) => void>();
  /** The freshness heartbeat (cache-freshness.ts). */
  readonly #freshness: CacheFreshness;
  /** The clock is Date.now (not injected): lookup's `now` is also the freshness clock. */
  readonly #dateClock: boolean;
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
    this.#freshness = new CacheFreshness(inner, opts, () => this.clear(), () => this.#tick(), (err) => {
      for (const l of this.#caughtListeners) l(err);
    });
    this.#unsubscribe = [
      inner.onInvalidate((id) => this.#invalidate(id)),
      inner.onResync(() => {
        this.clear();
        // The feed is back: probe now rather than at the next beat, so serving resumes sooner.
        if (this.#freshness.heartbeat !== undefined && inner.invalidationsLive) this.#freshness.beat();
      }),
    ];
    this.#freshness.start();
  }

  /**
   * Whether cached answers may be served now (and loads kept): the feed is live and a probe sent
   * within freshMs came back. Off the hot path (lookup inlines it on the clock it already read).
   */
  get serving(): boolean {
    const t = Date.now();
    return (this.#dateClock && this.#latest > t ? this.#latest : t) <= this.#freshness.freshUntil && this.#inner.invalidationsLive;
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
    else if (now < this.#latest) this.#steppedBack(now);
    const e = this.#entries.get(cookieValue);
    let known: CachedSession | undefined;
    if (e !== undefined) {
      this.#freshness.awake();
      // Fresh (see the top of cache-freshness.ts): compared on the clock already read when it is Date.now (a step back
      // is handled above). One more clock read only when a test injected its own.
      if (e.until > now && (this.#dateClock ? this.#latest : Date.now()) <= this.#freshness.freshUntil && this.#inner.invalidationsLive) {
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
   * The clock went back (seen by a lookup, or by the heartbeat's tick). Probe times were taken on
   * the clock before the step, so they prove nothing on this one: wait for a probe sent after it
   * (≤ heartbeatMs; lookups read the store meanwhile). Kept as they were, a step back of up to a
   * second froze the freshness comparison on the old time, and memory answered whatever the link did.
   */
  #steppedBack(now: number): void {
    if (this.#dateClock && this.#freshness.heartbeat !== undefined) this.#freshness.freshUntil = -Infinity;
    if (now < this.#latest - CLOCK_STEP_BACK_MS) this.clear();
    this.#latest = now;
  }

  /**
   * Every heartbeat reads the clock as a lookup does. A lookup sees a step back only while the
   * clock is still behind the previous lookup's time: a step during a quiet moment (no request
   * for as long as the step) went unseen, and the last probe's window, taken on the old clock,
   * stayed open for as long as the step (memory answered with no probe back for up to ~450 ms,
   * the stall timeout, instead of freshMs), and entries outlived their TTL by as much.
   */
  #tick(): void {
    const now = this.#now();
    if (now > this.#latest) this.#latest = now;
    else if (now < this.#latest) this.#steppedBack(now);
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
    this.#freshness.awake();
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
  tally(kind: string, windowMs: number, weight = 1): Promise<number> {
    return this.#inner.tally(kind, windowMs, weight);
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
  /** The inner store's, and this cache's heartbeat probes that failed (cache-freshness.ts). */
  onCaughtError(listener: (err: unknown) => void): () => void {
    const l = (err: unknown) => listener(err);
    this.#caughtListeners.add(l);
    const inner = this.#inner.onCaughtError(listener);
    return () => {
      this.#caughtListeners.delete(l);
      inner();
    };
  }
  ping(): Promise<void> {
    return this.#inner.ping();
  }
  async close(): Promise<void> {
    this.#freshness.stop();
    for (const u of this.#unsubscribe) u();
    this.clear();
    await this.#inner.close();
  }
}
