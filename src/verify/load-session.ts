// Step 4: find the session. Malformed or forged cookies are refused by the store's codec without
// touching the backend; a missing session is fine on a public route and a 401 (or, for a browser
// navigation, a 302 to the login page) on a session route. In the sidecar process the store is a
// CachingSessionStore: a cached session is found synchronously, with no Redis call.
import { LoginRequired } from '../errors.ts';
import { CachingSessionStore } from '../session/cache.ts';
import type { Session } from '../session/types.ts';
import { MEMO_URI_LENGTH } from './canonical-uri.ts';
import { splitCookies } from './cookies.ts';
import { quiet } from './quiet.ts';
import { signedInAt } from '../session/issuer.ts';
import { memoOf } from './session-memo.ts';
import type { VerifyContext, VerifyDeps, VerifyPolicy, VerifyStep } from './state.ts';

/**
 * Whether the session's IdP is still configured, with the issuer that signed in its user (the `iss`
 * of the ID token, kept with the claims; a session without one, which the BFF does not make, is
 * judged by its IdP's name). Once per session and policy: reading the claims parses the secrets.
 */
export function issuedByIdpOf(session: Session, policy: VerifyPolicy): boolean {
  const issuer = policy.idps.get(session.idp);
  if (issuer === undefined) return false;
  const memo = memoOf(session);
  if (memo.issuerChecked === policy.version) return true;
  if (!signedInAt(session, issuer)) return false;
  memo.issuerChecked = policy.version;
  return true;
}

export function loadSession(deps: VerifyDeps): VerifyStep {
  const cookieName = deps.settings.cookieName;
  const store = deps.store;
  const lookup = store instanceof CachingSessionStore
    ? (v: string) => store.lookup(v)
    : (v: string) => store.get(v);
  const settle = (ctx: VerifyContext, session: Session | null): void => {
    // An IdP removed from idps.yaml (a SIGHUP) is no longer trusted: its sessions are refused at
    // once, not served until their tokens expire. Not deleted: an IdP put back brings them back.
    // So is one whose entry now names another issuer: its sessions vouch for users of the old one.
    if (session === null || !issuedByIdpOf(session, ctx.state.policy)) return withoutSession(ctx, deps);
    ctx.state.session = session;
  };
  return function loadSessionStep(ctx) {
    const { session: value, rest } = splitCookies(ctx.h.cookie, cookieName);
    ctx.state.upstreamCookie = rest;
    if (!value) return settle(ctx, null); // absent, empty, or sent twice (ambiguous)
    const found = lookup(value);
    if (found instanceof Promise) return found.then((s) => settle(ctx, s));
    settle(ctx, found);
  };
}

export function loginUrl(deps: VerifyDeps, returnTo: string): string {
  return `${deps.settings.publicOrigin}/auth/login?return_to=${encodeURIComponent(returnTo)}`;
}

// The 401 for a URI is always the same answer: one error object per (short) URI, so its rendering
// is reused (run-chain.ts). Bounded: at most LOGIN_ERRORS URIs, then the table starts over.
const LOGIN_ERRORS = 1000;
const loginErrors = new WeakMap<VerifyDeps, Map<string, LoginRequired>>();

function loginRequired(deps: VerifyDeps, rawUri: string): LoginRequired {
  if (rawUri.length > MEMO_URI_LENGTH) return quiet(() => new LoginRequired(loginUrl(deps, rawUri)));
  let table = loginErrors.get(deps);
  if (table === undefined) loginErrors.set(deps, (table = new Map()));
  let err = table.get(rawUri);
  if (err === undefined) {
    if (table.size >= LOGIN_ERRORS) table.clear();
    err = quiet(() => new LoginRequired(loginUrl(deps, rawUri)));
    table.set(rawUri, err);
  }
  return err;
}

/**
 * No usable session (none, or one that just ended): a public route goes on anonymously, a session
 * route answers as requireLogin does.
 */
export function withoutSession(ctx: VerifyContext, deps: VerifyDeps): void {
  ctx.state.session = undefined;
  if (ctx.state.route.auth === 'session') requireLogin(ctx, deps);
}

/** 401 with a login_url, or a 302 to it when the browser is navigating (a link, a reload). */
export function requireLogin(ctx: VerifyContext, deps: VerifyDeps): void {
  if (ctx.h.secFetchMode === 'navigate') {
    ctx.state.outcome = 'login_redirect';
    ctx.status = 302;
    ctx.set('Location', loginUrl(deps, ctx.state.rawUri));
    ctx.set('Cache-Control', 'no-store');
    return;
  }
  ctx.fail(loginRequired(deps, ctx.state.rawUri));
}
