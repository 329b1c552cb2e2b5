// The Redis backend (ioredis): standalone, Sentinel or Cluster, one code path.
//
// Fail closed AND fast: /auth/verify must answer 503 within 1 s when Redis is gone or stalled,
// never hang and never mistake "unreachable" for "no session". So:
//   - no offline queue: while the connection is down, commands fail at once instead of piling up;
//     only while a connection attempt is in flight (startup) do we wait, briefly, for it;
//   - commandTimeout bounds every command on a live but stalled connection; socketTimeout
//     recycles a connection that stops answering altogether. It bounds each command alone: a
//     caller that makes several (a session load: read, then touch) bounds the whole itself
//     (store.ts DEFAULT_LOAD_DEADLINE_MS, oidc/token-provider.ts for a refresh);
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
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate } from 'node:timers';
import { END_FIELD, type Fields, type KvBackend } from './backend.ts';
import type { RedisTarget } from './redis-url.ts';
import type { Logger } from '../log.ts';
import { makeStringPrototypeFast } from './string-prototype.ts';

// Loading ioredis leaves String.prototype in V8's slow mode; every string method on the hot path
// paid for it (see string-prototype.ts). Imports are evaluated first: ioredis has loaded by now.
makeStringPrototypeFast();

export const INVALIDATE_CHANNEL = 'gp:invalidate';

// Redis's clock in ms (TIME is allowed before writes since Redis 5's effect replication, the only
// mode from 7): the one clock every process's writes to a key agree on (backend.ts END_FIELD).
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
// KEYS[1] = hash; ARGV[1] = ttl ms; ARGV[2] = lifetime ms or ''; ARGV[3..] = field, value, ...
const CREATE = `redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] ~= '' then
  ${NOW_MS}
  redis.call('HSET', KEYS[1], '${END_FIELD}', now + tonumber(ARGV[2]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;
// KEYS[1] = hash; ARGV[1] = field to increment or ''; ARGV[2] = channel or ''; ARGV[3] = message;
// ARGV[4..] = field, value, ... Never creates the hash: a refresh racing a logout must not
// resurrect the session. The message is published in the same step (KvBackend.hashTake).
// A key holding another type (not ours: see NOT_A_HASH) is no session either. The increment comes
// first: a script is not rolled back, and one whose HINCRBY fails (a field that is not a number)
// must not have written and announced the rest.
const UPDATE = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return false end
local n = 0
if ARGV[1] ~= '' then n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`;
// KEYS[1] = hash; ARGV = field, value, ttl ms. Only moves forward; never creates; never past END_FIELD.
const TOUCH = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if cur == nil or cur < tonumber(ARGV[2]) then
  local ttl = tonumber(ARGV[3])
  local e = tonumber(redis.call('HGET', KEYS[1], '${END_FIELD}'))
  if e ~= nil then
    ${NOW_MS}
    if e - now < ttl then ttl = e - now end
    if ttl <= 0 then
      redis.call('DEL', KEYS[1])
      return 0
    end
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1`;
// KEYS[1] = hash; ARGV[1] = channel or ''; ARGV[2] = message; ARGV[3..] = fields to return.
// Read-and-delete in one step, and the message published in it, whether the hash existed or not.
// A value of another type under the key is deleted too (NOT_A_HASH), and reads as no hash.
const TAKE = `local hash = redis.call('TYPE', KEYS[1]).ok == 'hash'
local v = hash and redis.call('HMGET', KEYS[1], unpack(ARGV, 3))
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
if not hash then return false end
return v`;
// KEYS[1] = set; ARGV = member, ttl ms. TTL only grows (it must outlive every member's session).
const SET_ADD = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])`;
// KEYS[1] = lock; ARGV[1] = token. Compare-and-delete.
const DEL_IF_EQ = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// KEYS[1] = counter; ARGV[1] = ttl ms, set when INCR creates it (a counter never lives on).
const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

// KEYS[1] = CLOCK_KEY, never written: it only routes the call. TIME in ms (a Lua number holds it
// exactly; the reply truncates it to an integer). No write, so a full Redis still answers it.
const TIME = `${NOW_MS}
return now`;
/**
 * Routes every TIME to one server: a plain TIME goes to any Cluster node, each with its own clock.
 * Through a key, it is always the master of that key's slot (after a failover, its replica).
 */
const CLOCK_KEY = 'gp:clock';

const LUA: Record<string, string> = {
  gpCreate: CREATE, gpUpdate: UPDATE, gpTouch: TOUCH, gpTake: TAKE, gpSetAdd: SET_ADD, gpDelIfEq: DEL_IF_EQ,
  gpIncrement: INCREMENT, gpTime: TIME,
};

type Client = Redis | Cluster;
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

/** The server's answer to SELECT of a database it does not have (Redis 7: 'DB index is out of range'). */
const WRONG_DB = /^ERR (DB index is out of range|invalid DB index)/;
/** Redis refusing the credentials (AUTH, or HELLO's): a password that changed, a user disabled. */
const AUTH_REFUSED = /^(?:WRONGPASS|NOAUTH|NOPERM)\b/;

/** Reconnect forever: 50 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 6), 2000) + Math.floor(Math.random() * 50);
}

/** A demoted master answers READONLY until Sentinel kills our connection: reconnect at once. */
function reconnectOnReadonly(err: Error): 1 | false {
  return err.message.startsWith('READONLY') ? 1 : false;
}

