// GET /auth/login?return_to=/path&idp=name → 302 to the IdP (code flow, PKCE S256, state, nonce,
// PAR per idps.yaml, DPoP key per session when configured).
import type { Context } from 'koa';
import * as oidc from 'openid-client';
import { BadRequest, GoldpathError, TooManyRequests, Unavailable } from '../errors.ts';
import { errorSummary } from '../oidc/idp-errors.ts';
import { newDpopJwk } from '../oidc/dpop.ts';
import { assertionClockHint, clocksDisagreeText, PROOF_TIME_REFUSED, refusedForProofTime } from '../oidc/clock.ts';
import { ensureBrowserCookie, readCookie, setTxCookie, txCookieValue } from './cookies.ts';
import { callbackPath } from './callback-path.ts';
import { signInAgain } from './error-page.ts';
import { safeReturnTo } from './return-to.ts';
import type { BffDeps } from './state.ts';
import { saveTransaction } from './transaction.ts';
import { IDP_NAME_MAX } from '../config/idps.ts';

const IDP_NAME = new RegExp(`^[a-z0-9_-]{1,${IDP_NAME_MAX}}$`);
/** The window GOLDPATH_MAX_LOGINS_PER_MINUTE counts in. */
const LOGIN_WINDOW_MS = 60_000;
/**
 * Characters of return_to that a sign-in counts as one more for. An ordinary transaction is ~700
 * bytes in Redis, and each 512 characters of return_to (kept up to 8 KiB: return-to.ts) add about
 * as much (sealed, base64url): the longest is ~11 KiB, 16 ordinary ones.
 */
const RETURN_TO_CHARS_PER_SIGN_IN = 512;

export function loginHandler(deps: BffDeps) {
  // deps.idps is read per request, never kept: a SIGHUP reload swaps it (app.ts).
  const { settings, store, log } = deps;

  /**
   * Anyone may start a sign-in, and each start stores a transaction for TX_TTL_MS (and may make a
   * PAR call to the IdP): past GOLDPATH_MAX_LOGINS_PER_MINUTE in a minute, starts are refused, so
   * a script cannot fill Redis (and lose or lock out real sessions) or flood the IdP through us.
   * A start counts for what its transaction holds (RETURN_TO_CHARS_PER_SIGN_IN): counted as one,
   * starts with the longest return_to made Redis hold 16 times what the limit is sized for. Never
   * for more than the whole limit, so that a lone long one can still start in a quiet minute.
   */
  async function admit(ctx: Context, returnTo: string): Promise<void> {
    const weight = Math.min(1 + Math.floor(returnTo.length / RETURN_TO_CHARS_PER_SIGN_IN), settings.loginsPerMinute);
    const count = await store.tally('login', LOGIN_WINDOW_MS, weight);
    if (count <= settings.loginsPerMinute) return;
    // Once per window, not once per refusal: a flood must not flood the log too. (The start
    // that crossed the limit, which a weight may have carried past limit + 1.)
    if (count - weight <= settings.loginsPerMinute) {
      log.warn({ reqId: ctx.state.requestId, limit: settings.loginsPerMinute }, 'sign-ins refused until the next minute: GOLDPATH_MAX_LOGINS_PER_MINUTE reached');
    }
    const retryAfterS = Math.ceil((LOGIN_WINDOW_MS - (Date.now() % LOGIN_WINDOW_MS)) / 1000);
    throw new TooManyRequests('Too many sign-ins are in progress right now. Try again in a minute.', retryAfterS);
  }

  return async function login(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const requested = single(ctx.query['idp']);
    if (requested !== undefined && !IDP_NAME.test(requested)) throw new BadRequest('unknown IdP');
    const idps = deps.idps;
    const idp = requested === undefined ? idps.default : idps.get(requested);
    if (!idp) throw new BadRequest('unknown IdP');
    const returnTo = safeReturnTo(single(ctx.query['return_to']));
    signInAgain(ctx, returnTo, requested);
    // The start is read from the store's clock, the one back-channel logouts are marked with
    // (SignIn.startedAt): this replica's clock may disagree with the replica's that gets the logout.
    // Alongside admit's tally: one more command, no extra wait.
    const [, startedAt] = await Promise.all([admit(ctx, returnTo), store.clock()]);

    // The session this browser has now is replaced when the login completes. Remembered here
    // because the SameSite=Strict cookie does not come back on the IdP's cross-site redirect.
    const current = readCookie(ctx, settings.cookieName);
    const previous = current ? await store.get(current) : null;

    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const dpopJwk = idp.idp.dpop ? await newDpopJwk() : undefined;
    const redirectUri = `${settings.publicOrigin}${callbackPath(idp.name, idps.defaultName)}`;
    let url: URL;
    try {
      url = await idp.authorizationUrl({ redirectUri, state, nonce, codeVerifier, dpopJwk });
    } catch (err) {
      if (err instanceof GoldpathError) throw err;
      if (refusedForProofTime(err)) {
        // Every sign-in fails so until a clock is mended: said as a clock, not as a registration.
        log.error({ reqId: ctx.state.requestId, idp: idp.name, err: errorSummary(err) }, `the sign-in cannot start: ${PROOF_TIME_REFUSED}`);
        throw new BadRequest(clocksDisagreeText(), 'login_failed');
      }
      // The IdP refused the pushed request (client authentication, policy): nothing the user can
      // fix; operators find the reason in the log.
      log.error({ reqId: ctx.state.requestId, idp: idp.name, redirect_uri: redirectUri, err: errorSummary(err) },
        'the IdP refused the authorization request: check the client registered at the IdP (client_id, client authentication, ' +
        'and redirect_uri registered exactly as logged here)' + assertionClockHint(idp.idp.clientAuth));
      throw new Unavailable('the identity provider refused the sign-in request');
    }
    const txCookie = txCookieValue(ctx, settings);
    await saveTransaction(store, txCookie, {
      idp: idp.name, state, nonce, codeVerifier, returnTo, redirectUri, dpopJwk, previousSessionId: previous?.id,
      startedAt,
    });
    // Only once the transaction is saved: a sign-in that could not start (the store's 503) sets
    // nothing on the browser (a 503 that did renewed the browser cookie for GOLDPATH_SESSION_MAX).
    setTxCookie(ctx, settings, txCookie);
    ensureBrowserCookie(ctx, settings);
    log.debug({ idp: idp.name, reqId: ctx.state.requestId }, 'login started');
    ctx.status = 302;
    ctx.redirect(url.href);
  };
}

/** A query parameter given once, or undefined; a repeated parameter is ambiguous → 400. */
export function single(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) throw new BadRequest('a query parameter is repeated');
  return v;
}
