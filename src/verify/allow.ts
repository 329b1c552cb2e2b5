// Step 8: 200 with the headers Traefik copies onto the upstream request (authResponseHeaders).
// Headers we do not set are deleted by Traefik, so a client can never inject Authorization or
// X-Auth-User, and the session cookie never reaches an upstream.
import type { VerifyMiddleware } from './state.ts';

const PLAIN = /^[\x20-\x7e]*$/;

/** Header values must be visible ASCII; anything else (a unicode sub, say) is percent-encoded. */
export function headerSafe(v: string): string {
  return PLAIN.test(v) ? v : encodeURIComponent(v);
}

export const allow: VerifyMiddleware = async function allow(ctx) {
  const s = ctx.state;
  const res = ctx.res;
  if (s.credentials) {
    res.setHeader('Authorization', s.credentials.authorization);
    if (s.credentials.dpop) res.setHeader('DPoP', s.credentials.dpop);
  }
  if (s.session) {
    const user = s.session.secrets.user;
    res.setHeader('X-Auth-User', headerSafe(user.sub));
    res.setHeader('X-Auth-Roles', headerSafe(user.roles.join(',')));
  }
  res.setHeader('X-Request-Id', s.requestId);
  if (s.upstreamCookie !== '') res.setHeader('Cookie', s.upstreamCookie);
  s.outcome = s.session ? 'allow' : 'allow_anonymous';
  ctx.status = 200;
  ctx.body = '';
};
