// The Redis backend (ioredis): standalone, Sentinel or Cluster, one code path.
//
// Fail closed AND fast: /auth/verify must answer 503 within 1 s when Redis is gone or stalled,
// never hang and never mistake "unreachable" for "no session". So:
//   - no offline queue: while the connection is down, commands fail at once instead of piling up;
//     only while a connection attempt is in flight (startup) do we wait, briefly, for it;
//   - commandTimeout bounds every command on a live but stalled connection; socketTimeout
//     recycles a connection that stops answering altogether. It bounds each command alone: a
//     caller that makes several (a session load: read, then touch) bounds the whole itself
//     (session-load.ts DEFAULT_LOAD_DEADLINE_MS, oidc/token-provider.ts for a refresh);
//   - maxRetriesPerRequest 0: a command in flight when the link drops fails rather than being
//     replayed later (no surprise double HINCRBY);
//   - reconnect forever with capped exponential backoff, so the store heals on its own.
// Multi-step writes are single-key Lua scripts (cluster-safe: one hash slot each).
//
// Durability with replicas (Sentinel, Cluster): every write but the idle touch also waits for a
// replica to hold it (redis-write.ts says why, and when there is none to wait for).
// Writes use their own connection in these modes, so a WAIT that blocks never delays a read.
import { Cluster } from 'ioredis';
import { setTimeout, clearTimeout } from 'node:timers';
import type { Fields, KvBackend } from './backend.ts';
import type { RedisTarget } from './redis-url.ts';
import type { Logger } from '../log.ts';
import { makeStringPrototypeFast } from './string-prototype.ts';
import { CLOCK_KEY, LUA, type Scripted } from './redis-scripts.ts';
import { connect, type Client } from './redis-connect.ts';
import { SentinelReplicas } from './redis-topology.ts';
import { INVALIDATE_CHANNEL, RedisFeed } from './redis-feed.ts';
import { ConnectionWatch } from './redis-watch.ts';
import { DurableWrites } from './redis-write.ts';

// Loading ioredis leaves String.prototype in V8's slow mode; every string method on the hot path
// paid for it (see string-prototype.ts). Imports are evaluated first: ioredis has loaded by now.
makeStringPrototypeFast();

export { INVALIDATE_CHANNEL };

export interface RedisBackendOptions {
  log: Logger;
  /** Bound on each command (default 500 ms). */
  commandTimeoutMs?: number;
  /** Sentinel: how often to ask which replicas are in sync (default 1000 ms). */
  replicaCheckMs?: number;
  /** TLS schemes: the PEM CA certificate(s) to trust instead of Node's (REDIS_TLS_CA_FILE). */
  tlsCa?: string;
}

/**
 * A hash command on a key holding another type. Hash keys (sessions) are named by a cookie: a value
 * of another type there (written by something else, or left by a bug) is no session, and reads as
 * absent, as on memory://. Were it a store failure, every request of a browser holding that cookie
 * would be a 503, its sign-in and its logout included (the callback and the logout read the old
 * session first), until the cookie expired.
 */
const NOT_A_HASH = /^WRONGTYPE\b/;
const absentIfNotAHash = (err: unknown): null => {
  if (err instanceof Error && NOT_A_HASH.test(err.message)) return null;
  throw err;
};


export class RedisBackend implements KvBackend {
  /** Reads, idle touches, publishes. */
  readonly #client: Client;
  /** Durable writes (+ WAIT); the same connection as #client when there are no replicas. */
  readonly #writer: Client;
  readonly #sub: Client;
  readonly #readyWaitMs: number;
  /** Cluster commands may be retried internally on redirections: bound the whole call. */
  readonly #deadlineMs: number | undefined;
  readonly #writeDeadlineMs: number | undefined;
  readonly #replicas: SentinelReplicas | undefined;
  /** The invalidation feed's subscription and listeners (redis-feed.ts), on #sub. */
  readonly #invalidations: RedisFeed;
  /** Logs each connection's outages and refusals (redis-watch.ts). */
  readonly #conns: ConnectionWatch;
  /** Durable writes, on #writer (redis-write.ts). */
  readonly #writes: DurableWrites;
  readonly #readyWaits = new Map<Client, Promise<void>>();
  /** onCaughtError's listeners. */
  readonly #caughtListeners: ((err: unknown) => void)[] = [];
  #closed = false;

