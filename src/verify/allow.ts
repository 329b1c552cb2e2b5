// Step 8: 200 with the headers Traefik copies onto the upstream request (authResponseHeaders).
// Headers we do not set are deleted by Traefik, so a client can never inject Authorization or
// X-Auth-User, and the session cookie never reaches an upstream.
import { memoOf } from './session-memo.ts';
import type { VerifyStep } from './state.ts';

const PLAIN = /^[\x20-\x7e]*$/;

/** Header values must be visible ASCII; anything else (a unicode sub, say) is percent-encoded. */
export function headerSafe(v: string): string {
  return PLAIN.test(v) ? v : encodeURIComponent(v);
}

export const allow: VerifyStep = function allow(ctx) {
  const s = ctx.state;
  const h = ctx.out;
  if (s.credentials) {
    h.push('Authorization', s.credentials.authorization);
    if (s.credentials.dpop) h.push('DPoP', s.credentials.dpop);
  }
  if (s.session) {
    // The same for every request of a session: computed once per version of it (session-memo.ts).
    const memo = memoOf(s.session);
    if (memo.user === undefined || memo.roles === undefined) {
      const { user } = s.session.secrets;
      // The session's own copy of the sub when equal (it is kept anyway): one string, not two.
      memo.user = headerSafe(user.sub === s.session.sub ? s.session.sub : user.sub);
      memo.roles = headerSafe(user.roles.join(','));
    }
    h.push('X-Auth-User', memo.user, 'X-Auth-Roles', memo.roles);
  }
  h.push('X-Request-Id', s.requestId);
  if (s.upstreamCookie !== '') h.push('Cookie', s.upstreamCookie);
  s.outcome = s.session ? 'allow' : 'allow_anonymous';
  ctx.status = 200;
};
