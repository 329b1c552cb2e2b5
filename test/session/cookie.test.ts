// The cookie value `<id>.<mac>`: shape, MAC, rotation, and strictness of parsing.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { COOKIE_VALUE_LENGTH, CookieCodec, isStorageId, storageIdOf } from '../../src/session/cookie.ts';

const A = randomBytes(32);
const B = randomBytes(32);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function replaceAt(s: string, i: number, c: string): string {
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe('session cookie codec', () => {
  const codec = new CookieCodec([A]);

  it('issues <43-char random id>.<22-char mac> and maps it to SHA-256 of the random bytes', () => {
    const { cookieValue, id } = codec.issue();
    assert.equal(cookieValue.length, COOKIE_VALUE_LENGTH);
    assert.match(cookieValue, /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
    const random = Buffer.from(cookieValue.slice(0, 43), 'base64url');
    assert.equal(random.length, 32);
    assert.equal(id, createHash('sha256').update(random).digest('base64url'));
    assert.equal(id, storageIdOf(random));
    assert.ok(isStorageId(id));
    assert.equal(codec.parseCookie(cookieValue), id);
    assert.equal(codec.cookieIdOf(cookieValue), id);
  });

  it('never repeats an id', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(codec.issue().cookieValue.slice(0, 43));
    assert.equal(seen.size, 2000);
  });

  it('refuses a value with any single character changed, in the id or the MAC', () => {
    const { cookieValue } = codec.issue();
    for (let i = 0; i < cookieValue.length; i++) {
      for (const c of ['A', 'B', 'w', '0', '-', '_', '.', '=', '+', '/', ' ']) {
        if (cookieValue[i] === c) continue;
        assert.equal(codec.parseCookie(replaceAt(cookieValue, i, c)), null, `position ${i} → ${c}`);
      }
    }
  });

  it('refuses truncated, extended, padded, re-cased and non-canonical values', () => {
    const { cookieValue } = codec.issue();
    const [id, mac] = cookieValue.split('.') as [string, string];
    const variants = [
      cookieValue.slice(0, -1), `${cookieValue}A`, `${cookieValue}=`, `${id}=.${mac}`, `${id}.${mac}==`,
      cookieValue.toLowerCase() === cookieValue ? cookieValue.toUpperCase() : cookieValue.toLowerCase(),
      `${mac}.${id}`, `${id}.${mac}`.replace('.', '..'), `${id}`, `${id}.`, `.${mac}`,
      encodeURIComponent(`${cookieValue};`), `"${cookieValue}"`,
    ];
    // Flip the slack bits of the last character: same bytes, different spelling.
    const lastId = ALPHABET.indexOf(id[42]!);
    for (const d of [1, 2, 3]) variants.push(`${id.slice(0, 42)}${ALPHABET[lastId + d]}.${mac}`);
    const lastMac = ALPHABET.indexOf(mac[21]!);
    for (const d of [1, 7, 15]) variants.push(`${id}.${mac.slice(0, 21)}${ALPHABET[lastMac + d]}`);
    for (const v of variants) assert.equal(codec.parseCookie(v), null, JSON.stringify(v));
  });

  it('refuses non-strings without throwing', () => {
    for (const v of [undefined, null, 42, {}, ['x']]) assert.equal(codec.parseCookie(v as never), null);
  });

  it('refuses a well-formed value signed with another key', () => {
    const other = new CookieCodec([B]).issue().cookieValue;
    assert.equal(codec.parseCookie(other), null);
  });

  it('rotates: issues with the first key, accepts any', () => {
    const old = new CookieCodec([A]).issue();
    const rotated = new CookieCodec([B, A]);
    assert.equal(rotated.parseCookie(old.cookieValue), old.id);
    const fresh = rotated.issue();
    assert.equal(new CookieCodec([B]).parseCookie(fresh.cookieValue), fresh.id, 'signed with B');
    assert.equal(new CookieCodec([A]).parseCookie(fresh.cookieValue), null, 'not with A');
    assert.equal(new CookieCodec([B]).parseCookie(old.cookieValue), null, 'A retired: old cookies die');
  });

  it('refuses arbitrary strings (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => codec.parseCookie(s) === null));
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (id, mac) =>
      codec.parseCookie(`${Buffer.from(id).toString('base64url')}.${Buffer.from(mac).toString('base64url')}`) === null));
  });

  it('rejects bad key material', () => {
    assert.throws(() => new CookieCodec([]));
    assert.throws(() => new CookieCodec([randomBytes(16)]));
  });

  it('recognises storage ids', () => {
    assert.ok(isStorageId(storageIdOf(randomBytes(32))));
    for (const s of ['', 'x', `${storageIdOf(randomBytes(32))}A`, 'gp:s:{x}', '/'.repeat(43)]) assert.equal(isStorageId(s), false);
  });
});
