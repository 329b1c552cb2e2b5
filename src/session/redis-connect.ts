// How the Redis backend connects: one ioredis client per use (reads, durable writes, invalidations)
// to a standalone server, a Sentinel-managed master or a Cluster, with the options that make it
// fail closed and fast (redis-backend.ts says why), and the server errors that say the connection's
// own settings are refused (a database it lacks, credentials), which redis-watch.ts reports apart.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-url.ts';

export type Client = Redis | Cluster;

/** The server's answer to SELECT of a database it does not have (Redis 7: 'DB index is out of range'). */
export const WRONG_DB = /^ERR (DB index is out of range|invalid DB index)/;
/** Redis refusing the credentials (AUTH, or HELLO's): a password that changed, a user disabled. */
export const AUTH_REFUSED = /^(?:WRONGPASS|NOAUTH|NOPERM)\b/;

/** Reconnect forever: 50 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 6), 2000) + Math.floor(Math.random() * 50);
}

/** A demoted master answers READONLY until Sentinel kills our connection: reconnect at once. */
function reconnectOnReadonly(err: Error): 1 | false {
  return err.message.startsWith('READONLY') ? 1 : false;
}

export function connect(target: RedisTarget, commandTimeout: number): Client {
  const common: RedisOptions = {
    commandTimeout,
    connectTimeout: 2000,
    // Destroy a connection that stops answering while commands wait (half-open TCP, frozen server).
    socketTimeout: commandTimeout * 6,
    keepAlive: 10_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResubscribe: false, // re-subscribed explicitly on every 'ready', see RedisFeed (redis-feed.ts)
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
