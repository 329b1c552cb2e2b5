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
// Durability with replicas (Sentinel, Cluster). Replication is asynchronous: a write the master
// acknowledged can vanish if a replica that never got it is promoted. A lost session is only
// annoying, but a lost *delete* resurrects a logged-out session, a lost lock lets two processes
// spend one refresh token, a lost replay marker re-opens a jti. So every write (not the idle
// touch, whose loss is harmless) is followed, in the same pipeline on the same connection, by
// WAIT 1: it succeeds only once a replica holds it, and fails (StoreUnavailable, no cookie
// handed out, the caller may retry) when no replica confirms within the command timeout. So in
// these modes a write may take up to twice the command timeout; reads keep the single bound.
// "Has a replica" comes from the topology, so a master whose replicas are all down or resyncing
// keeps accepting writes (single copy) instead of refusing every login:
//   - Cluster: the slot's replicas in CLUSTER SLOTS (failed replicas are left out by Redis),
//     refreshed every 2 s;
//   - Sentinel: the replicas Sentinel lists as up with their link to the master ok, polled every
//     second; unknown or stale (Sentinel unreachable) counts as "has a replica".
// This closes the gap for one replica per master (any failover promotes the replica that
// confirmed the write; Sentinel's split-brain window — old master still accepting writes after
// its replica was promoted — fails WAIT instead of silently losing writes). With several replicas
// the promoted one may not be the one that confirmed: Redis cannot promise more than that.
// Writes use their own connection in these modes, so a WAIT that blocks never delays a read.
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate } from 'node:timers';
import type { Fields, KvBackend } from './backend.ts';
import type { RedisTarget } from './redis-url.ts';
import type { Logger } from '../log.ts';
import { makeStringPrototypeFast } from './string-prototype.ts';
import { CLOCK_KEY, LUA } from './redis-scripts.ts';
import { AUTH_REFUSED, WRONG_DB, connect, type Client } from './redis-connect.ts';
import { SentinelReplicas, askTarget, everySlotOwner, keySlot } from './redis-topology.ts';

// Loading ioredis leaves String.prototype in V8's slow mode; every string method on the hot path
// paid for it (see string-prototype.ts). Imports are evaluated first: ioredis has loaded by now.
makeStringPrototypeFast();

export const INVALIDATE_CHANNEL = 'gp:invalidate';

type Scripted = Record<string, (key: string, ...args: string[]) => Promise<unknown>>;

export interface RedisBackendOptions {
  log: Logger;
  /** Bound on each command (default 500 ms). */
  commandTimeoutMs?: number;
  /** Sentinel: how often to ask which replicas are in sync (default 1000 ms). */
  replicaCheckMs?: number;
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
  readonly #log: Logger;
  readonly #readyWaitMs: number;
  /** WAIT timeout (the command timeout): a replica starved of CPU for a moment is not an outage. */
  readonly #waitMs: number;
  /** Cluster commands may be retried internally on redirections: bound the whole call. */
  readonly #deadlineMs: number | undefined;
  readonly #writeDeadlineMs: number | undefined;
  readonly #replicas: SentinelReplicas | undefined;
  readonly #listeners: ((message: string) => void)[] = [];
  readonly #feedListeners: ((live: boolean) => void)[] = [];
  readonly #readyWaits = new Map<Client, Promise<void>>();
  /**
   * A channel only this instance subscribes to, on the same subscriber connection as the
   * invalidations (echo(): probes in order with them, without fan-out to every process).
   */
  readonly #echoChannel = `${INVALIDATE_CHANNEL}:echo:${randomBytes(12).toString('base64url')}`;
  #subscribed = false;
  #subscribedWaiters: (() => void)[] = [];
  /** Cluster: the node connection our subscription lives on (see #subscribe). */
  #subConn: Redis | undefined;
  #closed = false;

