// GET /auth/session: who is logged in, for the SPA. Times are epoch SECONDS (like JWT exp/iat).
// `?slide=false`: the read is no activity of the user's (an SPA polling whether it is still
// signed in), so it leaves the idle expiry where it was; by default it slides, as any request does.
import type { Context } from 'koa';
import { BadRequest } from '../errors.ts';
import { single } from './login.ts';
import { signedInAt } from '../session/issuer.ts';
import { readCookie } from './cookies.ts';
import type { BffDeps } from './state.ts';

export function sessionHandler(deps: BffDeps) {
  const { settings, store } = deps;
  return async function sessionInfo(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Vary', 'Cookie');
    const slide = single(ctx.query['slide']);
    if (slide !== undefined && slide !== 'true' && slide !== 'false') throw new BadRequest('slide must be true or false');
    const cookie = readCookie(ctx, settings.cookieName);
    const session = cookie ? await store.get(cookie, { slide: slide !== 'false' }) : null;
    // A session of an IdP idps.yaml no longer names, or names with another issuer, is refused by
    // the sidecar (load-session.ts): say so here too.
    const idp = session ? deps.idps.get(session.idp) : undefined;
    if (!session || !idp || !signedInAt(session, idp.idp.issuer)) {
      ctx.status = 401;
      ctx.body = { authenticated: false, login_url: `${settings.publicOrigin}/auth/login` };
      return;
    }
    const u = session.secrets.user;
    ctx.body = {
      authenticated: true,
      // The address as the IdP sent it, for the SPA to show: the policies' user.email is the
      // verified one only (claims.ts), as only it may stand for a person; showing a user their own
      // unverified address deceives nobody.
      user: { sub: u.sub, name: u.name ?? null, email: u.email ?? shownEmail(u.claims) ?? null, roles: u.roles, idp: u.idp },
      csrf_token: session.secrets.csrf,
      expires_at: Math.floor(session.expiresAt / 1000),
      // The store slides the idle expiry past the absolute one in a session's last idle window;
      // the session (and its Redis TTL) ends at the earlier of the two, so that is what the SPA sees.
      idle_expires_at: Math.floor(Math.min(session.idleExpiresAt, session.expiresAt) / 1000),
    };
  };
}

function shownEmail(claims: Readonly<Record<string, unknown>>): string | undefined {
  const e = claims['email'];
  return typeof e === 'string' && e !== '' ? e : undefined;
}
