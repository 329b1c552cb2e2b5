// The Redis backend's side of the invalidation feed: the subscription to INVALIDATE_CHANNEL (and
// this instance's echo channel) on the backend's subscriber connection, kept alive across
// reconnections and Cluster node changes, the delivery of its messages to onMessage listeners,
// and the feed's state (onFeedState: down whenever messages published meanwhile may be lost).
// RedisBackend owns the connection (redis-backend.ts: made, watched and closed there), sends the
// publishes and echoes on its command connection, and delegates the rest here.
import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { setTimeout, clearTimeout, setImmediate } from 'node:timers';
import type { Logger } from '../log.ts';
import type { Client } from './redis-connect.ts';

export const INVALIDATE_CHANNEL = 'gp:invalidate';

export class RedisFeed {
  readonly #sub: Client;
  readonly #log: Logger;
  readonly #readyWaitMs: number;
  /** The owning backend's closed state (one flag, RedisBackend's). */
  readonly #isClosed: () => boolean;
  readonly #listeners: ((message: string) => void)[] = [];
  readonly #feedListeners: ((live: boolean) => void)[] = [];
  /**
   * A channel only this instance subscribes to, on the same subscriber connection as the
   * invalidations (echo(): probes in order with them, without fan-out to every process).
   */
  readonly #echoChannel = `${INVALIDATE_CHANNEL}:echo:${randomBytes(12).toString('base64url')}`;
  #subscribed = false;
  #subscribedWaiters: (() => void)[] = [];
  /** Cluster: the node connection our subscription lives on (see #subscribe). */
  #subConn: Redis | undefined;

  /** A refused subscription, reported (KvBackend.onCaughtError). */
  readonly #caught: (err: unknown) => void;

  /** Registers on `sub` the listeners that subscribe, track and deliver (in this order). */
  constructor(sub: Client, log: Logger, readyWaitMs: number, isClosed: () => boolean, caught: (err: unknown) => void) {
    this.#sub = sub;
    this.#caught = caught;
    this.#log = log;
    this.#readyWaitMs = readyWaitMs;
    this.#isClosed = isClosed;
    this.#sub.on('ready', () => this.#subscribe());
    this.#sub.on('close', () => {
      this.#subConn = undefined;
      this.#subscribed = false;
      this.#feed(false); // invalidations published from now on are lost until we re-subscribe
    });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATE_CHANNEL && channel !== this.#echoChannel) return;
      for (const l of this.#listeners) l(message);
    });
  }

  get #closed(): boolean {
    return this.#isClosed();
  }

  /** Where RedisBackend.echo publishes. */
  get echoChannel(): string {
    return this.#echoChannel;
  }

  #subscribe(): void {
    // On a Cluster the subscription is one connection to one node, which ioredis replaces by
    // itself when it drops (and re-subscribes) without telling its owner: the Cluster's own
    // 'close' only comes when the whole cluster is lost. Whatever is published while it is
    // replaced is lost, so that connection's end is the feed's drop, exactly as on standalone.
    const conn = this.#clusterSubscriber();
    this.#sub.subscribe(INVALIDATE_CHANNEL, this.#echoChannel).then(() => {
      if (this.#sub instanceof Cluster) {
        if (conn === undefined || conn !== this.#clusterSubscriber() || conn.status !== 'ready') {
          // Replaced while we subscribed: subscribe (and watch) the one in use now.
          setImmediate(() => this.#resubscribe());
          return;
        }
        if (this.#subConn !== conn) {
          this.#subConn = conn;
          conn.once('close', () => {
            if (this.#subConn !== conn) return;
            this.#subConn = undefined;
            this.#subscribed = false;
            this.#feed(false);
            // ioredis picks another node when this one ends (right after 'close'): subscribe there.
            setImmediate(() => this.#resubscribe());
          });
        }
      }
      this.#subscribed = true;
      this.#feed(true);
      const waiters = this.#subscribedWaiters;
      this.#subscribedWaiters = [];
      for (const w of waiters) w();
    }, (err: Error) => {
      if (this.#closed) return;
      this.#caught(err);
      this.#log.warn({ err: err.message }, 'cannot subscribe to session invalidations; reconnecting');
      this.#sub.disconnect(true);
    });
  }

  /** Subscribes again unless closed, subscribed, or the Cluster is down ('ready' subscribes then). */
  #resubscribe(): void {
    if (this.#closed || this.#subscribed || this.#sub.status !== 'ready') return;
    this.#subscribe();
  }

  /** Cluster: the node connection ioredis uses for (un)subscribing right now (ioredis internals). */
  #clusterSubscriber(): Redis | undefined {
    if (!(this.#sub instanceof Cluster)) return undefined;
    const holder = (this.#sub as unknown as { subscriber?: { getInstance?(): Redis | null } }).subscriber;
    return holder?.getInstance?.() ?? undefined;
  }

  onMessage(listener: (message: string) => void): void {
    this.#listeners.push(listener);
  }

  onFeedState(listener: (live: boolean) => void): void {
    this.#feedListeners.push(listener);
  }

  /** Caches must empty themselves (a resync) without the feed itself having dropped. */
  dataMayBeLost(): void {
    if (this.#closed) return;
    this.#feed(false);
    if (this.#subscribed) this.#feed(true);
  }

  #feed(live: boolean): void {
    if (this.#closed) return;
    for (const l of this.#feedListeners) l(live);
  }

  /** Resolves once subscribed; rejects when that takes longer than the ready wait. */
  async whenSubscribed(): Promise<void> {
    if (this.#subscribed) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#subscribedWaiters = this.#subscribedWaiters.filter((w) => w !== onSub);
        reject(new Error('not subscribed to session invalidations'));
      }, this.#readyWaitMs);
      timer.unref();
      const onSub = () => { clearTimeout(timer); resolve(); };
      this.#subscribedWaiters.push(onSub);
    });
  }

  /** Delivers nothing more (RedisBackend.close). */
  close(): void {
    this.#listeners.length = 0;
  }
}