  constructor(target: RedisTarget, opts: RedisBackendOptions) {
    const commandTimeout = opts.commandTimeoutMs ?? 500;
    this.#log = opts.log;
    this.#readyWaitMs = Math.round(commandTimeout * 0.6);
    this.#waitMs = commandTimeout;
    // A durable write is the write plus WAIT: its connection allows twice the command timeout, so
    // WAIT can answer "not confirmed" before the command itself times out. Reads keep the bound.
    const writeTimeout = target.mode === 'standalone' ? commandTimeout : 2 * commandTimeout;
    this.#deadlineMs = target.mode === 'cluster' ? commandTimeout + this.#readyWaitMs : undefined;
    this.#writeDeadlineMs = target.mode === 'cluster' ? writeTimeout + this.#readyWaitMs : undefined;
    this.#client = this.#scripted(connect(target, commandTimeout));
    this.#watch(this.#client, 'commands');
    if (target.mode === 'standalone') {
      this.#writer = this.#client;
    } else {
      this.#writer = this.#scripted(connect(target, writeTimeout));
      this.#watch(this.#writer, 'writes');
    }
    this.#replicas = target.mode === 'sentinel' ? new SentinelReplicas(target, opts.replicaCheckMs ?? 1000, commandTimeout) : undefined;

    if (this.#client instanceof Cluster) {
      // A node whose connection ends may come back empty (a restart without persistence keeps
      // its slots, not its data) while the subscriber, on another node, never noticed: whatever
      // a cache took from it must not be trusted, exactly as when the feed drops.
      this.#client.on('-node', () => this.#dataMayBeLost());
    }

    this.#sub = connect(target, commandTimeout);
    this.#watch(this.#sub, 'invalidations');
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

  #scripted(c: Client): Client {
    for (const [name, lua] of Object.entries(LUA)) c.defineCommand(name, { numberOfKeys: 1, lua });
    return c;
  }

