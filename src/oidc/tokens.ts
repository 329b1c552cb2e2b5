// Token endpoint responses → the AccessToken records kept (encrypted) in the session.
import { decodeJwt } from 'jose';
import type { AudienceConfig } from '../config/types.ts';
import type { AccessToken } from '../session/types.ts';
import type { TokenResponse } from './idp-client.ts';

/**
 * How long an access token whose expiry the IdP does not say (no expires_in, not a JWT with exp)
 * is taken to live when a refresh token can replace it: Keycloak's default, the shortest common
 * one. Unsaid, it was never refreshed: once the IdP expired it, every API call of the session was
 * refused upstream until the session ended (hours). Without a refresh token it stays unsaid: a
 * token taken to have expired would end the session (token-refresh.ts), and it may well be valid.
 */
export const ASSUMED_LIFETIME_MS = 5 * 60_000;

/** `refreshable`: the session holds a refresh token (see ASSUMED_LIFETIME_MS). */
export function toAccessToken(res: TokenResponse, now = Date.now(), refreshable = false): AccessToken {
  // Finite in ms too: an absurd expires_in (1e306, a number openid-client takes) or JWT exp/iat
  // made Infinity, which JSON stores as null, and a session with a null time fails the shape check
  // (secrets-shape.ts): it read as absent right after it was written. Such a time is "not said".
  // Positive too: a token "expired" the moment it is issued (expires_in 0 or less) was refreshed
  // again at every request, each refresh answered the same: one refresh grant per API call, for
  // as long as the session lived. Such a lifetime says nothing usable: the JWT's exp, or the
  // assumed lifetime, decide instead.
  const expiresIn = typeof res.expires_in === 'number' && res.expires_in > 0 && Number.isFinite(res.expires_in * 1000 + now) ? res.expires_in : undefined;
  const jwt = expiresIn === undefined ? jwtTimes(res.access_token) : undefined;
  const assumed = expiresIn === undefined && jwt === undefined && refreshable;
  const lifetimeMs = expiresIn !== undefined ? expiresIn * 1000 : assumed ? ASSUMED_LIFETIME_MS : jwt?.lifetimeMs;
  return {
    value: res.access_token,
    type: res.token_type?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
    expiresAt: expiresIn !== undefined ? now + expiresIn * 1000 : assumed ? now + ASSUMED_LIFETIME_MS : jwt?.expiresAt,
    scope: typeof res.scope === 'string' ? res.scope : undefined,
    ...(lifetimeMs !== undefined && lifetimeMs >= 0 ? { lifetimeMs } : {}),
  };
}

/**
 * `expires_in` is only RECOMMENDED (RFC 6749 section 5.1). An IdP that leaves it out but issues JWT
 * access tokens (RFC 9068) still says when they expire, in `exp`; without it such a token would be
 * sent upstream until the API refused it, and never refreshed ahead of time. Read, not verified: it
 * only schedules a refresh, and the token came from the IdP's own token endpoint. An opaque token
 * without expires_in stays undefined (see isFresh).
 */
function jwtTimes(token: string): { expiresAt: number | undefined; lifetimeMs: number | undefined } | undefined {
  if (typeof token !== 'string' || token.split('.').length !== 3) return undefined;
  try {
    const { exp, iat } = decodeJwt(token);
    if (typeof exp !== 'number' || !Number.isFinite(exp * 1000)) return undefined;
    const lifetimeMs = typeof iat === 'number' ? (exp - iat) * 1000 : NaN;
    return { expiresAt: exp * 1000, lifetimeMs: Number.isFinite(lifetimeMs) ? lifetimeMs : undefined };
  } catch {
    return undefined;
  }
}

/**
 * How long before its expiry a token is refreshed: `skewMs` (SPEC 5.6: 30 s), but half its life
 * (at least 1 s) for a token issued for less than twice that. An IdP that issues 10 s tokens would
 * otherwise have every one of them "expire within 30 s" from its issue: each request would be
 * one more refresh grant (one more rotated refresh token), and none would be kept for the next.
 */
export function refreshWindow(t: AccessToken, skewMs: number): number {
  const life = t.lifetimeMs;
  return life === undefined ? skewMs : Math.min(skewMs, Math.max(life / 2, 1_000));
}

/** Usable for longer than its refresh window (undefined expiry: the IdP did not say, assume usable). */
export function isFresh(t: AccessToken | undefined, skewMs: number, now = Date.now()): t is AccessToken {
  return t !== undefined && (t.expiresAt === undefined || t.expiresAt - now > refreshWindow(t, skewMs));
}

/**
 * Whether an access token can be sent as it is in an Authorization header: RFC 6749 A.12's VSCHAR
 * (printable ASCII) but the space. Node refuses to write a header holding anything else (a 500),
 * and an upstream would read latin1 bytes as something else than the IdP meant. A space VSCHAR
 * allows, but no Bearer (RFC 6750 2.1) or DPoP (RFC 9449 7.1) credential holds one: a trailing
 * one is trimmed on the way (the upstream got another token than the IdP issued, and a DPoP
 * proof's ath no longer matched it), an inner one makes the header read as something else.
 */
export function sendable(value: string): boolean {
  return /^[\x21-\x7e]+$/.test(value);
}

/**
 * Why the IdP's `token` cannot be sent for a session bound to `dpopJwk` (or not), or undefined when
 * it can: the token provider's 503 (token-provider.ts), and the refresh's reason not to send it to
 * userinfo either (refreshed-user.ts). A bearer token of a DPoP-bound session (a refresh the IdP
 * answered with one) is never sent, whoever to: anyone holding it could replay it.
 */
export function unsendable(token: Pick<AccessToken, 'type' | 'value'>, dpopBound: boolean, idpName: string): string | undefined {
  if (token.type !== 'DPoP' && dpopBound) return `the IdP "${idpName}" issued a bearer token to a DPoP-bound session (dpop: true): it is not sent`;
  if (!sendable(token.value)) return `the IdP "${idpName}" issued an access token that is not printable ASCII without spaces (RFC 6749 A.12, RFC 6750 2.1): it cannot be sent in a header`;
  // The IdP called the token DPoP-bound although this session has no key (it sent no proof): an
  // IdP's misstep, not ours. Nothing can be sent with it.
  if (token.type === 'DPoP' && !dpopBound) return `the IdP "${idpName}" issued a DPoP token to a session without a DPoP key (is dpop set in idps.yaml as the IdP expects?)`;
  return undefined;
}

/**
 * What an audience's token is asked for (RFC 8707 `resource` and the scopes), as AccessToken.grant
 * records it; undefined for the login token. Scopes in any order are the same grant.
 */
export function grantOf(audience: AudienceConfig | undefined): string | undefined {
  return audience === undefined ? undefined : `${audience.resource}\n${[...audience.scopes].sort().join(' ')}`;
}
