// The invalidation feed: a change of a session is announced to every process on the same backend
// (its pub/sub broadcast) so that their caches drop it, and this process hears theirs. The store
// (store.ts) sends the announcements; caches subscribe through the store.
import { randomBytes } from 'node:crypto';
import { clearTimeout, setTimeout } from 'node:timers';
import { StoreUnavailable } from '../errors.ts';
import { errorFields, type Logger } from '../log.ts';
import type { KvBackend } from './backend.ts';
import { DEFAULT_SESSION_CACHE_TTL_MS } from './cache.ts';
import { unavailable } from './unavailable.ts';

export class InvalidationFeed {
  readonly #backend: KvBackend;
  readonly #log: Logger;
  /** A broadcast given up on, reported (KvSessionStore's onCaughtError). */
  readonly #caught: (err: unknown) => void;
  /** Tags this instance's broadcasts so it does not hear its own twice. */
  readonly #origin = randomBytes(9).toString('base64url');
  readonly #listeners = new Set<(id: string) => void>();
  readonly #resyncListeners = new Set<() => void>();
  /** Feed probes (probeInvalidations) waiting for their own message to come back. */
  readonly #probes = new Map<string, () => void>();
  #probeSeq = 0;
  /** Whether other processes' invalidations reach us (see invalidationsLive). */
  #feedLive: boolean;

  constructor(backend: KvBackend, log: Logger, caught: (err: unknown) => void) {
    this.#backend = backend;
    this.#log = log;
    this.#caught = caught;
    this.#backend.onMessage((message) => {
      const bar = message.indexOf('|');
      if (bar < 0) return;
      const mine = message.slice(0, bar) === this.#origin;
      const id = message.slice(bar + 1);
      // `~…` is a feed probe (no storage id has a ~), never an invalidation: only its sender
      // listens for it.
      if (id.charCodeAt(0) === 0x7e) {
        if (mine) this.#probes.get(id)?.();
        return;
      }
      if (!mine) this.fire(id);
    });
    this.#feedLive = this.#backend.onFeedState === undefined;
    this.#backend.onFeedState?.((live) => {
      this.#feedLive = live;
      for (const l of this.#resyncListeners) {
        try {
          l();
        } catch (err) {
          this.#log.error({ err: (err as Error).message }, 'session resync listener threw');
        }
      }
    });
  }

  /**
   * Whether invalidations from other processes are being received right now. False until the
   * backend's subscription is up, and again whenever it drops: a cache must not serve meanwhile.
   */
  get invalidationsLive(): boolean {
    return this.#feedLive;
  }

  /**
   * Called whenever the invalidation feed drops or comes back (a reconnect): invalidations may
   * have been missed, so every cache built on onInvalidate must empty itself. Returns an unsubscribe.
   */
  onResync(listener: () => void): () => void {
    const l = () => listener();
    this.#resyncListeners.add(l);
    return () => {
      this.#resyncListeners.delete(l);
    };
  }

  onInvalidate(listener: (id: string) => void): () => void {
    const l = (id: string) => listener(id); // distinct wrapper: the same function may subscribe twice
    this.#listeners.add(l);
    return () => {
      this.#listeners.delete(l);
    };
  }

  /** What announces a change of session `id` to the other processes (their listeners). */
  message(id: string): string {
    return `${this.#origin}|${id}`;
  }

  /** Local listeners at once; other processes through the backend's broadcast. */
  async invalidate(id: string): Promise<void> {
    this.fire(id);
    const message = this.message(id);
    try {
      await this.#backend.publish(message);
    } catch (err) {
      // The change is made (or may be): the caller hears of the failure, and the broadcast is
      // sent again until it goes through, for as long as a cache elsewhere may hold the session.
      this.#republish(message);
      throw unavailable(err);
    }
  }

  /** Retries a failed broadcast in the background, every 25 ms to 400 ms, for a cache's TTL. */
  #republish(message: string): void {
    const until = performance.now() + DEFAULT_SESSION_CACHE_TTL_MS;
    const attempt = (delayMs: number) => {
      setTimeout(() => {
        this.#backend.publish(message).catch((err: unknown) => {
          if (performance.now() + delayMs < until) return attempt(Math.min(2 * delayMs, 400));
          // Once, given up: the first failure is the caller's (invalidate() throws it), and the
          // retries in between are that one broadcast still on its way.
          this.#caught(err);
          this.#log.warn({ err: errorFields(err) }, 'a session invalidation could not be broadcast; caches elsewhere drop it within their TTL');
        });
      }, delayMs).unref();
    };
    attempt(25);
  }

  fire(id: string): void {
    for (const l of this.#listeners) {
      try {
        l(id);
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'session invalidation listener threw');
      }
    }
  }

  /**
   * Resolves when the store answers and a message published now comes back through this
   * process's own invalidation feed within `timeoutMs`; StoreUnavailable otherwise. What a cache
   * needs to trust its feed: a subscriber can go deaf without its connection closing (a Redis
   * Cluster node that stalls holds it, and ioredis moves it to another node silently), and
   * invalidations published meanwhile are lost. And, since one subscriber connection receives
   * messages in the order Redis executed their PUBLISH, an echo proves that every invalidation
   * published before the probe was sent has been received (the session cache's freshness bound).
   */
  async probeInvalidations(timeoutMs: number): Promise<void> {
    const token = `~probe:${++this.#probeSeq}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const echoed = new Promise<void>((resolve, reject) => {
      this.#probes.set(token, resolve);
      timer = setTimeout(() => reject(new StoreUnavailable(new Error(`the invalidation feed did not echo within ${timeoutMs} ms`))), timeoutMs);
      timer.unref(); // a probe never keeps a closing process alive
    });
    echoed.catch(() => { /* awaited below; this keeps a rejection while publish() runs from counting as unhandled */ });
    try {
      // To ourselves only when the backend can (no fan-out to every process), on the same feed.
      const message = `${this.#origin}|${token}`;
      await (this.#backend.echo !== undefined ? this.#backend.echo(message) : this.#backend.publish(message));
      await Promise.all([this.#backend.ping(), echoed]);
    } catch (err) {
      throw unavailable(err);
    } finally {
      clearTimeout(timer);
      this.#probes.delete(token);
    }
  }

  /** Forgets every listener (the store is closing). */
  dropListeners(): void {
    this.#listeners.clear();
    this.#resyncListeners.clear();
  }
}
