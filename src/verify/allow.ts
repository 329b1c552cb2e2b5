// Step 8: 200 with the headers Traefik copies onto the upstream request (authResponseHeaders).
// Headers we do not set are deleted by Traefik, so a client can never inject Authorization or
// X-Auth-User, and the session cookie never reaches an upstream. (X-Request-Id is added to every
// allow by run-chain.ts, which decides it for every answer.)
import { toWellFormed } from '../strings.ts';
import { memoOf } from './session-memo.ts';
import type { VerifyStep } from './state.ts';

/**
 * Visible ASCII but `%`, which would make a value read as already encoded. Spaces only inside: a
 * receiver drops spaces around a header value (RFC 9110 5.5; Traefik, Node) and around each item
 * of a list (5.6.1), so a sub ` admin` or a role `admin ` would reach the upstream as `admin`.
 */
const PLAIN = /^(?! )[\x20-\x24\x26-\x7e]*(?<! )$/;
/** The same without `,`, which separates the roles of X-Auth-Roles. */
const PLAIN_ROLE = /^(?! )[\x20-\x24\x26-\x2b\x2d-\x7e]*(?<! )$/;

/**
 * Percent-encoded as UTF-8. A lone surrogate, which no UTF-8 can hold, becomes U+FFFD first:
 * JSON lets an IdP send one (`"\ud800"` in a roles claim), and encodeURIComponent threw on it, a
 * 500 for every request of that user, each logged.
 */
function encoded(v: string): string {
  return encodeURIComponent(toWellFormed(v));
}

/**
 * Header values must be visible ASCII; anything else (a unicode sub, say) is percent-encoded, and
 * so is a value with `%` in it, so that an upstream can decode every value it gets, once.
 */
export function headerSafe(v: string): string {
  return PLAIN.test(v) ? v : encoded(v);
}

/** Comma-joined, each role encoded on its own: commas between roles stay commas. */
export function rolesHeader(roles: readonly string[]): string {
  return roles.map((r) => (PLAIN_ROLE.test(r) ? r : encoded(r))).join(',');
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
      memo.roles = rolesHeader(user.roles);
    }
    h.push('X-Auth-User', memo.user, 'X-Auth-Roles', memo.roles);
  }
  if (s.upstreamCookie !== '') h.push('Cookie', s.upstreamCookie);
  s.outcome = s.session ? 'allow' : 'allow_anonymous';
  ctx.status = 200;
};
