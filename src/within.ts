// A wait with a bound, for promises that go on regardless (an IdP's answer, a revocation).
import { clearTimeout, setTimeout } from 'node:timers';

/** `p`, or a rejection with `err()` once `ms` passed (p itself goes on). */
export function within<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(err()), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
