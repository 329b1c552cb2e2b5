// The small key-value surface the session store needs. Two implementations: Redis (ioredis:
// standalone, Sentinel, Cluster) and memory://. Everything with meaning (layout, crypto, expiry,
// indexes, invalidation) lives once in store.ts and the parts it composes (keys.ts,
// session-load.ts, invalidation-feed.ts, kv-primitives.ts); a backend only stores bytes with TTLs.
//
// Every operation touches ONE key (so it is atomic within a Redis Cluster hash slot) and every
// failure rejects: a backend never turns "unreachable" into "absent". Each TTL is in ms and > 0.
// A key holding another type than the operation's (something else wrote there) is, as Redis
// answers it, a failure for set and string operations; for the hash operations (sessions, named
// by cookies) it is no hash: absent to reads and updates, deleted by hashTake.
export type Fields = Record<string, string>;

/**
 * The hash field hashCreate's `lifetimeMs` writes: an absolute end in ms on the store's clock. The
 * processes' clocks differ (seconds, on separate hosts): a touch TTL computed as "expiresAt - my
 * now" by a process whose clock is behind kept a session a skew's worth past its absolute expiry.
 */
export const END_FIELD = 'end';

export interface KvBackend {
  /** All fields of a hash, or null when the key does not exist. */
  hashGet(key: string): Promise<Fields | null>;
  /**
   * Some fields of a hash (HMGET), in the order asked, null for a missing one; null when the key
   * does not exist (or holds none of them).
   */
  hashGetSome(key: string, fields: readonly string[]): Promise<(string | null)[] | null>;
  /**
   * Creates a hash with a TTL (the key is assumed not to exist: ids are 256-bit random). With
   * `lifetimeMs`, records in field END_FIELD when that lifetime ends on the store's own clock
   * (Redis TIME): no later hashTouch keeps the key past it, whatever the toucher's clock says.
   */
  hashCreate(key: string, fields: Fields, ttlMs: number, lifetimeMs?: number): Promise<void>;
  /**
   * If the hash exists: sets `fields`, increments `incrField` by one when given. Never creates the
   * key and leaves its TTL alone. Returns the incremented value (0 without incrField), or null
   * when the key does not exist.
   */
  hashUpdate(key: string, fields: Fields, incrField?: string, announce?: string): Promise<number | null>;
  /**
   * If the hash exists and its numeric `field` is below `value`: sets it and resets the TTL to
   * `ttlMs`, but never past the END_FIELD the hash was created with (the key is deleted when that
   * has passed). Returns false only when the key does not exist (never creates it) or was deleted so.
   */
  hashTouch(key: string, field: string, value: number, ttlMs: number): Promise<boolean>;
  /**
   * Deletes a hash, returning the requested fields as they were, or null when it did not exist.
   * hashUpdate and hashTake `announce`: published (as publish() does) in the same step as the
   * change, whether or not the key existed for hashTake, only when it did for hashUpdate: an
   * invalidation reaches subscribers in order with the change itself, not one round trip later
   * (or never, when the writer's link fails in between).
   */
  hashTake(key: string, fields: readonly string[], announce?: string): Promise<(string | null)[] | null>;
  /** Whether a key exists. */
  exists(key: string): Promise<boolean>;

  /** Adds a member and raises the set's TTL to at least `ttlMs`; returns the set's size. */
  setAdd(key: string, member: string, ttlMs: number): Promise<number>;
  setMembers(key: string): Promise<string[]>;
  /** Up to `count` distinct members chosen at random (SRANDMEMBER with a count): all of them when there are no more. */
  setSample(key: string, count: number): Promise<string[]>;
  setRemove(key: string, members: readonly string[]): Promise<void>;

  /** SET PX (NX when onlyIfAbsent); false when NX and the key existed. */
  put(key: string, value: string, ttlMs: number, onlyIfAbsent: boolean): Promise<boolean>;
  /** GETDEL: read and delete atomically. */
  take(key: string): Promise<string | null>;
  /** INCRBY: adds `by` (a positive integer) and returns the new count; a key it creates expires after `ttlMs`. */
  increment(key: string, ttlMs: number, by: number): Promise<number>;
  /** GET: the value, or null when the key does not exist. */
  get(key: string): Promise<string | null>;
  /** SET PX GET: stores `value` and returns, atomically, what the key held before (null: nothing). */
  swap(key: string, value: string, ttlMs: number): Promise<string | null>;
  /** Deletes the key only if it holds `value` (lock release). */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /**
   * The store's own clock, ms since epoch (Redis TIME, always from the same server): one clock
   * for every process on the store, so times two processes write compare without their skew.
   */
  time(): Promise<number>;

  /** Broadcasts to every backend instance on the same store (all processes). */
  publish(message: string): Promise<void>;
  /** Receives every publish() made through any instance on the same store, including this one. */
  onMessage(listener: (message: string) => void): void;
  /**
   * Optional (absent: publish() is used): delivers `message` to this instance's onMessage only,
   * through the same feed as publish()'s messages and in order with them, without sending it to
   * every other instance (a heartbeat probe, many a second per process).
   */
  echo?(message: string): Promise<void>;
  /**
   * Optional (absent = broadcasts are never lost, e.g. in-process): reports `false` whenever the
   * broadcast feed drops (messages published meanwhile are lost) and `true` once it is back.
   * Before the first `true` the feed counts as down.
   */
  onFeedState?(listener: (live: boolean) => void): void;
  /**
   * Optional (absent = the backend keeps no failure to itself): called with each failure the
   * backend caught and did not throw, a request going on without it: a connection lost or
   * refused, a subscription to the broadcasts refused, an idle touch a full store refused. The
   * store reports them on (SessionStore.onCaughtError), for goldpath_store_errors_total.
   */
  onCaughtError?(listener: (err: unknown) => void): void;

  /** Resolves when the store answers (and broadcasts can be received). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
