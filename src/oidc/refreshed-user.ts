// The user a refresh of the login token makes of a session: as sign-in makes it (callback.ts), the
// ID token's claims under userinfo's, so that what the IdP took away (a role only userinfo carries,
// a claim it now leaves out) reaches the policies with the request that refreshed, not 12 h later
// at the next sign-in. One userinfo round trip per refresh of the login token.
import { decodeJwt } from 'jose';
import type { Session, SessionUser } from '../session/types.ts';
import { mergeClaims, refreshedUser, userFromClaims } from './claims.ts';
import type { IdpClient } from './idp-client.ts';
import { errorSummary } from './idp-errors.ts';
import { unsendable } from './tokens.ts';
import type { AccessToken } from '../session/types.ts';

export interface RefreshedUserInput {
  idp: IdpClient;
  /** The session as read under the refresh lock. */
  current: Session;
  audience: string;
  /** The refresh answer's access token, as the session keeps it (tokens.ts toAccessToken). */
  token: Pick<AccessToken, 'type' | 'value'>;
  /** The refresh answer's ID token claims (verified, `sub` the session's), if it carried one. */
  idClaims: Record<string, unknown> | undefined;
  /** performance.now() by which userinfo must have answered (the lock's end less the write). */
  by: number;
  /** Logs a failure (no token or claim value in `line`): one line per IdP a second (see token-refresh.ts). */
  warn: (line: Record<string, unknown>, message: string) => void;
  reqId: string | undefined;
}

const FALLBACK = 'token refresh: the IdP\'s userinfo could not be had, so the user is rebuilt from the ID token alone ' +
  '(claims it leaves out stay as they were until the next refresh); the refreshed tokens are kept';

/**
 * The user a refresh leaves the session with. For the login token of an IdP with a userinfo
 * endpoint: mergeClaims(ID token, userinfo), the ID token being the answer's or, when it carries
 * none, the one the session holds (verified when it came); the scopes stay the session's. Anything
 * else, and any failure of userinfo (an outage, a timeout, a refusal, a `sub` that is not the
 * session's, too little lock time left), is the user as before (refreshedUser): a userinfo failure
 * neither ends the session nor costs it the tokens the refresh obtained. Never throws.
 */
export async function userAfterRefresh(p: RefreshedUserInput): Promise<SessionUser> {
  const { idp, current, idClaims } = p;
  const user = current.secrets.user;
  const fallback = idClaims !== undefined ? refreshedUser(idp.idp, user, idClaims) : user;
  // An audience's token (RFC 8707) is not for userinfo; no endpoint, nothing to ask (as at sign-in).
  if (p.audience !== '' || !idp.metadata?.userinfo_endpoint) return fallback;
  // A token the token provider will not send (503, and it says why): not sent here either.
  if (unsendable(p.token, current.secrets.dpopJwk !== undefined, idp.name) !== undefined) return fallback;
  const failed = (reason: Record<string, unknown>): SessionUser => {
    p.warn({ reqId: p.reqId, idp: idp.name, ...reason }, FALLBACK);
    return fallback;
  };
  let base: Record<string, unknown>;
  try {
    base = idClaims ?? decodeJwt(current.secrets.idToken ?? '');
  } catch {
    return failed({ reason: 'the session holds no ID token to build the user on' });
  }
  if (base['sub'] !== current.sub) return failed({ reason: 'the session\'s ID token is for another sub' });
  let userinfo: Record<string, unknown> | undefined;
  try {
    userinfo = await idp.userinfo(p.token.value, current.sub, current.secrets.dpopJwk, p.by);
  } catch (err) {
    return failed({ reason: 'userinfo failed', err: errorSummary(err) });
  }
  if (userinfo === undefined) return fallback;
  return userFromClaims(idp.idp, mergeClaims(base, userinfo), user.scopes.join(' '));
}
