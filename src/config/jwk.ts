// The private_key_jwt key: which algorithm it signs with, and whether it can. One place for both,
// so that `goldpath check` and startup refuse exactly the keys the BFF could not use (it imports
// the key with jose and signs client assertions with it; see oidc/client-auth.ts).
import { createPrivateKey, type JsonWebKey } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';

/** RSA keys shorter than this are refused (NIST SP 800-131A; jose itself will not sign with them). */
export const MIN_RSA_BITS = 2048;

const ALGS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  EC: ['ES256', 'ES384', 'ES512'],
  OKP: ['EdDSA', 'Ed25519'],
};
const EC_CURVE_ALG: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };

/** The algorithm the key signs with: its own `alg`, or the usual one for its type and curve. */
export function clientKeyAlg(jwk: JWK): string {
  if (jwk.alg !== undefined) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return EC_CURVE_ALG[String(jwk.crv)] ?? 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  throw new Error(`unsupported private_key_jwt key type ${String(jwk.kty)}`);
}

/** The key as the BFF signs with it. Throws (jose's message) when it cannot be imported. */
export async function importClientKey(jwk: JWK): Promise<{ key: CryptoKey; alg: string }> {
  const alg = clientKeyAlg(jwk);
  return { key: await importJWK(jwk, alg) as CryptoKey, alg };
}

/** A JWK field as a message may quote it: metadata, never key material; short. */
const quoted = (v: unknown) => JSON.stringify(String(v).slice(0, 24));

/**
 * Why `k` (parsed JSON) cannot sign private_key_jwt client assertions, or undefined when it can.
 * The reasons name the key's type, curve, size, `alg` or `use`, never its material.
 */
export async function signingKeyProblem(k: Record<string, unknown>): Promise<string | undefined> {
  const kty = String(k.kty);
  if (!(kty in ALGS)) return 'is not an RSA, EC or OKP JSON Web Key';
  if (typeof k.d !== 'string') return 'holds a public key; private_key_jwt needs the private JWK (with "d")';
  let bits: number | undefined;
  try {
    bits = createPrivateKey({ key: k as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails?.modulusLength;
  } catch {
    if (kty === 'OKP' && k.crv !== 'Ed25519') return okpCurve(k.crv);
    if (kty === 'EC' && !(String(k.crv) in EC_CURVE_ALG)) return ecCurve(k.crv);
    return `holds a ${kty} JWK whose key material does not parse (a damaged or hand-edited key?)`;
  }
  if (k.use !== undefined && k.use !== 'sig') return `is marked "use": ${quoted(k.use)}; private_key_jwt needs a signing key ("use": "sig", or no "use")`;
  if (Array.isArray(k.key_ops) && !k.key_ops.includes('sign')) return `has "key_ops" without "sign"; private_key_jwt needs a signing key (add "sign", or remove "key_ops")`;
  if (kty === 'OKP' && k.crv !== 'Ed25519') return okpCurve(k.crv);
  if (kty === 'EC' && !(String(k.crv) in EC_CURVE_ALG)) return ecCurve(k.crv);
  if (k.alg !== undefined && !ALGS[kty]!.includes(String(k.alg))) {
    return `has "alg": ${quoted(k.alg)}, which is not a signature algorithm for an ${kty} key ` +
      `(use ${ALGS[kty]!.join(', ')}, or remove "alg")`;
  }
  if (kty === 'RSA' && bits !== undefined && bits < MIN_RSA_BITS) {
    return `holds a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are required (shorter keys can be factored; generate a new one)`;
  }
  // Whatever else the runtime would refuse (an `alg` for another curve, say): sign once, as it will.
  let alg = String(k.alg);
  try {
    const imported = await importClientKey(k as JWK);
    alg = imported.alg;
    await new SignJWT({}).setProtectedHeader({ alg }).sign(imported.key);
  } catch (err) {
    return `cannot sign with ${quoted(alg)}: ${(err as Error).message}`;
  }
  return undefined;
}

function okpCurve(crv: unknown): string {
  return `holds an OKP key on curve ${quoted(crv)}; private_key_jwt signs with Ed25519 (EdDSA) only ` +
    '(X25519 and X448 are key-agreement curves, not signature ones)';
}

function ecCurve(crv: unknown): string {
  return `holds an EC key on curve ${quoted(crv)}; private_key_jwt signs with P-256, P-384 or P-521 (ES256, ES384, ES512)`;
}
