// How far goldpath lets an IdP's clock and its own disagree, and how it says so when they disagree
// by more. A host whose NTP broke, or a VM resumed from suspend, is off by minutes: every sign-in
// (or logout) then fails the same way, and the operator must read "clock" in the log, not a
// generic "validation failed".
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';

/**
 * Seconds of clock difference tolerated in the times of the IdP's JWTs: ID tokens' exp, nbf and
 * iat (openid-client's Configuration, and the sign-in's own iat check), logout tokens' iat. One
 * value, so that a skew the sign-in accepts is not one that makes back-channel logouts fail.
 */
export const CLOCK_TOLERANCE_S = 60;

/**
 * A JWT the IdP signed that fails only for its times by this process's clock, beyond
 * CLOCK_TOLERANCE_S: the IdP's clock or this host's is off. `aheadS`: how far the IdP's clock
 * seems ahead of ours (negative: behind), from the token's iat, when it has one.
 */
export class ClockSkew extends Error {
  readonly aheadS: number | undefined;
  readonly what: string;
  constructor(what: string, aheadS: number | undefined, cause?: unknown) {
    super(`${what} ${aheadS === undefined ? 'is out of time' : aheadS > 0 ? `was issued ${aheadS} s in the future` : `was issued ${-aheadS} s ago`} by this server's clock: ` +
      'the IdP\'s clock and this host\'s disagree (check NTP on both)', { cause });
    this.name = 'ClockSkew';
    this.what = what;
    this.aheadS = aheadS;
  }
}

/** How many whole seconds the JWT's iat lies after `now` (ms); undefined without a numeric iat. */
export function iatAheadS(jwt: string | Record<string, unknown>, now = Date.now()): number | undefined {
  let iat: unknown;
  try {
    iat = (typeof jwt === 'string' ? decodeJwt(jwt) : jwt)['iat'];
  } catch {
    return undefined;
  }
  return typeof iat === 'number' && Number.isFinite(iat) ? Math.round(iat - now / 1000) : undefined;
}

/**
 * The IdP refused a DPoP proof for its time (RFC 9449 11.1: its iat too far from the IdP's clock,
 * as oidc-provider's "DPoP proof iat is not recent enough"): this host's clock and the IdP's
 * disagree. Proofs are stamped with this process's clock, so nothing but the clocks can cure it.
 */
export function refusedForProofTime(err: unknown): boolean {
  const described = (error: unknown, description: unknown) =>
    error === 'invalid_dpop_proof' && typeof description === 'string' && /\biat\b|not recent|too old|in the future|clock|expired|not (yet )?(active|valid)/i.test(description);
  if (err instanceof oidc.ResponseBodyError) return described(err.error, err.error_description);
  if (err instanceof oidc.WWWAuthenticateChallengeError) return err.cause.some((c) => described(c.parameters['error'], c.parameters['error_description']));
  return false;
}

/** What the log says of a DPoP proof refused for its time (refusedForProofTime). */
export const PROOF_TIME_REFUSED = 'the IdP refused goldpath\'s DPoP proof for its time (iat): this host\'s clock and the IdP\'s disagree by more than the IdP allows (check NTP on both)';

/** What a user is shown when a sign-in fails for the clocks (never a token, nothing to retry). */
export function clocksDisagreeText(aheadS?: number): string {
  return 'The sign-in could not be completed: the clocks of this server and of the identity provider disagree' +
    `${aheadS === undefined ? '' : ` (by about ${Math.abs(aheadS)} s)`}. Signing in again will not help until they are set right: please tell the site's operators.`;
}

/**
 * The claims of the JWT openid-client refused for its times (OAUTH_JWT_TIMESTAMP_CHECK_FAILED: a
 * ClientError whose cause, oauth4webapi's error, has them in its own cause), to tell how far off.
 */
export function refusedClaims(err: unknown): Record<string, unknown> | undefined {
  const inner = (err as { cause?: { cause?: { claims?: unknown } } } | undefined)?.cause?.cause?.claims;
  return inner !== null && typeof inner === 'object' ? inner as Record<string, unknown> : undefined;
}

/**
 * Said after "the IdP refused goldpath's client" for a client that signs assertions
 * (private_key_jwt): they are stamped iat = nbf = now by this host's clock and live 60 s, so an IdP
 * whose clock is behind by more than its own tolerance (oidc-provider's: 15 s) or ahead by more than
 * their life refuses them, and most say only "client authentication failed". Not widened here: an
 * assertion backdated by a minute is one Keycloak refuses as "issued too far in the past" (its
 * default maximum age is 60 s), a failure on every IdP clock to spare one on a broken one.
 */
export function assertionClockHint(clientAuth: string): string {
  return clientAuth === 'private_key_jwt' ? '; or the clocks: its client assertions are stamped with this host\'s clock and live 60 s (check NTP on both)' : '';
}
