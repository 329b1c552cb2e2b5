// createSessionStore: REDIS_URL → a SessionStore. One store implementation (store.ts) over two
// backends, chosen by scheme:
//   memory://[name]          in-process. ONLY when BFF and verify run in ONE process (the demo,
//                            tests): stores opened with the same URL share data and invalidations.
//   redis://, rediss://      standalone Redis (rediss = TLS)
//   redis+sentinel://h:p,h:p/mastername     rediss+sentinel:// = TLS
//   redis+cluster://h:p,h:p                 rediss+cluster:// = TLS
import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Settings } from '../config/types.ts';
import { MemoryBackend } from './memory-backend.ts';
import { RedisBackend } from './redis-backend.ts';
import { parseRedisUrl } from './redis-url.ts';
import { KvSessionStore } from './store.ts';

export { KvSessionStore, DEFAULT_LOAD_DEADLINE_MS, keys as storeKeys } from './store.ts';
export { CachingSessionStore, DEFAULT_SESSION_CACHE_TTL_MS, DEFAULT_SESSION_CACHE_ENTRIES, type SessionCacheOptions, type ResyncSource } from './cache.ts';
export { CookieCodec, storageIdOf, isStorageId, COOKIE_VALUE_LENGTH } from './cookie.ts';
export { SecretBox, deriveKey } from './crypto.ts';
export { MemoryBackend } from './memory-backend.ts';
export { RedisBackend, INVALIDATE_CHANNEL } from './redis-backend.ts';
export { parseRedisUrl, type RedisTarget } from './redis-url.ts';
export type { KvBackend, Fields } from './backend.ts';
export * from './types.ts';

export interface CreateSessionStoreOptions {
  url: string;
  /** redisTlsCa: REDIS_TLS_CA_FILE's PEM (TLS schemes); absent = Node's CAs. */
  settings: Pick<Settings, 'sessionKeys' | 'sessionIdleMs' | 'sessionMaxMs' | 'redisTlsCa'>;
  log?: Logger;
  /** Clock override (expiry tests). For memory:// it also drives the backend's TTLs. */
  now?: () => number;
  /** Default min(60 s, idle / 10). */
  touchIntervalMs?: number;
  /** Redis command bound, default 500 ms. */
  commandTimeoutMs?: number;
  /** Bound on a whole session load, default 800 ms (session-load.ts, DEFAULT_LOAD_DEADLINE_MS). */
  loadDeadlineMs?: number;
}

export function createSessionStore(opts: CreateSessionStoreOptions): KvSessionStore {
  const log = opts.log ?? silentLogger;
  const backend = opts.url.startsWith('memory:')
    ? memoryBackend(opts.url, opts.now)
    : new RedisBackend(parseRedisUrl(opts.url), { log, commandTimeoutMs: opts.commandTimeoutMs, tlsCa: opts.settings.redisTlsCa });
  return new KvSessionStore({
    backend,
    sessionKeys: opts.settings.sessionKeys,
    sessionIdleMs: opts.settings.sessionIdleMs,
    sessionMaxMs: opts.settings.sessionMaxMs,
    log,
    now: opts.now,
    touchIntervalMs: opts.touchIntervalMs,
    loadDeadlineMs: opts.loadDeadlineMs,
  });
}

function memoryBackend(url: string, now: (() => number) | undefined): MemoryBackend {
  if (!/^memory:(\/\/[A-Za-z0-9._-]*)?$/.test(url)) {
    throw new ConfigError([{ file: 'environment', key: 'REDIS_URL', message: 'memory:// takes at most a name (memory://name)' }]);
  }
  // memory: and memory:// are the same dataset.
  return new MemoryBackend(url === 'memory:' ? 'memory://' : url, { now });
}
