// Step 6: the access token for the route's audience, refreshed first when it is about to expire
// (the TokenProvider makes that single-flight across processes). A refresh the IdP rejects has
// already deleted the session: the user must log in again.
import type { UpstreamCredentials } from '../oidc/types.ts';
import type { Session } from '../session/types.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';
import { requireLogin } from './load-session.ts';

/** SPEC 5.6: a token is refreshed when it expires within 30 s. */
const REFRESH_SKEW_MS = 30_000;

// The provider's Bearer answer for a session object and audience stays the same until the token
// comes within the refresh window: kept with the session object (a cached session is one object
// until it is reloaded or invalidated) so the hot path does not go through the provider, and
// awaits nothing. DPoP credentials carry a fresh proof per request and are never kept.
interface Kept {
  readonly creds: UpstreamCredentials;
  readonly until: number;
}
const kept = new WeakMap<Session, Map<string, Kept>>();

function keep(session: Session, audience: string, creds: UpstreamCredentials): void {
  if (creds.dpop !== undefined) return;
  const expiresAt = session.secrets.tokens[audience]?.expiresAt;
  const until = expiresAt === undefined ? Infinity : expiresAt - REFRESH_SKEW_MS;
  let m = kept.get(session);
  if (m === undefined) kept.set(session, (m = new Map()));
  m.set(audience, { creds, until });
}

export function obtainCredentials(deps: VerifyDeps): VerifyStep {
  const origin = deps.settings.publicOrigin;
  return function obtainCredentialsStep(ctx) {
    const s = ctx.state;
    const session = s.session;
    if (!session) return;
    const audience = s.route.audience ?? '';
    const k = kept.get(session)?.get(audience);
    if (k !== undefined && k.until > Date.now()) {
      s.credentials = k.creds;
      return;
    }
    return deps.tokens.credentials(session, audience, s.method, origin + s.path).then((creds) => {
      if (!creds) {
        s.session = undefined;
        return requireLogin(ctx, deps);
      }
      // Only a token of this very session object: after a refresh the provider answers from a
      // newer session, whose token this object does not hold.
      if (creds.authorization === `Bearer ${session.secrets.tokens[audience]?.value}`) keep(session, audience, creds);
      s.credentials = creds;
    });
  };
}
