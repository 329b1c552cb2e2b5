// Token endpoint responses → the AccessToken records kept (encrypted) in the session.
import type { AccessToken } from '../session/types.ts';
import type { TokenResponse } from './idp-client.ts';

export function toAccessToken(res: TokenResponse, now = Date.now()): AccessToken {
  const expiresIn = typeof res.expires_in === 'number' && Number.isFinite(res.expires_in) ? res.expires_in : undefined;
  return {
    value: res.access_token,
    type: res.token_type?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
    expiresAt: expiresIn === undefined ? undefined : now + expiresIn * 1000,
    scope: typeof res.scope === 'string' ? res.scope : undefined,
  };
}

/** Usable for at least `skewMs` more (undefined expiry: the IdP did not say, assume usable). */
export function isFresh(t: AccessToken | undefined, skewMs: number, now = Date.now()): t is AccessToken {
  return t !== undefined && (t.expiresAt === undefined || t.expiresAt - now > skewMs);
}
