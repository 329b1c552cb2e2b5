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

/** After each call of `obj[name]`, `then(result)`: a hook on an ioredis internal, if it is there. */
function after<T>(obj: unknown, name: string, then: (made: T) => void): boolean {
  const o = obj as Record<string, unknown> | undefined;
  const f = o?.[name];
  if (typeof f !== 'function') return false;
  o![name] = function (this: unknown, ...args: unknown[]) {
    const made = (f as (...a: unknown[]) => T).apply(this, args);
    then(made);
    return made;
  };
  return true;
}

/**
 * Every connection ioredis makes for `c` hears its errors till the end: its own, and the ones it
 * makes inside, which only an internal reaches. Unheard, an error is printed
 * ("[ioredis] Unhandled error event", past the JSON log) or, on a socket, ends the process:
 *  - Sentinel: each lookup (ioredis listens, with once() on the socket) and each failover
 *    detector subscription, one per sentinel, reconnecting every minute and heard by no one:
 *    a sentinel down printed ECONNREFUSED a minute later, and every minute after, per client.
 *  - Cluster: the node connections ('+node'), the slot refreshes' duplicates of them, and
 *    the subscriber it picks (ioredis listens to the last two, but with once() on the socket).
 * A Sentinel client must be made with lazyConnect (its first lookup is made as it is
 * constructed) and connected after this. Returns whether every hook found its internal: an
 * ioredis that moved one fails the test that checks (test/session/unheard-errors.test.ts)
 * rather than the process.
 */
export function guarded<C extends Client>(c: C): { client: C; hooked: boolean } {
  const hear = (r: Redis): void => {
    r.on('error', ignore); // what matters is reported where it is used: a failed lookup, the client's own
    hearEverySocketError(r);
  };
  if (c instanceof Cluster) {
    const internals = c as unknown as { subscriber?: { subscriber?: Redis | null } };
    const onNode = (node: Redis): void => {
      hearEverySocketError(node);
      after<Redis>(node, 'duplicate', hear);
    };
    c.on('error', ignore); // the Cluster's own: "Failed to refresh slots cache" (ConnectionWatch's to log)
    c.on('+node', onNode);
    for (const node of c.nodes()) onNode(node);
    const sub = internals.subscriber;
    const hooked = after<void>(sub, 'selectSubscriber', () => {
      const r = sub?.subscriber;
      if (!r) return;
      hear(r);
      // ioredis disconnects the last subscriber that took the subscriptions again at every pick
      // until another takes them, and each disconnect() adds a 'close' listener to its closed
      // socket: while Redis refuses the password (about ten picks a second) they piled up
      // (MaxListenersExceededWarning) for as long as it did. Once ended, there is nothing to end.
      r.once('end', () => { r.disconnect = () => {}; });
    });
    return { client: c, hooked };
  }
  hearEverySocketError(c);
  if (c.options.sentinels == null) return { client: c, hooked: true };
  const connector = (c as unknown as { connector?: unknown }).connector;
  return { client: c, hooked: after<Redis>(connector, 'connectToSentinel', hear) };
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
      return guarded(new Redis({ ...common, host: target.host, port: target.port, db: target.db, tls })).client;
    case 'sentinel': {
      const { client } = guarded(new Redis({
        ...common, sentinels: target.sentinels, name: target.name, db: target.db, sentinelCommandTimeout: commandTimeout,
        // ioredis applies `tls` to the master only with enableTLSForSentinelMode; the sentinels
        // (and its failover detector's subscriptions to them) take sentinelTLS.
        tls, enableTLSForSentinelMode: tls !== undefined, sentinelTLS: tls,
        // Drop the old master as soon as Sentinel announces +switch-master, rather than when
        // Sentinel gets round to killing our connection or demoting it.
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly,
        lazyConnect: true, // connected once guarded: its first lookup is made as it connects
      }));
      client.connect().catch(ignore); // its failures reach the client's 'error' listeners
      return client;
    }
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
      return guarded(new Cluster(target.nodes, opts)).client;
    }
  }
}

function nodeOptions(common: RedisOptions): NonNullable<ClusterOptions['redisOptions']> {
  const { enableOfflineQueue: _q, retryStrategy: _r, ...rest } = common;
  return rest;
}
