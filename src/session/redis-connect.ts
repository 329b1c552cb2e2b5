// How the Redis backend connects: one ioredis client per use (reads, durable writes, invalidations)
// to a standalone server, a Sentinel-managed master or a Cluster, with the options that make it
// fail closed and fast (redis-backend.ts says why), and the server errors that say the connection's
// own settings are refused (a database it lacks, credentials), which redis-watch.ts reports apart.
import type { ConnectionOptions } from 'node:tls';
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

/**
 * The TLS options of every connection to `target` (data nodes and sentinels alike), or undefined
 * for a plain scheme. Node's checks stay on (certificate chain and host name, never
 * rejectUnauthorized: false): a certificate that does not check out fails the connection, and
 * the store with it; there is no fallback to plain text. `ca` (REDIS_TLS_CA_FILE's PEM) is trusted
 * instead of Node's CAs, which a private CA otherwise needs NODE_EXTRA_CA_CERTS to join.
 */
export function tlsOptions(target: RedisTarget, ca: string | undefined): ConnectionOptions | undefined {
  if (!target.tls) return undefined;
  return ca === undefined ? {} : { ca: [ca] };
}

const ignore = (): void => {};

/**
 * ioredis hears its socket's errors with once(), but a TLS socket may report two: Node checks the
 * certificate's host name after the handshake and destroys the socket, and a TLS alert from the
 * server read meanwhile is a second error. Unheard, it was thrown from the event loop and ended
 * the process (a sidecar gone, not a 503; ioredis pull 961, never merged). Once a socket of `r`
 * has failed (ioredis heard that, and reconnects), whatever else it reports is the same failure.
 */
export function hearEverySocketError(r: Redis): void {
  r.on('error', () => {
    const s = r.stream;
    if (s && !s.listeners('error').includes(ignore)) s.on('error', ignore);
  });
}

function guarded<C extends Client>(c: C): C {
  if (c instanceof Cluster) c.on('+node', (node: Redis) => hearEverySocketError(node));
  else hearEverySocketError(c);
  return c;
}

export function connect(target: RedisTarget, commandTimeout: number, ca?: string): Client {
  const tls = tlsOptions(target, ca);
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
      return guarded(new Redis({ ...common, host: target.host, port: target.port, db: target.db, tls }));
    case 'sentinel':
      return guarded(new Redis({
        ...common, sentinels: target.sentinels, name: target.name, db: target.db, sentinelCommandTimeout: commandTimeout,
        // ioredis applies `tls` to the master only with enableTLSForSentinelMode; the sentinels
        // (and its failover detector's subscriptions to them) take sentinelTLS.
        tls, enableTLSForSentinelMode: tls !== undefined, sentinelTLS: tls,
        // Drop the old master as soon as Sentinel announces +switch-master, rather than when
        // Sentinel gets round to killing our connection or demoting it.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
      }));
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
        // Node connections, the subscriber and the slot refreshes all take redisOptions.tls.
        redisOptions: nodeOptions({ ...common, tls }),
      };
      return guarded(new Cluster(target.nodes, opts));
    }
  }
}

function nodeOptions(common: RedisOptions): NonNullable<ClusterOptions['redisOptions']> {
  const { enableOfflineQueue: _q, retryStrategy: _r, ...rest } = common;
  return rest;
}
