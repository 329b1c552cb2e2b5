// What openid-client leaves unchecked of an ID token it refused for its exp or nbf alone (it checks
// those first, see ID_TOKEN_TIMESTAMPS): the rest of what it checks of a refresh answer's ID token
// (iss, aud, azp, sub), checked here as it checks them. IdpClient.refresh checks the signature.
import { decodeJwt } from 'jose';

/** A claim of such an ID token that openid-client would have refused: the answer cannot be trusted. */
export class IdTokenClaimFailed extends Error {
  /** openid-client's code for the same failure: a log line reads alike whichever of us found it. */
  readonly code: string;
  readonly claim: string;
  constructor(claim: string, what: string, code = 'OAUTH_JWT_CLAIM_COMPARISON_FAILED') {
    super(`the ID token's "${claim}" claim ${what}`);
    this.name = 'IdTokenClaimFailed';
    this.code = code;
    this.claim = claim;
  }
}

/**
 * The ID token's sub, once its iss is the IdP's issuer and its aud names this client (and, when it
 * names others too, its azp does), as openid-client requires; IdTokenClaimFailed otherwise. Its
 * claims are read here, not verified: its signature must have been checked first.
 */
export function subOfOutOfTime(idToken: string, expected: { issuer: string; clientId: string }): string {
  const claims = decodeJwt(idToken);
  const { clientId } = expected;
  if (claims.iss !== expected.issuer) throw new IdTokenClaimFailed('iss', 'is not the IdP\'s issuer');
  const aud = claims.aud;
  if (Array.isArray(aud) ? !aud.includes(clientId) : aud !== clientId) throw new IdTokenClaimFailed('aud', 'does not name this client');
  // OIDC Core 3.1.3.7 (3, 4): other audiences the client cannot vouch for, unless azp names it.
  if (Array.isArray(aud) && aud.length !== 1 && claims.azp !== clientId) throw new IdTokenClaimFailed('azp', 'does not name this client, and aud names others too');
  if (typeof claims.sub !== 'string') throw new IdTokenClaimFailed('sub', 'is missing', 'OAUTH_INVALID_RESPONSE');
  return claims.sub;
}
