// The session cache's freshness (cache.ts): the heartbeat that bounds how stale an entry it serves
// may be, whatever the link to Redis does (the rest of the bound is at the top of cache.ts).
//
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
import { clearInterval, setInterval } from 'node:timers';
import type { ResyncSource, SessionCacheOptions } from './cache-types.ts';
import type { SessionStore } from './types.ts';

const DEFAULT_HEARTBEAT_MS = 50;
const DEFAULT_FRESH_MS = 100;
const DEFAULT_STALL_MS = 400;
/**
 * Beats without a lookup after which the heartbeat sends no probe until the next lookup: 5 s at
 * 50 ms, the cache's TTL. (After a pause the first lookups read Redis for a round trip: a shorter
 * idle time would pause and resume a sidecar with a request every second or two, for nothing.)
 */
const IDLE_BEATS = 100;

/** Whether the cache may serve from memory (freshUntil), kept by the heartbeat; the cache owns one. */
export class CacheFreshness {
  readonly #inner: SessionStore & ResyncSource;
  /** The cache's clear(): a stall empties it. */
  readonly #clear: () => void;
  /** The cache's look at its clock, at every beat (a step back no lookup saw: cache.ts #tick). */
  readonly #tick: () => void;
  /** A probe that failed or went unanswered, reported (SessionStore.onCaughtError). */
  readonly #failed: (err: unknown) => void;
  readonly #every: number;
  /** Read by the cache's lookup() (a clock step back matters only with a heartbeat) and its resync listener. */
  heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #stallMs: number;
  readonly #freshMs: number;
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
  freshUntil: number;

  constructor(inner: SessionStore & ResyncSource, opts: SessionCacheOptions, clear: () => void, tick: () => void, failed: (err: unknown) => void) {
    this.#inner = inner;
    this.#clear = clear;
    this.#tick = tick;
    this.#failed = failed;
    this.#stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.#freshMs = opts.freshMs ?? DEFAULT_FRESH_MS;
    if (!(this.#freshMs > 0)) throw new RangeError('freshMs must be positive');
    const every = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    // Not fresh until a first probe has come back (the feed is not up yet anyway).
    this.freshUntil = every > 0 ? -Infinity : Infinity;
    this.#every = every;
  }

  /** Starts the heartbeat (once the cache listens to the feed). */
  start(): void {
    if (this.#every > 0) {
      this.heartbeat = setInterval(() => {
        this.#tick(); // first: a step back closes the window before this beat's probe is sent
        this.#quietBeats++;
        this.beat();
      }, this.#every);
      this.heartbeat.unref();
      this.beat();
    }
  }

  stop(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
  }

  beat(): void {
    if (this.#pingSent !== 0) {
      if (performance.now() - this.#pingSent <= this.#stallMs) return; // one probe at a time
      // Unanswered too long: stalled. The next beat sends a new probe (the old one may never settle).
      this.#pingSent = 0;
      this.#failed(new Error(`the session store did not answer a heartbeat probe within ${this.#stallMs} ms`));
      this.#stalled();
      return;
    }
    // A feed that is down cannot echo (and nothing is served meanwhile): probe once it is back.
    if (!this.#inner.invalidationsLive) return;
    // Idle: no probe until a lookup asks for one (lookup() beats at once). Nothing is fresh
    // meanwhile: a pause notices no stall, and a clock stepped back during it (no lookup saw the
    // step) would otherwise make the last probe before it look recent again.
    if (this.#quietBeats > IDLE_BEATS) {
      this.freshUntil = -Infinity;
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
      if (sentAt <= Date.now() && until > this.freshUntil) this.freshUntil = until;
    }, (err: unknown) => {
      if (this.#pingSent !== sent) return; // abandoned as stalled already (and counted then)
      this.#pingSent = 0;
      this.#failed(err);
      this.#stalled();
    });
  }

  #stalled(): void {
    this.freshUntil = -Infinity;
    if (!this.#answering) return;
    this.#answering = false;
    this.#clear();
  }

  /**
   * A lookup that memory may answer, or that reads the store: the heartbeat is needed. Waking from
   * idle, it probes now; memory is not fresh after the pause, so this lookup and those until the
   * probe is back (a round trip) read the store. Refused cookies do not count: they need no probe.
   */
  awake(): void {
    if (this.#quietBeats > IDLE_BEATS) {
      this.#quietBeats = 0;
      this.beat();
    } else this.#quietBeats = 0;
  }
}
