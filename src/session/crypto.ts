// AEAD for everything secret a store writes (session secrets, transient values): AES-256-GCM
// with a key derived by HKDF from each GOLDPATH_SESSION_KEYS entry. Keys are derived once, at
// construction; the hot path only runs the cipher.
//
// Sealed layout (then base64url):  version(1) | keyId(4) | iv(12) | ciphertext | tag(16)
// The key id lets open() pick the right key without trial decryption, so rotating keys costs
// nothing per request. The AAD binds a ciphertext to where it is stored (the session's storage
// id): a blob copied to another session does not decrypt.
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 1;
const KEY_ID_LEN = 4;
const IV_LEN = 12;
const TAG_LEN = 16;
const HEADER_LEN = 1 + KEY_ID_LEN + IV_LEN;
const SALT = Buffer.from('goldpath session keys v1');

/** HKDF-SHA256 of one configured session key, separated by purpose through `info`. */
export function deriveKey(key: Uint8Array, info: string, length = 32): Buffer {
  if (key.byteLength !== 32) throw new Error('every session key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', key, SALT, info, length));
}

interface AeadKey {
  readonly key: Buffer;
  /** The key id as an unsigned 32-bit integer (cheap lookups). */
  readonly id: number;
}

export class SecretBox {
  readonly #sealKey: AeadKey;
  readonly #byId = new Map<number, AeadKey>();

  /** `keys`: the first seals, all open (rotation). */
  constructor(keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new Error('at least one session key is required');
    const derived = keys.map((k): AeadKey => {
      const key = deriveKey(k, 'goldpath aes-256-gcm');
      // A public, stable fingerprint of the derived key: not a secret, never reused as one.
      const id = createHash('sha256').update('goldpath key id').update(key).digest().readUInt32BE(0);
      return { key, id };
    });
    for (const d of derived) {
      const other = this.#byId.get(d.id);
      // Duplicated keys are harmless; two distinct keys with one id (2^-32) would be ambiguous.
      if (other && !other.key.equals(d.key)) throw new Error('two session keys share a key id: replace one of them');
      if (!other) this.#byId.set(d.id, d);
    }
    this.#sealKey = derived[0]!;
  }

  /** Encrypts `plaintext` bound to `aad`; returns base64url text. */
  seal(plaintext: string | Uint8Array, aad: string): string {
    const iv = randomBytes(IV_LEN);
    const header = Buffer.allocUnsafe(HEADER_LEN);
    header[0] = VERSION;
    header.writeUInt32BE(this.#sealKey.id, 1);
    iv.copy(header, 1 + KEY_ID_LEN);
    const cipher = createCipheriv('aes-256-gcm', this.#sealKey.key, iv, { authTagLength: TAG_LEN });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext);
    const final = cipher.final();
    return Buffer.concat([header, body, final, cipher.getAuthTag()]).toString('base64url');
  }

  /** Decrypts what seal() produced for the same `aad`; null when it does not authenticate for any key. */
  open(sealed: string, aad: string): Buffer | null {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < HEADER_LEN + TAG_LEN || raw[0] !== VERSION) return null;
    const k = this.#byId.get(raw.readUInt32BE(1));
    if (!k) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, raw.subarray(1 + KEY_ID_LEN, HEADER_LEN), { authTagLength: TAG_LEN });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_LEN));
      const head = decipher.update(raw.subarray(HEADER_LEN, raw.length - TAG_LEN));
      const tail = decipher.final();
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      return null;
    }
  }

  /**
   * Whether `sealed` names a key this box has. A blob under a key it lacks was sealed by a
   * process with other keys (a rotation rolling out, or a key since retired): unreadable here,
   * but not known to be garbage.
   */
  hasKeyFor(sealed: string): boolean {
    const raw = Buffer.from(sealed, 'base64url');
    return raw.length >= HEADER_LEN + TAG_LEN && raw[0] === VERSION && this.#byId.has(raw.readUInt32BE(1));
  }

  /** Convenience: open() as UTF-8 text. */
  openText(sealed: string, aad: string): string | null {
    const b = this.open(sealed, aad);
    return b === null ? null : b.toString('utf8');
  }
}