  constructor(target: RedisTarget, opts: RedisBackendOptions) {
    const commandTimeout = opts.commandTimeoutMs ?? 500;
    this.#conns = new ConnectionWatch(opts.log, () => this.#closed, (err) => this.#caught(err));
    this.#readyWaitMs = Math.round(commandTimeout * 0.6);
    // A durable write is the write plus WAIT: its connection allows twice the command timeout, so
    // WAIT can answer "not confirmed" before the command itself times out. Reads keep the bound.
    const writeTimeout = target.mode === 'standalone' ? commandTimeout : 2 * commandTimeout;
    this.#deadlineMs = target.mode === 'cluster' ? commandTimeout + this.#readyWaitMs : undefined;
    this.#writeDeadlineMs = target.mode === 'cluster' ? writeTimeout + this.#readyWaitMs : undefined;
    this.#client = this.#scripted(connect(target, commandTimeout, opts.tlsCa));
    this.#conns.watch(this.#client, 'commands');
    if (target.mode === 'standalone') {
      this.#writer = this.#client;
    } else {
      this.#writer = this.#scripted(connect(target, writeTimeout, opts.tlsCa));
      this.#conns.watch(this.#writer, 'writes');
    }
    this.#replicas = target.mode === 'sentinel'
      ? new SentinelReplicas(target, opts.replicaCheckMs ?? 1000, commandTimeout, (err) => this.#caught(err), opts.tlsCa)
      : undefined;
    this.#writes = new DurableWrites(this.#writer, this.#replicas, commandTimeout, (c, op) => this.#run(c, op));

    if (this.#client instanceof Cluster) {
      // A node whose connection ends may come back empty (a restart without persistence keeps
      // its slots, not its data) while the subscriber, on another node, never noticed: whatever
      // a cache took from it must not be trusted, exactly as when the feed drops.
      this.#client.on('-node', () => this.#invalidations.dataMayBeLost());
    }

    this.#sub = connect(target, commandTimeout, opts.tlsCa);
    this.#conns.watch(this.#sub, 'invalidations');
    this.#invalidations = new RedisFeed(this.#sub, opts.log, this.#readyWaitMs, () => this.#closed, (err) => this.#caught(err));
  }

  /** A failure caught here and not thrown (see KvBackend.onCaughtError); none once closed. */
  #caught(err: unknown): void {
    if (this.#closed) return;
    for (const l of this.#caughtListeners) l(err);
  }

  onCaughtError(listener: (err: unknown) => void): void {
    this.#caughtListeners.push(listener);
  }

  #scripted(c: Client): Client {
    for (const [name, lua] of Object.entries(LUA)) c.defineCommand(name, { numberOfKeys: 1, lua });
    return c;
  }

  /** Runs `op` now if `c` is connected, after a short wait if a connection attempt is in flight, else fails. */
  #run<T>(c: Client, op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('session store is closed'));
    const p = c.status === 'ready' ? op() : this.#whenReady(c).then(op);
    const deadline = c === this.#client ? this.#deadlineMs : this.#writeDeadlineMs;
    return deadline === undefined ? p : withDeadline(p, deadline);
  }

