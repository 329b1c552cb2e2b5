// How a refresh grant the IdP failed is read: a refusal (not sent again for a while) or a
// rejection (the session is over). Pure functions of the error openid-client threw.
import * as oidc from 'openid-client';

/**
 * The IdP refused the grant for a reason asking again at once will not change (invalid_target,
 * invalid_scope, invalid_client...), as opposed to an outage it says will pass.
 */
export function isRefusal(err: unknown): boolean {
  const passing = ['temporarily_unavailable', 'server_error', 'slow_down', 'use_dpop_nonce'];
  // A client authentication the IdP refuses (invalid_client) is a 401 with WWW-Authenticate
  // (RFC 6749 5.2, as oidc-provider answers it): openid-client throws that as a challenge, not as
  // a body error, and it was sent again at every request of every session needing a refresh.
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    return err.status < 500 && !err.cause.some((c) => passing.includes(String(c.parameters['error'])));
  }
  return err instanceof oidc.ResponseBodyError && err.status < 500 && !passing.includes(err.error);
}

/**
 * OIDC Core 3.1.2.6's errors that ask for the user at the authorization endpoint (sign in again, a
 * second factor, consent, an account choice). Entra ID answers a refresh grant so when conditional
 * access wants the user back (interaction_required, AADSTS50076), as MSAL reads them. No grant
 * passes until the user signs in again: read as a refusal (503, sent again every 30 s), every API
 * call of the session was a 503 until its absolute end, and the SPA was never sent to sign in.
 */
const SIGN_IN_AGAIN: ReadonlySet<string> = new Set(['interaction_required', 'login_required', 'consent_required', 'account_selection_required']);

/**
 * The IdP says this refresh token is no good (expired, revoked, reused), or that only a new sign-in
 * will do (SIGN_IN_AGAIN): the session is over. Not unauthorized_client: that one is about the
 * client's registration (refusesClient), and ending every session of an IdP for an operator's
 * mistake would send all its users to sign in again.
 */
export function isRejection(err: unknown): boolean {
  return err instanceof oidc.ResponseBodyError && (err.error === 'invalid_grant' || SIGN_IN_AGAIN.has(err.error));
}
