// DPoP (RFC 9449): one key per session, kept (encrypted) in SessionSecrets.dpopJwk, used for the
// token requests of that session and for the proofs the sidecar hands to upstream APIs.
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

const ALG = 'ES256';
const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']);

export type DpopJwk = Readonly<Record<string, unknown>>;

/** A fresh ES256 key pair as one private JWK (which also carries the public members). */
export async function newDpopJwk(): Promise<DpopJwk> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  return { ...(await exportJWK(privateKey)), alg: ALG };
}

export function publicJwk(jwk: DpopJwk): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.has(k) && k !== 'alg' && k !== 'key_ops' && k !== 'ext')) as JWK;
}

/** RFC 7638 thumbprint (what the IdP puts in cnf.jkt and what dpop_jkt carries). */
export function dpopThumbprint(jwk: DpopJwk): Promise<string> {
  return calculateJwkThumbprint(publicJwk(jwk));
}

// Importing a JWK costs more than signing; sessions reuse their key for every request.
const cache = new Map<string, CryptoKeyPair>();
const CACHE_MAX = 1000;

/** CryptoKeyPair for openid-client's getDPoPHandle (the public key must be extractable). */
export async function dpopKeyPair(jwk: DpopJwk): Promise<CryptoKeyPair> {
  const id = JSON.stringify(publicJwk(jwk));
  const hit = cache.get(id);
  if (hit) return hit;
  const alg = typeof jwk['alg'] === 'string' ? jwk['alg'] : ALG;
  const privateKey = await importJWK({ ...(jwk as JWK), ext: false }, alg) as CryptoKey;
  const publicKey = await importJWK({ ...publicJwk(jwk), ext: true }, alg, { extractable: true }) as CryptoKey;
  const pair = { privateKey, publicKey };
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(id, pair);
  return pair;
}

/**
 * A DPoP proof for calling a resource server: htm, htu (no query or fragment, RFC 9449 4.2),
 * iat, jti and ath (the access token's hash).
 */
export async function dpopProof(jwk: DpopJwk, method: string, url: string, accessToken: string): Promise<string> {
  const { privateKey } = await dpopKeyPair(jwk);
  const u = new URL(url);
  const htu = `${u.origin}${u.pathname}`;
  const ath = createHash('sha256').update(accessToken).digest('base64url');
  return new SignJWT({ htm: method.toUpperCase(), htu, ath, jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: typeof jwk['alg'] === 'string' ? jwk['alg'] : ALG, typ: 'dpop+jwt', jwk: publicJwk(jwk) })
    .setIssuedAt()
    .sign(privateKey);
}