  #whenReady(c: Client): Promise<void> {
    const s = c.status;
    if (s === 'ready') return Promise.resolve();
    if (s !== 'wait' && s !== 'connecting' && s !== 'connect') return Promise.reject(new Error(`redis connection is ${s}`));
    let wait = this.#readyWaits.get(c);
    if (!wait) {
      wait = new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          clearTimeout(timer);
          c.off('ready', onReady);
          c.off('close', onClose);
          this.#readyWaits.delete(c);
          if (err) reject(err);
          else resolve();
        };
        const onReady = () => done();
        const onClose = () => done(new Error('redis connection failed'));
        const timer = setTimeout(() => done(new Error('redis connection not ready in time')), this.#readyWaitMs);
        timer.unref();
        c.once('ready', onReady);
        c.once('close', onClose);
      });
      this.#readyWaits.set(c, wait);
    }
    return wait;
  }

  /** A durable write (redis-write.ts). */
  #write(key: string, name: string, args: string[]): Promise<unknown> {
    return this.#writes.write(key, name, args);
  }

  hashGet(key: string): Promise<Fields | null> {
    return this.#run(this.#client, async () => {
      const h = await this.#client.hgetall(key).catch(absentIfNotAHash);
      if (h === null) return null;
      for (const _ in h) return h;
      return null;
    });
  }

  hashGetSome(key: string, fields: readonly string[]): Promise<(string | null)[] | null> {
    return this.#run(this.#client, async () => {
      const values = await this.#client.hmget(key, ...fields).catch(absentIfNotAHash);
      return values?.some((v) => v !== null) ? values : null;
    });
  }

  async hashCreate(key: string, fields: Fields, ttlMs: number, lifetimeMs?: number): Promise<void> {
    await this.#write(key, 'gpCreate', [String(ttlMs), lifetimeMs === undefined ? '' : String(Math.ceil(lifetimeMs)), ...flatten(fields)]);
  }

  hashUpdate(key: string, fields: Fields, incrField?: string, announce?: string): Promise<number | null> {
    const channel = announce === undefined ? '' : INVALIDATE_CHANNEL;
    return this.#write(key, 'gpUpdate', [incrField ?? '', channel, announce ?? '', ...flatten(fields)]) as Promise<number | null>;
  }

  /** The idle touch: on the read path, and harmless to lose, so no WAIT. */
  hashTouch(key: string, field: string, value: number, ttlMs: number): Promise<boolean> {
    const c = this.#client as unknown as Scripted;
    return this.#run(this.#client, async () => {
      try {
        return (await c.gpTouch!(key, field, String(value), String(ttlMs))) === 1;
      } catch (err) {
        // A full Redis (maxmemory with noeviction) refuses the touch's HSET. The session was just
        // read and is there: serve it, rather than turn every active user's read into a 503 once
        // per touch interval. Its TTL does not slide meanwhile (it may idle out a little early).
        // Counted all the same (goldpath_store_errors_total): the store is refusing writes.
        if (err instanceof Error && err.message.startsWith('OOM ')) {
          this.#caught(err);
          return true;
        }
        throw err;
      }
    });
  }

  hashTake(key: string, fields: readonly string[], announce?: string): Promise<(string | null)[] | null> {
    const channel = announce === undefined ? '' : INVALIDATE_CHANNEL;
    return this.#write(key, 'gpTake', [channel, announce ?? '', ...fields]) as Promise<(string | null)[] | null>;
  }

  exists(key: string): Promise<boolean> {
    return this.#run(this.#client, async () => (await this.#client.exists(key)) === 1);
  }

  setAdd(key: string, member: string, ttlMs: number): Promise<number> {
    return this.#write(key, 'gpSetAdd', [member, String(ttlMs)]) as Promise<number>;
  }

  setMembers(key: string): Promise<string[]> {
    return this.#run(this.#client, () => this.#client.smembers(key));
  }

  setSample(key: string, count: number): Promise<string[]> {
    return this.#run(this.#client, () => this.#client.srandmember(key, count));
  }

  async setRemove(key: string, members: readonly string[]): Promise<void> {
    if (members.length === 0) return;
    await this.#write(key, 'SREM', [...members]);
  }

  async put(key: string, value: string, ttlMs: number, onlyIfAbsent: boolean): Promise<boolean> {
    const args = [value, 'PX', String(ttlMs)];
    if (onlyIfAbsent) args.push('NX');
    return (await this.#write(key, 'SET', args)) === 'OK';
  }

  take(key: string): Promise<string | null> {
    return this.#write(key, 'GETDEL', []) as Promise<string | null>;
  }

  get(key: string): Promise<string | null> {
    return this.#run(this.#client, () => this.#client.get(key));
  }

  async increment(key: string, ttlMs: number, by: number): Promise<number> {
    return Number(await this.#write(key, 'gpIncrement', [String(ttlMs), String(by)]));
  }

  swap(key: string, value: string, ttlMs: number): Promise<string | null> {
    return this.#write(key, 'SET', [value, 'PX', String(ttlMs), 'GET']) as Promise<string | null>;
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    return (await this.#write(key, 'gpDelIfEq', [value])) === 1;
  }

  time(): Promise<number> {
    const c = this.#client as unknown as Scripted;
    return this.#run(this.#client, async () => Number(await c.gpTime!(CLOCK_KEY)));
  }

  publish(message: string): Promise<void> {
    return this.#run(this.#client, async () => {
      await this.#client.publish(INVALIDATE_CHANNEL, message);
    });
  }

  onMessage(listener: (message: string) => void): void {
    this.#invalidations.onMessage(listener);
  }

  echo(message: string): Promise<void> {
    return this.#run(this.#client, async () => {
      await this.#client.publish(this.#invalidations.echoChannel, message);
    });
  }

  onFeedState(listener: (live: boolean) => void): void {
    this.#invalidations.onFeedState(listener);
  }

  async ping(): Promise<void> {
    await this.#run(this.#client, () => this.#client.ping());
    if (this.#writer !== this.#client) await this.#run(this.#writer, () => this.#writer.ping());
    // Readiness includes the invalidation feed: a process that cannot hear about logouts must not
    // claim to be ready (its caches could serve revoked sessions).
    await this.#invalidations.whenSubscribed();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#invalidations.close();
    this.#replicas?.close();
    this.#client.disconnect();
    if (this.#writer !== this.#client) this.#writer.disconnect();
    this.#sub.disconnect();
  }
}

function flatten(fields: Fields): string[] {
  const out: string[] = [];
  for (const k in fields) out.push(k, fields[k]!);
  return out;
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}