// The store's keys other than sessions: tallies, locks, transient values and replay marks. Plain
// backend calls (key layout: keys.ts); a failure is StoreUnavailable (503), as everywhere in the store.
import { randomBytes } from 'node:crypto';
import { percentEncode as enc } from '../strings.ts';
import type { KvBackend } from './backend.ts';
import type { SecretBox } from './crypto.ts';
import { keys } from './keys.ts';
import { unavailable } from './unavailable.ts';

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('ttlMs must be a positive number of milliseconds');
  return Math.ceil(ttlMs);
}

export class KvPrimitives {
  readonly #backend: KvBackend;
  readonly #box: SecretBox;
  readonly #now: () => number;

  constructor(backend: KvBackend, box: SecretBox, now: () => number) {
    this.#backend = backend;
    this.#box = box;
    this.#now = now;
  }

  async tally(kind: string, windowMs: number, weight = 1): Promise<number> {
    const window = Math.floor(this.#now() / checkTtl(windowMs));
    if (!Number.isSafeInteger(weight) || weight < 1) throw new RangeError(`a tally weight must be a positive integer, not ${weight}`);
    try {
      // Lives one window past its own, for processes whose clocks lag a little.
      return await this.#backend.increment(keys.tally(kind, window), 2 * windowMs, weight);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async tryLock(name: string, ttlMs: number): Promise<string | null> {
    const ttl = checkTtl(ttlMs);
    const token = randomBytes(16).toString('base64url');
    try {
      return (await this.#backend.put(keys.lock(name), token, ttl, true)) ? token : null;
    } catch (err) {
      // A write a replica did not confirm in time still ran on the master: the lock may be ours,
      // and nobody would release it, blocking every refresh of that session for the lock's TTL.
      this.#backend.deleteIfEquals(keys.lock(name), token).catch(() => { /* it expires anyway */ });
      throw unavailable(err);
    }
  }

  async unlock(name: string, token: string): Promise<void> {
    try {
      await this.#backend.deleteIfEquals(keys.lock(name), token);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async putTransient(kind: string, key: string, value: string, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    // Login transactions hold PKCE verifiers and nonces: encrypted like everything else.
    const sealed = this.#box.seal(value, `t:${enc(kind)}:${enc(key)}`);
    try {
      await this.#backend.put(keys.transient(kind, key), sealed, ttl, false);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async takeTransient(kind: string, key: string): Promise<string | null> {
    let sealed: string | null;
    try {
      sealed = await this.#backend.take(keys.transient(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
    return sealed === null ? null : this.#box.openText(sealed, `t:${enc(kind)}:${enc(key)}`);
  }

  async markOnce(kind: string, key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs);
    try {
      return await this.#backend.put(keys.once(kind, key), '1', ttl, true);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async unmark(kind: string, key: string): Promise<void> {
    try {
      await this.#backend.take(keys.once(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
  }
}
