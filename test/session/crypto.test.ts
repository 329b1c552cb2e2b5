// AEAD for session secrets: round trips, key ids, rotation, and that every tampering fails.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { deriveKey, SecretBox } from '../../src/session/crypto.ts';

const A = randomBytes(32);
const B = randomBytes(32);
const AAD = 'storage-id-1';

describe('session secret box (AES-256-GCM)', () => {
  const box = new SecretBox([A]);

  it('round-trips text and bytes, with a fresh IV every time', () => {
    const text = JSON.stringify({ token: 'at-secret', ünï: 'cödé' });
    const s1 = box.seal(text, AAD);
    const s2 = box.seal(text, AAD);
    assert.notEqual(s1, s2);
    assert.equal(box.openText(s1, AAD), text);
    assert.equal(box.openText(s2, AAD), text);
    assert.ok(!Buffer.from(s1, 'base64url').includes(Buffer.from('at-secret')), 'ciphertext, not plaintext');
    const bytes = randomBytes(100);
    assert.deepEqual(box.open(box.seal(bytes, AAD), AAD), bytes);
    assert.equal(box.openText(box.seal('', AAD), AAD), '');
  });

  it('does not decrypt under another AAD (a blob moved to another session)', () => {
    const s = box.seal('x', AAD);
    assert.equal(box.open(s, 'storage-id-2'), null);
    assert.equal(box.open(s, ''), null);
  });

  it('does not decrypt under another key', () => {
    const s = box.seal('x', AAD);
    assert.equal(new SecretBox([B]).open(s, AAD), null);
  });

  it('carries a key id: the right key is chosen without trial, and rotation works', () => {
    const sa = box.seal('x', AAD);
    const sb = new SecretBox([B]).seal('x', AAD);
    const kid = (s: string) => Buffer.from(s, 'base64url').subarray(1, 5).toString('hex');
    assert.equal(kid(sa), kid(box.seal('y', 'other')), 'stable per key');
    assert.notEqual(kid(sa), kid(sb), 'distinct between keys');
    const rotated = new SecretBox([B, A]);
    assert.equal(rotated.openText(sa, AAD), 'x', 'old key still opens');
    assert.equal(kid(rotated.seal('x', AAD)), kid(sb), 'the first key seals');
    // A blob whose key id names A but was sealed with B (forged header) must not open under A.
    const forged = Buffer.from(sb, 'base64url');
    Buffer.from(sa, 'base64url').copy(forged, 1, 1, 5);
    assert.equal(rotated.open(forged.toString('base64url'), AAD), null);
  });

  it('refuses every single-byte tampering: version, key id, iv, ciphertext, tag', () => {
    const raw = Buffer.from(box.seal('the secrets of a session', AAD), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const t = Buffer.from(raw);
        t[i]! ^= bit;
        assert.equal(box.open(t.toString('base64url'), AAD), null, `byte ${i} bit ${bit}`);
      }
    }
  });

  it('refuses truncated, extended and garbage input', () => {
    const raw = Buffer.from(box.seal('abc', AAD), 'base64url');
    for (let n = 0; n < raw.length; n++) assert.equal(box.open(raw.subarray(0, n).toString('base64url'), AAD), null, `first ${n} bytes`);
    assert.equal(box.open(Buffer.concat([raw, Buffer.from([0])]).toString('base64url'), AAD), null);
    for (const g of ['', 'AAAA', '!!!!', randomBytes(64).toString('base64url')]) assert.equal(box.open(g, AAD), null);
  });

  it('derives distinct keys per purpose and rejects bad key material', () => {
    assert.notDeepEqual(deriveKey(A, 'goldpath cookie mac'), deriveKey(A, 'goldpath aes-256-gcm'));
    assert.deepEqual(deriveKey(A, 'p'), deriveKey(Buffer.from(A), 'p'));
    assert.throws(() => deriveKey(randomBytes(31), 'p'));
    assert.throws(() => new SecretBox([]));
    assert.doesNotThrow(() => new SecretBox([A, A]), 'a repeated key is harmless');
  });
});
