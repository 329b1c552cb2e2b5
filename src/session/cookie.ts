// The session cookie value: `<id>.<mac>`.
//   id  = 32 random bytes, base64url (43 chars): the only thing that identifies a session.
//   mac = HMAC-SHA256(macKey, id) truncated to 16 bytes, base64url (22 chars).
// The MAC lets /auth/verify refuse forged or garbled cookies without touching Redis (SPEC 4/5),
// so random cookies cannot be used to hammer the store. The store never sees the cookie value:
// sessions live under storageIdOf(id) = base64url(SHA-256(random bytes)), so a store dump
// cannot be turned back into a cookie.
import { Buffer } from 'node:buffer';
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { deriveKey } from './crypto.ts';

const ID_BYTES = 32;
const ID_LEN = 43;
const MAC_BYTES = 16;
const MAC_LEN = 22;
/** Total cookie value length: id, '.', mac. */
export const COOKIE_VALUE_LENGTH = ID_LEN + 1 + MAC_LEN;

// Strict base64url without padding. The last character may only carry the bits that exist
// (43 chars = 258 bits for 256; 22 chars = 132 bits for 128), so every value has exactly one
// spelling: no two cookie strings map to one session.
const COOKIE_RE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]\.[A-Za-z0-9_-]{21}[AQgw]$/;
const STORAGE_ID_RE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** base64url SHA-256 of the cookie's random bytes: the key a session is stored under. */
export function storageIdOf(randomPart: Uint8Array): string {
  return createHash('sha256').update(randomPart).digest('base64url');
}

/** Whether `s` has the shape of a storage id (43 chars base64url of 32 bytes). */
export function isStorageId(s: string): boolean {
  return s.length === ID_LEN && STORAGE_ID_RE.test(s);
}

export class CookieCodec {
  readonly #macKeys: readonly KeyObject[];

  /** `keys`: the first signs new cookies, all verify (rotation). */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new Error('at least one session key is required');
    this.#macKeys = keys.map((k) => createSecretKey(deriveKey(k, 'goldpath cookie mac')));
  }

  /** A fresh cookie value and the storage id it maps to. */
  issue(): { cookieValue: string; id: string } {
    const random = randomBytes(ID_BYTES);
    const idText = random.toString('base64url');
    const mac = this.#mac(this.#macKeys[0]!, idText).toString('base64url');
    return { cookieValue: `${idText}.${mac}`, id: storageIdOf(random) };
  }

  /**
   * The storage id for a cookie value, or null when the value is not exactly well-formed or its
   * MAC does not verify under any key. Pure computation: never touches a store.
   */
  parseCookie(value: string | undefined | null): string | null {
    if (typeof value !== 'string' || value.length !== COOKIE_VALUE_LENGTH || !COOKIE_RE.test(value)) return null;
    const idText = value.slice(0, ID_LEN);
    const given = Buffer.from(value.slice(ID_LEN + 1), 'base64url');
    let ok = false;
    // Try every key (no early exit) so timing does not reveal which key, if any, matched.
    for (const k of this.#macKeys) {
      if (timingSafeEqual(this.#mac(k, idText), given)) ok = true;
    }
    return ok ? storageIdOf(Buffer.from(idText, 'base64url')) : null;
  }

  /** Alias of parseCookie (the name other modules look for). */
  cookieIdOf(value: string | undefined | null): string | null {
    return this.parseCookie(value);
  }

  #mac(key: KeyObject, idText: string): Buffer {
    return createHmac('sha256', key).update(idText).digest().subarray(0, MAC_BYTES);
  }
}
