// Step 8: 200 with the headers Traefik copies onto the upstream request (authResponseHeaders).
// Headers we do not set are deleted by Traefik, so a client can never inject Authorization or
// X-Auth-User, and the session cookie never reaches an upstream.
import type { SessionUser } from '../session/types.ts';
import type { VerifyStep } from './state.ts';

const PLAIN = /^[\x20-\x7e]*$/;

/** Header values must be visible ASCII; anything else (a unicode sub, say) is percent-encoded. */
export function headerSafe(v: string): string {
  return PLAIN.test(v) ? v : encodeURIComponent(v);
}

// X-Auth-User and X-Auth-Roles are the same for every request of a session: computed once per
// user object (a cached session hands out the same object until it is reloaded).
const identity = new WeakMap<SessionUser, readonly [string, string]>();
function identityHeaders(user: SessionUser): readonly [string, string] {
  let h = identity.get(user);
  if (h === undefined) {
    h = [headerSafe(user.sub), headerSafe(user.roles.join(','))];
    identity.set(user, h);
  }
  return h;
}

export const allow: VerifyStep = function allow(ctx) {
  const s = ctx.state;
  const h = ctx.out;
  if (s.credentials) {
    h.push('Authorization', s.credentials.authorization);
    if (s.credentials.dpop) h.push('DPoP', s.credentials.dpop);
  }
  if (s.session) {
    const [user, roles] = identityHeaders(s.session.secrets.user);
    h.push('X-Auth-User', user, 'X-Auth-Roles', roles);
  }
  h.push('X-Request-Id', s.requestId);
  if (s.upstreamCookie !== '') h.push('Cookie', s.upstreamCookie);
  s.outcome = s.session ? 'allow' : 'allow_anonymous';
  ctx.status = 200;
};
