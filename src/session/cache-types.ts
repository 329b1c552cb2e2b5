// What the session cache (cache.ts) and its freshness heartbeat (cache-freshness.ts) take: the
// store's side beyond the SessionStore contract, and the cache's options.
import type { Session } from './types.ts';

/** What the cache needs from a store beyond the contract (KvSessionStore has both). */
export interface ResyncSource {
  readonly invalidationsLive: boolean;
  /** The sessions' idle timeout: a cached session is read again well within it (see #until in cache.ts). */
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
