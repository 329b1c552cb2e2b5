// POST /auth/logout: CSRF-checked; deletes the session, revokes the refresh token (RFC 7009) when
// the IdP supports it, clears the cookie, then sends the browser to the IdP's end-session endpoint
// (302 for a form navigation, {"logout_url"} for fetch/XHR); to / instead while the IdP is known
// to take no connections (oidc/reachability.ts): its URL would end on the browser's error page.
import type { Context } from 'koa';
import { signedInAt } from '../session/issuer.ts';
import { BadRequest, CsrfError, GoldpathError, StoreUnavailable } from '../errors.ts';
import { revokeInBackground, type IdpClient } from '../oidc/idp-client.ts';
import { errorSummary } from '../oidc/idp-errors.ts';
import { within } from '../within.ts';
import type { Session } from '../session/types.ts';
import { mediaType, readRawBody, parseForm, parseMultipart } from './body.ts';
import { clearBrowserCookie, clearSessionCookie, cookieValues, readCookie, safeEqual } from './cookies.ts';
import type { BffDeps } from './state.ts';

const BODY_LIMIT = 4 * 1024;
/** How many session cookies of one logout request are read at most (amongDuplicates). */
const MAX_DUPLICATES = 4;

/**
 * How long a logout waits for a revocation before answering, ms. A healthy IdP answers in a few ms
 * (and one that refuses connections at once): the outcome is then known before the browser is sent
 * anywhere. A slow or silent one would hold the user's logout for the IdP's timeout (5 s, twice
 * with a rotated token); past this the revocation goes on in the background (idp.background, which
 * a graceful shutdown waits for).
 */
const REVOCATION_WAIT_MS = 2_000;

