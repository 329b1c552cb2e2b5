// Fault helpers for a RedisServer started with --maxmemory and --maxmemory-policy noeviction.
import type { Redis } from 'ioredis';

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
