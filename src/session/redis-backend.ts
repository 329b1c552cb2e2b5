// The Redis backend (ioredis): standalone, Sentinel or Cluster, one code path.
//
// Fail closed AND fast: /auth/verify must answer 503 within 1 s when Redis is gone or stalled,
// never hang and never mistake "unreachable" for "no session". So:
//   - no offline queue: while the connection is down, commands fail at once instead of piling up;
//     only while a connection attempt is in flight (startup) do we wait, briefly, for it;
//   - commandTimeout bounds every command on a live but stalled connection; socketTimeout
//     recycles a connection that stops answering altogether;
//   - maxRetriesPerRequest 0: a command in flight when the link drops fails rather than being
//     replayed later (no surprise double HINCRBY);
//   - reconnect forever with capped exponential backoff, so the store heals on its own.
// Multi-step writes are single-key Lua scripts (cluster-safe: one hash slot each).
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { setTimeout, clearTimeout } from 'node:timers';
import type { Fields, KvBackend } from './backend.ts';
import type { RedisTarget } from './redis-url.ts';
import type { Logger } from '../log.ts';

export const INVALIDATE_CHANNEL = 'gp:invalidate';

// KEYS[1] = hash; ARGV[1] = ttl ms; ARGV[2..] = field, value, ...
const CREATE = `redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;
// KEYS[1] = hash; ARGV[1] = field to increment or ''; ARGV[2..] = field, value, ...
// Never creates the hash: a refresh racing a logout must not resurrect the session.
const UPDATE = `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
if ARGV[1] ~= '' then return redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
return 0`;
// KEYS[1] = hash; ARGV = field, value, ttl ms. Only moves forward; never creates.
const TOUCH = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if cur == nil or cur < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1`;
// KEYS[1] = hash; ARGV = fields to return. Read-and-delete in one step.
const TAKE = `local v = redis.call('HMGET', KEYS[1], unpack(ARGV))
if redis.call('DEL', KEYS[1]) == 0 then return false end
return v`;
// KEYS[1] = set; ARGV = member, ttl ms. TTL only grows (it must outlive every member's session).
const SET_ADD = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])`;
// KEYS[1] = lock; ARGV[1] = token. Compare-and-delete.
const DEL_IF_EQ = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type Client = Redis | Cluster;
interface Scripts {
  gpCreate(key: string, ...args: string[]): Promise<number>;
  gpUpdate(key: string, ...args: string[]): Promise<number | null>;
  gpTouch(key: string, ...args: string[]): Promise<number>;
  gpTake(key: string, ...args: string[]): Promise<(string | null)[] | null>;
  gpSetAdd(key: string, ...args: string[]): Promise<number>;
  gpDelIfEq(key: string, ...args: string[]): Promise<number>;
}

export interface RedisBackendOptions {
  log: Logger;
  /** Bound on each command (default 500 ms). */
  commandTimeoutMs?: number;
}

/** Reconnect forever: 50 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 6), 2000) + Math.floor(Math.random() * 50);
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
      return new Redis({ ...common, sentinels: target.sentinels, name: target.name, db: target.db, sentinelCommandTimeout: commandTimeout });
    case 'cluster': {
      const opts: ClusterOptions = {
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        slotsRefreshTimeout: 1000,
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

export class RedisBackend implements KvBackend {
  readonly #client: Client;
  readonly #cmd: Scripts;
  readonly #sub: Client;
  readonly #log: Logger;
  readonly #readyWaitMs: number;
  /** Cluster commands may be retried internally on redirections: bound the whole call. */
  readonly #deadlineMs: number | undefined;
  readonly #listeners: ((message: string) => void)[] = [];
  #readyWait: Promise<void> | undefined;
  #subscribed = false;
  #subscribedWaiters: (() => void)[] = [];
  #closed = false;

  constructor(target: RedisTarget, opts: RedisBackendOptions) {
    const commandTimeout = opts.commandTimeoutMs ?? 500;
    this.#log = opts.log;
    this.#readyWaitMs = Math.round(commandTimeout * 0.6);
    this.#deadlineMs = target.mode === 'cluster' ? commandTimeout + this.#readyWaitMs : undefined;
    this.#client = connect(target, commandTimeout);
    for (const [name, lua] of Object.entries({
      gpCreate: CREATE, gpUpdate: UPDATE, gpTouch: TOUCH, gpTake: TAKE, gpSetAdd: SET_ADD, gpDelIfEq: DEL_IF_EQ,
    })) {
      this.#client.defineCommand(name, { numberOfKeys: 1, lua });
    }
    this.#cmd = this.#client as unknown as Scripts;
    this.#watch(this.#client, 'commands');

    this.#sub = connect(target, commandTimeout);
    this.#watch(this.#sub, 'invalidations');
    this.#sub.on('ready', () => this.#subscribe());
    this.#sub.on('close', () => { this.#subscribed = false; });
    this.#sub.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATE_CHANNEL) return;
      for (const l of this.#listeners) l(message);
    });
  }

  /** Logs one warning per outage and one line when the connection is back (never the URL). */
  #watch(c: Client, role: string): void {
    let down = false;
    c.on('error', (err: Error) => {
      if (down || this.#closed) return;
      down = true;
      this.#log.warn({ role, err: err.message }, 'session store connection lost; failing closed until it is back');
    });
    c.on('ready', () => {
      if (down) this.#log.info({ role }, 'session store connection restored');
      down = false;
    });
  }

  #subscribe(): void {
    this.#sub.subscribe(INVALIDATE_CHANNEL).then(() => {
      this.#subscribed = true;
      const waiters = this.#subscribedWaiters;
      this.#subscribedWaiters = [];
      for (const w of waiters) w();
    }, (err: Error) => {
      if (this.#closed) return;
      this.#log.warn({ err: err.message }, 'cannot subscribe to session invalidations; reconnecting');
      this.#sub.disconnect(true);
    });
  }

  /** Runs `op` now if connected, after a short wait if a connection attempt is in flight, else fails. */
  #run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('session store is closed'));
    const p = this.#client.status === 'ready' ? op() : this.#whenReady().then(op);
    return this.#deadlineMs === undefined ? p : withDeadline(p, this.#deadlineMs);
  }

  #whenReady(): Promise<void> {
    const c = this.#client;
    const s = c.status;
    if (s === 'ready') return Promise.resolve();
    if (s !== 'wait' && s !== 'connecting' && s !== 'connect') return Promise.reject(new Error(`redis connection is ${s}`));
    return (this.#readyWait ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        c.off('ready', onReady);
        c.off('close', onClose);
        this.#readyWait = undefined;
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(new Error('redis connection failed'));
      const timer = setTimeout(() => done(new Error('redis connection not ready in time')), this.#readyWaitMs);
      timer.unref();
      c.once('ready', onReady);
      c.once('close', onClose);
    }));
  }

  hashGet(key: string): Promise<Fields | null> {
    return this.#run(async () => {
      const h = await this.#client.hgetall(key);
      for (const _ in h) return h;
      return null;
    });
  }

  hashCreate(key: string, fields: Fields, ttlMs: number): Promise<void> {
    return this.#run(async () => {
      await this.#cmd.gpCreate(key, String(ttlMs), ...flatten(fields));
    });
  }

  hashUpdate(key: string, fields: Fields, incrField?: string): Promise<number | null> {
    return this.#run(() => this.#cmd.gpUpdate(key, incrField ?? '', ...flatten(fields)));
  }

  hashTouch(key: string, field: string, value: number, ttlMs: number): Promise<boolean> {
    return this.#run(async () => (await this.#cmd.gpTouch(key, field, String(value), String(ttlMs))) === 1);
  }

  hashTake(key: string, fields: readonly string[]): Promise<(string | null)[] | null> {
    return this.#run(() => this.#cmd.gpTake(key, ...fields));
  }

  exists(key: string): Promise<boolean> {
    return this.#run(async () => (await this.#client.exists(key)) === 1);
  }

  setAdd(key: string, member: string, ttlMs: number): Promise<number> {
    return this.#run(() => this.#cmd.gpSetAdd(key, member, String(ttlMs)));
  }

  setMembers(key: string): Promise<string[]> {
    return this.#run(() => this.#client.smembers(key));
  }

  setRemove(key: string, members: readonly string[]): Promise<void> {
    if (members.length === 0) return Promise.resolve();
    return this.#run(async () => {
      await this.#client.srem(key, ...members);
    });
  }

  put(key: string, value: string, ttlMs: number, onlyIfAbsent: boolean): Promise<boolean> {
    return this.#run(async () => {
      const r = onlyIfAbsent
        ? await this.#client.set(key, value, 'PX', ttlMs, 'NX')
        : await this.#client.set(key, value, 'PX', ttlMs);
      return r === 'OK';
    });
  }

  take(key: string): Promise<string | null> {
    return this.#run(() => this.#client.getdel(key));
  }

  deleteIfEquals(key: string, value: string): Promise<boolean> {
    return this.#run(async () => (await this.#cmd.gpDelIfEq(key, value)) === 1);
  }

  publish(message: string): Promise<void> {
    return this.#run(async () => {
      await this.#client.publish(INVALIDATE_CHANNEL, message);
    });
  }

  onMessage(listener: (message: string) => void): void {
    this.#listeners.push(listener);
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#client.ping());
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
    this.#client.disconnect();
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