  /**
   * Logs one warning per outage and one line when the connection is back (never the URL), and
   * an error when Redis refuses the credentials, even within an outage: a Redis that came back with
   * another password is then told apart from one still away (the first error of the outage, a
   * refused connection, was all its log said).
   */
  #watch(c: Client, role: string): void {
    let down = false;
    let refused = false;
    // A Cluster whose node connections ioredis replaces one by one stays 'ready' throughout: no
    // 'ready' says it is back, so while it is down a PING every second finds out.
    let probing: ReturnType<typeof setInterval> | undefined;
    const back = (): void => {
      if (!down) return;
      if (this.#closed) return void clearInterval(probing);
      // 'ready' comes before Redis has answered the AUTH (no ready check): back once a command is.
      (c instanceof Cluster ? everySlotOwner(c) : c.ping()).then(() => {
        if (!down || c.status !== 'ready') return;
        this.#log.info({ role }, 'session store connection restored');
        down = refused = false;
        clearInterval(probing);
        probing = undefined;
      }, () => { /* still down: the error handler has said why */ });
    };
    const lost = (): void => {
      down = true;
      if (c instanceof Cluster && probing === undefined) (probing = setInterval(back, 1000)).unref?.();
    };
    const refusing = (err: Error): void => {
      if (this.#closed || refused) return;
      refused = true;
      lost();
      this.#log.error({ role, err: err.message.slice(0, 120) }, 'Redis refuses the user name or password of REDIS_URL; failing closed until it accepts them');
    };
    // A Cluster's own 'error' only says "Failed to refresh slots cache": the refusal comes from
    // its node connections, which ioredis drops and makes anew on its own (slot refreshes).
    if (c instanceof Cluster) c.on('node error', (err: Error) => { if (AUTH_REFUSED.test(err.message)) refusing(err); });
    c.on('error', (err: Error) => {
      if (WRONG_DB.test(err.message)) return this.#refuseDb(c, role);
      if (this.#closed) return;
      if (AUTH_REFUSED.test(err.message)) {
        // The connection stays open but unauthenticated, every command refused, even once Redis
        // takes the password again (CONFIG SET): reconnect, with the usual backoff, until it does.
        if (c instanceof Redis) c.disconnect(true);
        return refusing(err);
      }
      if (down) return;
      lost();
      this.#log.warn({ role, err: err.message }, 'session store connection lost; failing closed until it is back');
    });
    c.on('ready', back);
  }

  /**
   * REDIS_URL names a database the server does not have. ioredis reports the failed SELECT and
   * then carries on in database 0, where every session would be written: this connection ends
   * for good instead, so the store fails closed (503s, /readyz 503) until REDIS_URL is fixed.
   */
  #refuseDb(c: Client, role: string): void {
    c.disconnect(false);
    if (this.#closed) return;
    this.#log.error({ role }, 'REDIS_URL names a database the server does not have (SELECT refused): the session store stays closed; use a database the server has (0 to its `databases` setting less one) and restart');
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

  /** How many replicas must confirm a write to `key` (0 or 1), from the current topology. */
  #acksFor(key: string): number {
    if (this.#replicas) return this.#replicas.needed;
    if (this.#writer instanceof Cluster) {
      const owners = this.#writer.slots[keySlot(key)];
      return owners === undefined || owners.length > 1 ? 1 : 0;
    }
    return 0;
  }

  /**
   * A write that must survive a failover: `name` is one of our scripts or a plain command whose
   * first argument is `key`. With replicas, the write and WAIT travel in one pipeline, so WAIT
   * runs on the very connection (and, in a cluster, the very node) that took the write.
   */
  #write(key: string, name: string, args: string[]): Promise<unknown> {
    const w = this.#writer;
    return this.#run(w, async () => {
      const acks = this.#acksFor(key);
      if (acks === 0) {
        return LUA[name] ? (w as unknown as Scripted)[name]!(key, ...args) : w.call(name, key, ...args);
      }
      /** ASK: the master the key's slot is being migrated to (the key is there already). */
      let asking: Redis | undefined;
      for (let attempt = 0; ; attempt++) {
        const p = asking !== undefined ? asking.pipeline() : w.pipeline();
        if (asking !== undefined) p.call('ASKING');
        // EVAL, not EVALSHA: a NOSCRIPT retry would run outside the pipeline, after the WAIT.
        if (LUA[name]) p.call('EVAL', LUA[name], '1', key, ...args);
        else p.call(name, key, ...args);
        p.call('WAIT', String(acks), String(this.#waitMs));
        const all = await p.exec();
        const results = asking !== undefined ? all?.slice(1) : all;
        if (!results || results.length !== 2) throw new Error('the write pipeline was discarded');
        const [[err, reply], [waitErr, acked]] = results as [[Error | null, unknown], [Error | null, unknown]];
        if (err) {
          // A failover moved the slot: learn the new owner and try once more.
          if (w instanceof Cluster && attempt === 0 && /^MOVED /.test(err.message)) {
            await new Promise<void>((resolve) => w.refreshSlotsCache(() => resolve()));
            continue;
          }
          // A slot in migration whose key has moved (a resharding): the slot table still names the
          // old master, which answers ASK every time. ioredis follows ASK for single commands, not
          // for a pipeline that holds a WAIT: send it to the new master, after ASKING, once.
          if (w instanceof Cluster && asking === undefined && attempt < 2 && /^ASK /.test(err.message)) {
            asking = askTarget(w, err.message.split(' ')[2] ?? '');
            if (asking !== undefined) continue;
          }
          throw err;
        }
        if (waitErr) throw waitErr;
        if (typeof acked !== 'number' || acked < acks) {
          throw new Error(`write not confirmed by a replica within ${this.#waitMs} ms`);
        }
        return reply;
      }
    });
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
        if (err instanceof Error && err.message.startsWith('OOM ')) return true;
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

  async increment(key: string, ttlMs: number): Promise<number> {
    return Number(await this.#write(key, 'gpIncrement', [String(ttlMs)]));
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
    this.#listeners.push(listener);
  }

  echo(message: string): Promise<void> {
    return this.#run(this.#client, async () => {
      await this.#client.publish(this.#echoChannel, message);
    });
  }

  onFeedState(listener: (live: boolean) => void): void {
    this.#feedListeners.push(listener);
  }

  /** Caches must empty themselves (a resync) without the feed itself having dropped. */
  #dataMayBeLost(): void {
    if (this.#closed) return;
    this.#feed(false);
    if (this.#subscribed) this.#feed(true);
  }

  #feed(live: boolean): void {
    if (this.#closed) return;
    for (const l of this.#feedListeners) l(live);
  }

  async ping(): Promise<void> {
    await this.#run(this.#client, () => this.#client.ping());
    if (this.#writer !== this.#client) await this.#run(this.#writer, () => this.#writer.ping());
    // Readiness includes the invalidation feed: a process that cannot hear about logouts must not
    // claim to be ready (its caches could serve revoked sessions).
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.length = 0;
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
