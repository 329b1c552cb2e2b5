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
    // The same for every request of a session: computed once per secrets object (session-memo.ts).
    const memo = memoOf(s.session.secrets);
    const { user } = s.session.secrets;
    h.push('X-Auth-User', memo.user ??= headerSafe(user.sub), 'X-Auth-Roles', memo.roles ??= headerSafe(user.roles.join(',')));
  }
  h.push('X-Request-Id', s.requestId);
  if (s.upstreamCookie !== '') h.push('Cookie', s.upstreamCookie);
  s.outcome = s.session ? 'allow' : 'allow_anonymous';
  ctx.status = 200;
};
