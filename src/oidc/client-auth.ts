// How the BFF authenticates to an IdP's token, PAR and revocation endpoints (idps.yaml client_auth).
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { importJWK, type JWK } from 'jose';
import type { IdpConfig } from '../config/types.ts';

export async function clientAuthFor(idp: IdpConfig): Promise<oidc.ClientAuth> {
  switch (idp.clientAuth) {
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(requireSecret(idp));
    case 'client_secret_post':
      return oidc.ClientSecretPost(requireSecret(idp));
    case 'private_key_jwt': {
      if (!idp.privateKey) throw new Error(`idps.${idp.name}: private_key_jwt needs private_key`);
      const jwk = JSON.parse(readFileSync(idp.privateKey, 'utf8')) as JWK;
      const alg = jwk.alg ?? defaultAlg(jwk);
      const key = await importJWK(jwk, alg) as CryptoKey;
      return oidc.PrivateKeyJwt(jwk.kid ? { key, kid: jwk.kid } : key);
    }
    case 'tls_client_auth':
      // The certificate is presented by the TLS layer (see fetch.ts); the body carries client_id.
      return oidc.TlsClientAuth();
  }
}

function requireSecret(idp: IdpConfig): string {
  if (!idp.clientSecret) throw new Error(`idps.${idp.name}: ${idp.clientAuth} needs client_secret`);
  return idp.clientSecret;
}

function defaultAlg(jwk: JWK): string {
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  throw new Error(`unsupported private_key_jwt key type ${String(jwk.kty)}`);
}
