// Which issuer a session's user signed in at: the `iss` of the ID token, kept with the claims
// (src/oidc/claims.ts drops protocol claims, not this one). An idps.yaml entry edited to name
// another issuer under the same name is another IdP: its old sessions vouch for the old one's
// users, whose `sub`s mean nothing at the new one. The sidecar and the BFF refuse them alike.
import { sameIssuer } from '../config/idps.ts';
import type { Session } from './types.ts';

/** False only when the session records an issuer and it is not `issuer` (trailing slashes aside). */
export function signedInAt(session: Session, issuer: string): boolean {
  const iss = session.secrets.user.claims['iss'];
  return typeof iss !== 'string' || sameIssuer(iss, issuer);
}
