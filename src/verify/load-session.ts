// Step 4: find the session. Malformed or forged cookies are refused by the store's codec without
// touching the backend; a missing session is fine on a public route and a 401 (or, for a browser
// navigation, a 302 to the login page) on a session route.
import { LoginRequired } from '../errors.ts';
import { splitCookies } from './cookies.ts';
import type { VerifyDeps, VerifyContext, VerifyMiddleware } from './state.ts';

export function loadSession(deps: VerifyDeps): VerifyMiddleware {
  const cookieName = deps.settings.cookieName;
  return async function loadSessionMw(ctx, next) {
    const s = ctx.state;
    const { session: value, rest } = splitCookies(ctx.req.headers.cookie, cookieName);
    s.upstreamCookie = rest;
    s.session = value ? (await deps.store.get(value)) ?? undefined : undefined;
    if (!s.session && s.route.auth === 'session') return requireLogin(ctx, deps);
    await next();
  };
}

export function loginUrl(deps: VerifyDeps, returnTo: string): string {
  return `${deps.settings.publicOrigin}/auth/login?return_to=${encodeURIComponent(returnTo)}`;
}

/** 401 with a login_url, or a 302 to it when the browser is navigating (a link, a reload). */
export function requireLogin(ctx: VerifyContext, deps: VerifyDeps): void {
  const url = loginUrl(deps, ctx.state.rawUri);
  if (ctx.req.headers['sec-fetch-mode'] === 'navigate') {
    ctx.state.outcome = 'login_redirect';
    ctx.status = 302;
    ctx.set('Location', url);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = '';
    return;
  }
  throw new LoginRequired(url);
}