function connect(target: RedisTarget, commandTimeout: number): Client {
  const common: RedisOptions = {
    commandTimeout,
    connectTimeout: 2000,
    // Destroy a connection that stops answering while commands wait (half-open TCP, frozen server).
    socketTimeout: commandTimeout * 6,
    keepAlive: 10_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResubscribe: false, // re-subscribed explicitly on every 'ready', see RedisBackend
    retryStrategy: backoff,
    username: target.auth.username,
    password: target.auth.password,
  };
  switch (target.mode) {
    case 'standalone':
      return new Redis({ ...common, host: target.host, port: target.port, db: target.db, tls: target.tls ? {} : undefined });
    case 'sentinel':
      return new Redis({
        ...common, sentinels: target.sentinels, name: target.name, db: target.db, sentinelCommandTimeout: commandTimeout,
        // Drop the old master as soon as Sentinel announces +switch-master, rather than when
        // Sentinel gets round to killing our connection or demoting it.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
      });
    case 'cluster': {
      const opts: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        slotsRefreshTimeout: 1000,
        // ioredis only refreshes the slot table on redirections unless told to: poll it, so a
        // replica that joins, fails or is promoted is noticed (it decides whether writes WAIT).
        slotsRefreshInterval: 2000,
        maxRedirections: 4,
        // The cluster client manages its node connections' queues and reconnects itself;
        // commandTimeout and the per-call deadline in RedisBackend bound every call.
        redisOptions: nodeOptions(common),
      };
      return new Cluster(target.nodes, opts);
    }
  }
}

function nodeOptions(common: RedisOptions): NonNullable<ClusterOptions['redisOptions']> {
  const { enableOfflineQueue: _q, retryStrategy: _r, ...rest } = common;
  return rest;
}

/** CRC16/XMODEM, the Redis Cluster key hash. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const utf8 = new TextEncoder();

/** The Redis Cluster hash slot of a key (hash tags honoured), as CLUSTER KEYSLOT computes it. */
export function keySlot(key: string): number {
  let bytes = utf8.encode(key);
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  return crc16(bytes) % 16384;
}

/**
 * Sentinel's view of the master's replicas, polled: how many are up and in sync. Writes wait for
 * a replica unless Sentinel positively says there is none in sync; no answer means "wait".
 */
class SentinelReplicas {
  #inSync: number | undefined;
  #at = 0;
  #client: Redis | undefined;
  #next = 0;
  #polling = false;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly target: Extract<RedisTarget, { mode: 'sentinel' }>,
    private readonly everyMs: number,
    private readonly commandTimeout: number,
  ) {
    void this.#poll();
    this.#timer = setInterval(() => void this.#poll(), everyMs);
    this.#timer.unref();
  }

  /** Replicas a write must reach: 0 only on a fresh answer that no replica is in sync. */
  get needed(): number {
    const fresh = this.#inSync !== undefined && performance.now() - this.#at <= 3 * this.everyMs; // monotonic: a step back kept a stale 0 "fresh"
    return fresh && this.#inSync === 0 ? 0 : 1;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      this.#client ??= await this.#connect();
      const replicas = (await this.#client.call('SENTINEL', 'REPLICAS', this.target.name)) as string[][];
      this.#inSync = replicas.filter((flat) => {
        const r: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) r[flat[i]!] = flat[i + 1]!;
        return !/s_down|o_down|disconnected/.test(r.flags ?? '') && r['master-link-status'] === 'ok';
      }).length;
      this.#at = performance.now();
    } catch {
      // Ask the next sentinel next time; meanwhile `needed` turns conservative once stale.
      this.#client?.disconnect();
      this.#client = undefined;
      this.#next++;
    } finally {
      this.#polling = false;
    }
  }

  async #connect(): Promise<Redis> {
    const s = this.target.sentinels[this.#next % this.target.sentinels.length]!;
    const c = new Redis({
      host: s.host, port: s.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0,
      retryStrategy: () => null, commandTimeout: this.commandTimeout, connectTimeout: this.commandTimeout,
    });
    c.on('error', () => { /* reported through the failed poll */ });
    try {
      await c.connect();
    } catch (err) {
      c.disconnect();
      throw err;
    }
    return c;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#client?.disconnect();
    this.#client = undefined;
  }
}

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

/**
 * A PING answered by the master of every slot. A Cluster's own PING goes to one node at random,
 * and the connection to a node that refuses the password is dropped from c.nodes(): one still
 * refusing would be called restored while its keys fail. A slot owner without a connection is
 * not back yet; a slot refresh makes its connection anew for the next probe.
 */
function everySlotOwner(c: Cluster): Promise<unknown> {
  const owners = new Set<string>();
  for (const s of c.slots) if (s?.[0] !== undefined) owners.add(s[0]);
  const byKey = new Map(c.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
  const nodes = [...owners].map((k) => byKey.get(k));
  if (owners.size === 0 || nodes.some((n) => n === undefined)) {
    c.refreshSlotsCache();
    return Promise.reject(new Error('a slot owner has no connection'));
  }
  return Promise.all(nodes.map((n) => n!.ping()));
}

/**
 * The connection to `hostPort` (from an ASK reply) as ioredis itself finds it when it follows ASK:
 * a master new to the cluster (what a resharding usually fills) holds no slot yet, so it may not
 * be among the client's nodes. Undefined if the address is unreadable or ioredis has no such pool.
 */
function askTarget(c: Cluster, hostPort: string): Redis | undefined {
  const at = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, at);
  const port = Number(hostPort.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) return undefined;
  const known = c.nodes('master').find((n) => n.options.host === host && n.options.port === port);
  if (known !== undefined) return known;
  const pool = (c as unknown as { connectionPool?: { findOrCreate?(node: { host: string; port: number }): Redis } }).connectionPool;
  return pool?.findOrCreate?.({ host, port });
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