export function logoutHandler(deps: BffDeps) {
  // deps.config and deps.idps are read per request, never kept: a SIGHUP reload swaps them (app.ts).
  const { settings, store, log, metrics } = deps;
  const trusted = (origin: string) => origin === settings.publicOrigin || deps.config.routes.cors.allowedOrigins.includes(origin);

  return async function logout(ctx: Context): Promise<void> {
    try {
      await logOut(ctx);
    } catch (err) {
      // The store could not read or delete the session: the user is not logged out (503, and the
      // SPA may try again). Counted as logins are, so a dashboard shows logouts that failed.
      if (err instanceof StoreUnavailable) metrics.logout('rp', 'unavailable');
      // Refused (CSRF token, origin, body): a surge of them is what the `invalid` series is for.
      else if (err instanceof GoldpathError && err.status < 500) metrics.logout('rp', 'invalid');
      throw err;
    }
  };

  async function logOut(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const type = mediaType(ctx.req);
    // The token in X-CSRF-Token makes the body irrelevant: it is not read, so an SPA's fetch with
    // a FormData or text body logs out as one without a body does (it was a 400, the session kept).
    const fields = ctx.get('x-csrf-token') === '' ? await readBody(ctx, type) : {};
    const token = ctx.get('x-csrf-token') || fields['csrf_token'] || '';
    const cookie = readCookie(ctx, settings.cookieName);
    const session = cookie ? await store.get(cookie) : await amongDuplicates(ctx, token);

    const origin = ctx.get('origin');
    // A same-origin form POST from a page with Referrer-Policy: no-referrer (what Traefik's
    // security-headers give the SPA) carries Origin: null (Fetch standard; Chromium does); the
    // browser's Sec-Fetch-Site then says where it really came from.
    const site = ctx.get('sec-fetch-site');
    const opaqueSameOrigin = origin === 'null' && site === 'same-origin';
    // Fetch Metadata, when the browser sends it, as the sidecar reads it for every API call (SPEC
    // 5 step 5): same-origin, or same-site from an allowed origin. A cross-site request holding
    // the CSRF token should not exist; if it does, it is not a logout the user asked for here.
    const crossSite = site !== '' && site !== 'same-origin' && !(site === 'same-site' && origin !== '' && origin !== 'null' && trusted(origin));
    const foreign = (origin !== '' && !trusted(origin) && !opaqueSameOrigin) || crossSite;
    // Refused with or without a session: a cross-site form POST does not carry the SameSite=Strict
    // cookie (so no session is found), yet it is a top-level navigation, whose response browsers
    // let clear that cookie: answering it with the Set-Cookie below would log the user out.
    if (foreign) throw new CsrfError('the request comes from another origin');
    // Missing: a 403 with or without a session (SPEC 6), as no page of ours posts a logout without
    // the token it was given. Present without a session (it expired, or cannot be read), nothing
    // to compare it with: the logout goes on and clears the cookie.
    if (!token) throw new CsrfError('missing CSRF token');
    if (session && !safeEqual(token, session.secrets.csrf)) throw new CsrfError();

    let logoutUrl = '/';
    if (session) logoutUrl = await endSession(ctx, session) ?? '/';
    else if (cookie) await endUnreadable(ctx, cookie);
    clearSessionCookie(ctx, settings);
    clearBrowserCookie(ctx, settings);
    metrics.logout('rp', 'success');

    const mode = ctx.get('sec-fetch-mode');
    // SPEC 6's form post; a multipart one (enctype="multipart/form-data") only when the browser
    // says it navigates: without Fetch Metadata it is as likely a fetch of a FormData, which a
    // redirect to the IdP would break.
    const navigation = (type === 'application/x-www-form-urlencoded' && (mode === 'navigate' || (mode === '' && !/json/i.test(ctx.get('accept')))))
      || (type === 'multipart/form-data' && mode === 'navigate');
    if (navigation) {
      ctx.status = 302;
      ctx.redirect(logoutUrl);
    } else {
      ctx.body = { logout_url: logoutUrl };
    }
  }

  /**
   * The session cookie sent more than once (one planted under a longer Path, on plain-http
   * localhost; a __Host- cookie cannot be): readCookie finds no session in that, as the sidecar
   * does, and the logout answered success and cleared the cookie, yet left the user's session live
   * (its refresh token and its IdP session too) for whoever holds a copy of that cookie. The one
   * among them whose CSRF token the request holds is the user's; when none is, the first found, so
   * that a wrong token is a 403 as with one cookie. A few are read at most: a forged one costs no
   * store read.
   */
  async function amongDuplicates(ctx: Context, token: string): Promise<Session | null> {
    const values = cookieValues(ctx, settings.cookieName, MAX_DUPLICATES);
    if (values.length < 2) return null;
    const found = (await Promise.all(values.map((v) => store.get(v)))).filter((s): s is Session => s !== null);
    return found.find((s) => token !== '' && safeEqual(token, s.secrets.csrf)) ?? found[0] ?? null;
  }

  /**
   * A genuine cookie (valid MAC) whose session reads as absent may still name a stored session
   * that this version cannot use (another version's secrets, see session/secrets-shape.ts): the
   * user asked to log out, so it goes too, or it would come back under the version that wrote it.
   * Without a CSRF token to check (it is in those secrets): the cookie is SameSite=Strict, so a
   * cross-site POST never carries it, and a foreign Origin was refused above.
   */
  async function endUnreadable(ctx: Context, cookie: string): Promise<void> {
    const id = store.idOf(cookie);
    if (id !== null && await store.delete(id)) log.info({ reqId: ctx.state.requestId }, 'logout of a session this version cannot read');
  }

  /** RFC 7009, best effort: the session dies anyway. Waited for REVOCATION_WAIT_MS at most. */
  async function revoke(ctx: Context, idp: IdpClient, refreshToken: string): Promise<void> {
    const task = revokeInBackground(idp, refreshToken, log, ctx.state.requestId, 'the logged-out session\'s refresh token');
    // Past the bound it goes on in the background (tracked, logged when it settles).
    await within(task, REVOCATION_WAIT_MS, () => new Error('revocation still running')).catch(() => undefined);
  }

  /** Delete, revoke, and build the end-session URL. Revocation is best effort: the session dies anyway. */
  async function endSession(ctx: Context, session: Session): Promise<string | undefined> {
    // Only at the IdP that signed the user in: an entry given another issuer since (a reload) is
    // another IdP, which must not be sent this session's refresh token or ID token.
    const named = deps.idps.get(session.idp);
    const idp = named && signedInAt(session, named.idp.issuer) ? named : undefined;
    const rt = session.secrets.refreshToken;
    // Deleted first, then revoked: every sidecar refuses the session from the delete on. Revoked
    // first, it was served while the IdP's revocation endpoint took its time (up to
    // REVOCATION_WAIT_MS), and for good when the BFF died meanwhile. A BFF that dies after the
    // delete leaves a grant nobody holds (the refresh token was only in the session).
    // The refresh token the session holds as it is deleted is revoked too, when a refresh rotated
    // it since the read above: at an IdP that revokes per token (not per grant), the grant would
    // live on under it, held by nobody. (A refresh that saves after the delete finds no session, and
    // revokes the token it obtained: oidc/token-refresh.ts.) No lock is taken: a logout never waits on a refresh.
    const held = (await store.take(session.id))?.refreshToken;
    if (idp) {
      const tokens = [rt, held].filter((t, i, all): t is string => t !== undefined && all.indexOf(t) === i);
      await Promise.all(tokens.map((t) => revoke(ctx, idp, t)));
    }
    log.info({ reqId: ctx.state.requestId, idp: session.idp, sub: session.sub }, 'logout');
    if (!idp) return undefined;
    if (idp.reachability.unreachable()) {
      // Its end-session page would be the browser's connection error: the user, signed out here,
      // could not tell. The IdP's own session outlives this logout (its back-channel logout, or
      // the user's next visit there, ends it).
      log.warn({ reqId: ctx.state.requestId, idp: idp.name }, 'logout: the IdP takes no connections now: the browser is sent to / instead of its end-session endpoint');
      return undefined;
    }
    try {
      return await idp.endSessionUrl(session.secrets.idToken, `${settings.publicOrigin}/`);
    } catch (err) {
      log.warn({ reqId: ctx.state.requestId, idp: idp.name, err: errorSummary(err) }, 'no end-session URL: IdP metadata unavailable');
      return undefined;
    }
  }
}

async function readBody(ctx: Context, type: string): Promise<Record<string, string>> {
  const raw = await readRawBody(ctx.req, BODY_LIMIT);
  if (raw.length === 0) return {};
  const text = raw.toString('utf8');
  if (type === 'application/x-www-form-urlencoded') return parseForm(text);
  if (type === 'multipart/form-data') return parseMultipart(text, ctx.get('content-type'));
  if (type === 'application/json') {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new BadRequest('the body is not valid JSON');
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BadRequest('the JSON body must be an object');
    const t = (v as Record<string, unknown>)['csrf_token'];
    if (t !== undefined && typeof t !== 'string') throw new BadRequest('csrf_token must be a string');
    return t === undefined ? {} : { csrf_token: t };
  }
  throw new BadRequest('expected an application/x-www-form-urlencoded, multipart/form-data or application/json body');
}
