// Token endpoint responses → the AccessToken records kept (encrypted) in the session.
import { decodeJwt } from 'jose';
import type { AccessToken } from '../session/types.ts';
import type { TokenResponse } from './idp-client.ts';

export function toAccessToken(res: TokenResponse, now = Date.now()): AccessToken {
  const expiresIn = typeof res.expires_in === 'number' && Number.isFinite(res.expires_in) ? res.expires_in : undefined;
  return {
    value: res.access_token,
    type: res.token_type?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
    expiresAt: expiresIn === undefined ? jwtExpiry(res.access_token) : now + expiresIn * 1000,
    scope: typeof res.scope === 'string' ? res.scope : undefined,
  };
}

/**
 * `expires_in` is only RECOMMENDED (RFC 6749 section 5.1). An IdP that leaves it out but issues JWT
 * access tokens (RFC 9068) still says when they expire, in `exp`; without it such a token would be
 * sent upstream until the API refused it, and never refreshed ahead of time. Read, not verified: it
 * only schedules a refresh, and the token came from the IdP's own token endpoint. An opaque token
 * without expires_in stays undefined (see isFresh).
 */
function jwtExpiry(token: string): number | undefined {
  if (typeof token !== 'string' || token.split('.').length !== 3) return undefined;
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Usable for at least `skewMs` more (undefined expiry: the IdP did not say, assume usable). */
export function isFresh(t: AccessToken | undefined, skewMs: number, now = Date.now()): t is AccessToken {
  return t !== undefined && (t.expiresAt === undefined || t.expiresAt - now > skewMs);
}
