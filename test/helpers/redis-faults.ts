// Fault helpers for a RedisServer started with --maxmemory and --maxmemory-policy noeviction.
import type { Redis } from 'ioredis';
import type { RedisBackend } from '../../src/session/redis-backend.ts';

/**
 * Fills Redis until even a one-byte SET is refused with OOM. Big values first, then ever smaller
 * ones: the first refusal alone proves little, because a big SET's own query buffer counts
 * towards used memory and is freed once it has been refused. Returns how many keys it wrote.
 */
export async function fillUntilOom(client: Redis, prefix = 'filler'): Promise<number> {
  let n = 0;
  for (const size of [16 * 1024, 1024, 64, 1]) {
    for (;;) {
      try {
        await client.set(`${prefix}:${n++}`, 'x'.repeat(size));
      } catch (err) {
        if (!/^OOM /.test((err as Error).message)) throw err;
        break;
      }
    }
  }
  return n;
}

/**
 * `backend` with its method `name` replaced by `fault` (every other method its own, bound): one
 * failure of a real Redis backend where no fault of the server itself would isolate it.
 */
export function withOne<K extends keyof RedisBackend>(backend: RedisBackend, name: K, fault: RedisBackend[K]): RedisBackend {
  return new Proxy(backend, {
    get(target, p) {
      if (p === name) return fault;
      const v = Reflect.get(target, p, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
