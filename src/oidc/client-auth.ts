// How the BFF authenticates to an IdP's token, PAR and revocation endpoints (idps.yaml client_auth).
import { readFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import type { JWK } from 'jose';
import { importClientKey } from '../config/jwk.ts';
import type { IdpConfig } from '../config/types.ts';

export async function clientAuthFor(idp: IdpConfig): Promise<oidc.ClientAuth> {
  switch (idp.clientAuth) {
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(requireSecret(idp));
    case 'client_secret_post':
      return oidc.ClientSecretPost(requireSecret(idp));
    case 'private_key_jwt': {
      if (!idp.privateKey) throw new Error(`idps.${idp.name}: private_key_jwt needs private_key`);
      const jwk = readJwk(idp.privateKey);
      // The same import `goldpath check` and startup vetted the key with (config/jwk.ts).
      const { key, alg } = await importClientKey(jwk);
      // openid-client names an Ed25519 key's signatures `Ed25519` (RFC 9864); the key file, check
      // and most IdPs (Keycloak, a key registered with "alg": "EdDSA") say EdDSA: sign as the key says.
      const asKeySays: oidc.ModifyAssertionOptions = {
        [oidc.modifyAssertion]: (header) => {
          if (header.alg === 'Ed25519' && alg === 'EdDSA') header.alg = 'EdDSA';
        },
      };
      return oidc.PrivateKeyJwt(jwk.kid ? { key, kid: jwk.kid } : key, asKeySays);
    }
    case 'tls_client_auth':
      // The certificate is presented by the TLS layer (see fetch.ts); the body carries client_id.
      return oidc.TlsClientAuth();
  }
}

/**
 * The key file as JSON. Its error names the file, never what it holds: JSON.parse's quotes the
 * text it fails on (all of it when short), and this one reaches the log and a reload's rejection.
 */
function readJwk(path: string): JWK {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as JWK;
  } catch {
    throw new Error(`${path} is not a JSON Web Key file (expected a private JWK as JSON)`);
  }
}

function requireSecret(idp: IdpConfig): string {
  if (!idp.clientSecret) throw new Error(`idps.${idp.name}: ${idp.clientAuth} needs client_secret`);
  return idp.clientSecret;
}
