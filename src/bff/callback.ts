// GET /auth/callback: finish the login. Validates the transaction (state, this browser), the
// issuer (RFC 9207, mix-up defence), the IdP's answer, code, ID token and nonce; creates a NEW
// session (no fixation), replaces the browser's previous one, sets the cookie, 302 to return_to.
// Anything wrong with the callback is a 400 page; an unreachable IdP is a 503; never a 500.
import type { Context } from 'koa';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { BadRequest, GoldpathError, SessionEnded, Unavailable } from '../errors.ts';
import { MAX_LIST_ENTRIES, MAX_USER_JSON_BYTES, mergeClaims, misspelledEmailVerified, oversized, userFromClaims } from '../oidc/claims.ts';
import { revokeInBackground, type IdpClient, type TokenResponse } from '../oidc/idp-client.ts';
import { assertionClockHint, CLOCK_TOLERANCE_S, ClockSkew, clocksDisagreeText, PROOF_TIME_REFUSED, refusedForProofTime } from '../oidc/clock.ts';
import { OUTAGE_CODES, UntrustedUserinfo, errorSummary, refusedAtUserinfo, refusesClient } from '../oidc/idp-errors.ts';
import { sendable, toAccessToken } from '../oidc/tokens.ts';
import { REPLACED, type SessionSecrets } from '../session/types.ts';
import { wellFormed } from '../strings.ts';
import { CALLBACK_PATH } from './callback-path.ts';
import { continuePage, signInAgain } from './error-page.ts';
import { TX_TTL_MS, readBrowserCookie, readCookie, readTxCookie, setSessionCookie, sha256 } from './cookies.ts';
import { single } from './login.ts';
import type { LoginOutcome } from './metrics.ts';
import type { BffDeps } from './state.ts';
import { takeTransaction, type LoginTransaction } from './transaction.ts';

/** A sign-in's refresh token that no session holds (yet), and the IdP that issued it. */
interface Unheld {
  idp?: IdpClient;
  refreshToken?: string;
  /**
   * The browser came with a session (its cookie, or the one its login transaction names) that this
   * sign-in has not replaced yet. At the same IdP session a new sign-in usually gets the same grant
   * (oidc-provider's and Keycloak's default), and an IdP that revokes per grant would end that
   * session's tokens with this one: then nothing is revoked, as before.
   */
  shared?: boolean;
  /** The browser of the sign-in (SignIn.browser: see browserOf). */
  browser?: string;
  /** The user its ID token names, once verified (undefined when it failed before). */
  sub?: string;
}

/** The IdP clients whose email_verified spelling was logged already. */
const warnedEmailVerified = new WeakSet<IdpClient>();

export function callbackHandler(deps: BffDeps) {
  // deps.idps is read per request, never kept: a SIGHUP reload swaps it (app.ts).
  const { settings, store, log, metrics } = deps;

  // Each callback is counted once, by outcome (SPEC 9): where its outcome is known, or, for one that
  // ended otherwise (a repeated query parameter, the session store away), by the error it ended in.
  const counted = new WeakSet<Context>();
  function countLogin(ctx: Context, outcome: LoginOutcome): void {
    counted.add(ctx);
    metrics.login(outcome);
  }

  async function fail(ctx: Context, description: string, detail: Record<string, unknown>, outcome: 'invalid' | 'idp_error' = 'invalid'): Promise<never> {
    countLogin(ctx, outcome);
    log.info({ reqId: ctx.state.requestId, outcome, ...detail }, 'login failed');
    throw new BadRequest(description, outcome === 'idp_error' ? 'login_failed' : 'invalid_request');
  }

  /** A sign-in response that fails validation; `err` (logged) says why. */
  function invalid(ctx: Context, idp: IdpClient, err: unknown): Promise<never> {
    return fail(ctx, 'The sign-in response did not pass validation. Start the sign-in again.', { reason: 'validation', err, idp: idp.name });
  }

  return async function callback(ctx: Context): Promise<void> {
    const unheld: Unheld = {};
    try {
      await signIn(ctx, unheld);
    } catch (err) {
      if (unheld.idp && unheld.refreshToken !== undefined && !unheld.shared) discard(ctx, unheld.idp, unheld.refreshToken, unheld.browser, unheld.sub);
      if (!counted.has(ctx)) countLogin(ctx, err instanceof GoldpathError && err.status < 500 ? 'invalid' : 'unavailable');
      throw err;
    }
  };

  async function signIn(ctx: Context, unheld: Unheld): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const state = single(ctx.query['state']);
    if (!state) return fail(ctx, 'The sign-in response is incomplete (no state). Start the sign-in again.', { reason: 'no_state' });
    if (state.length > 512) return fail(ctx, 'This sign-in is unknown (its state is not one goldpath makes). Start the sign-in again.', { reason: 'bad_state' });
    const taken = await takeTransaction(store, state, readTxCookie(ctx, settings));
    if (!taken.ok) {
      return fail(ctx, taken.reason === 'unknown'
        ? 'This sign-in is unknown, expired or was already used. Start the sign-in again.'
        : 'This sign-in has expired, or was started in another browser. Start the sign-in again.', { reason: taken.reason });
    }
    const tx = taken.tx;
    // An IdP no longer configured is left out: the link would fail at once ("unknown IdP").
    signInAgain(ctx, tx.returnTo, tx.idp !== deps.idps.defaultName && deps.idps.get(tx.idp) ? tx.idp : undefined);
    unheld.shared = tx.previousSessionId !== undefined || readCookie(ctx, settings.cookieName) !== undefined;
    const browser = unheld.browser = browserOf(ctx, tx);
    // Mix-up defence for every IdP, RFC 9207 or not (callback-path.ts): the response must arrive
    // at the redirect URI its login was sent with.
    const currentUrl = new URL(`${settings.publicOrigin}${ctx.path}${ctx.querystring ? `?${ctx.querystring}` : ''}`);
    if (`${currentUrl.origin}${currentUrl.pathname}` !== (tx.redirectUri ?? `${settings.publicOrigin}${CALLBACK_PATH}`)) {
      return fail(ctx, 'The sign-in response came back to the address of another identity provider than the one the sign-in was sent to.', { reason: 'redirect_mismatch', idp: tx.idp });
    }
    const idp = deps.idps.get(tx.idp);
    if (!idp) return fail(ctx, 'The IdP of this sign-in is no longer configured.', { reason: 'idp_gone', idp: tx.idp });

    // Mix-up defence (RFC 9207): the response must come from the IdP this login was sent to.
    const meta = (await idp.configuration()).serverMetadata();
    const iss = single(ctx.query['iss']);
    if (iss !== undefined && iss !== meta.issuer) {
      return fail(ctx, 'The sign-in response came from a different identity provider than the one the sign-in was sent to.', { reason: 'issuer_mismatch', idp: idp.name });
    }
    if (iss === undefined && meta.authorization_response_iss_parameter_supported) {
      return fail(ctx, 'The sign-in response does not name its identity provider (iss).', { reason: 'issuer_missing', idp: idp.name });
    }

    const idpError = single(ctx.query['error']);
    if (idpError !== undefined) {
      const description = single(ctx.query['error_description']);
      const shown = /^[\x20-\x7e]{0,300}$/.test(idpError) ? idpError : 'error';
      const text = description && /^[\x20-\x7e]{0,300}$/.test(description) ? `: ${description}` : '';
      return fail(ctx, `The identity provider refused the sign-in (${shown}${text}).`, { reason: 'idp_error', error: shown, idp: idp.name }, 'idp_error');
    }

    let tokens: TokenResponse;
    try {
      // From the token endpoint's answer on, its refresh token is held by nobody until the session
      // below is stored: a failure in between (exchangeCode's own checks included) revokes it.
      tokens = await idp.exchangeCode(currentUrl, tx, (issued) => {
        unheld.idp = idp;
        unheld.refreshToken = issued.refresh_token;
      });
    } catch (err) {
      return failExchange(ctx, err, idp);
    }

    const idClaims = tokens.claims();
    unheld.sub = idClaims?.sub;
    if (!idClaims) return fail(ctx, 'The identity provider returned no ID token.', { reason: 'no_id_token', idp: idp.name });
    // openid-client checks that `sub` is a string, not that it names anyone: an empty one is no
    // identity (and no session can be stored for it).
    if (idClaims.sub === '') return invalid(ctx, idp, { cause: 'the ID token "sub" is empty' });
    // A token no header can carry: every request of the session would fail upstream.
    if (!sendable(tokens.access_token)) return invalid(ctx, idp, { cause: 'the access token is not printable ASCII (RFC 6749 A.12), or holds a space no Authorization header can carry' });
    // JSON lets an IdP send a lone surrogate (`"\ud800"`), which no UTF-8 holds: the session's
    // record would read back another id than its indexes (by sub, by sid) were written under.
    const sidClaim = idClaims['sid'];
    if (!wellFormed(idClaims.sub) || (typeof sidClaim === 'string' && !wellFormed(sidClaim))) {
      return invalid(ctx, idp, { cause: 'the ID token "sub" or "sid" is not valid text' });
    }
    let userinfo: Record<string, unknown> | undefined;
    try {
      userinfo = await idp.userinfo(tokens.access_token, idClaims.sub, tx.dpopJwk);
    } catch (err) {
      if (err instanceof GoldpathError) throw countUnavailable(ctx, err);
      if (err instanceof UntrustedUserinfo) return invalid(ctx, idp, { cause: err.message, err: errorSummary(err.cause) });
      // The IdP refused the access token it has just issued (a 401 invalid_token: revoked, or its
      // session ended meanwhile; a bare 401 or 403 alike): an answer, as a refused sign-in is, not
      // an outage to wait out.
      if (refusedAtUserinfo(err)) {
        return fail(ctx, 'The identity provider refused the sign-in (it did not accept the token it had just issued). Start the sign-in again.',
          { reason: 'userinfo_refused', err: errorSummary(err), idp: idp.name }, 'idp_error');
      }
      return fail(ctx, 'The identity provider refused the user info request.', { reason: 'userinfo', err: errorSummary(err), idp: idp.name });
    }
    const claims = mergeClaims(idClaims as Record<string, unknown>, userinfo);
    // RFC 6749 5.1: an IdP may leave `scope` out when it granted exactly what was asked.
    const user = userFromClaims(idp.idp, claims, tokens.scope ?? idp.scope());
    const spelled = misspelledEmailVerified(claims);
    // Once per IdP client (a reload makes another): an IdP that spells it so does at every sign-in.
    if (spelled !== undefined && !warnedEmailVerified.has(idp)) {
      warnedEmailVerified.add(idp);
      log.warn({ reqId: ctx.state.requestId, idp: idp.name, email_verified: spelled }, 'the IdP sent email_verified as a ' + spelled +
        ', not a boolean (OpenID Connect Core 5.1): the address is not taken as verified, so the user has no email (the claim stays in user.claims)');
    }
    // Refused, not truncated: a role list cut short would change what policies decide, silently.
    const size = oversized(user);
    if (size !== undefined) {
      return fail(ctx, `Your account's profile at the identity provider is too large to sign in here (${Math.ceil(size.bytes / 1024)} KiB, ` +
        `${size.roles} roles, ${size.groups} groups, a list of ${size.longest_claim_list} in its claims; goldpath keeps at most ` +
        `${MAX_USER_JSON_BYTES / 1024} KiB and lists of ${MAX_LIST_ENTRIES}). ` +
        'Ask the operator to send fewer claims to this application.', { reason: 'claims_too_large', idp: idp.name, ...size }, 'idp_error');
    }
    const secrets: SessionSecrets = {
      user,
      csrf: randomBytes(32).toString('base64url'),
      tokens: { '': toAccessToken(tokens, Date.now(), tokens.refresh_token !== undefined) },
      refreshToken: tokens.refresh_token,
      idToken: tokens.id_token,
      dpopJwk: tx.dpopJwk,
    };

    await replacePreviousSessions(ctx, tx, idp.name);
    unheld.shared = false;
    // An empty sid names no IdP session (a back-channel logout cannot name it): none recorded.
    const sid = typeof idClaims['sid'] === 'string' && idClaims['sid'] !== '' ? idClaims['sid'] : undefined;
    let created: Awaited<ReturnType<typeof store.create>>;
    try {
      // An earlier version's transaction has no start: it began at the latest TX_TTL_MS ago.
      const login = { browser, startedAt: tx.startedAt ?? Date.now() - TX_TTL_MS };
      created = await store.create({ sub: idClaims.sub, idp: idp.name, sid, secrets, login });
    } catch (err) {
      // Revoked only when the session certainly does not exist. SessionEnded: create() deleted it
      // itself, and that delete was confirmed (a delete that failed throws StoreUnavailable
      // instead). Any other failure may have left it stored: the session write may have run though
      // it failed (a write a replica did not confirm, a reply lost to a timeout), and a failure
      // after it (the indexes, the logout marks) comes once it has. A stored session holds the token
      // (and, held by no cookie, idles out with it unrevoked: the one case left).
      if (!(err instanceof SessionEnded)) {
        unheld.refreshToken = undefined;
        throw err;
      }
      return fail(ctx, 'The identity provider ended this sign-in (a logout) before it completed. Sign in again.', { reason: 'logged_out', idp: idp.name });
    }
    unheld.refreshToken = undefined; // the session holds it now
    const { cookieValue, session } = created;
    setSessionCookie(ctx, settings, cookieValue, session.expiresAt);
    countLogin(ctx, 'success');
    log.info({ reqId: ctx.state.requestId, idp: idp.name, sub: idClaims.sub, dpop: !!tx.dpopJwk }, 'login succeeded');
    const target = `${settings.publicOrigin}${tx.returnTo}`;
    // The session cookie is SameSite=Strict, and this request belongs to a navigation another site
    // (the IdP) started: browsers withhold Strict cookies from all of it, a redirect's target too.
    // A return_to on a session route (the sidecar's 302 to sign in, for a link to /api/...) then
    // found no session and sent the browser to sign in again, in a loop until the sign-in limit's
    // 429. Where the browser says so, a page of ours moves on: a navigation it starts is same-site.
    if (ctx.get('sec-fetch-site') === 'cross-site') return continuePage(ctx, target);
    ctx.status = 302;
    ctx.redirect(target);
  }

  /**
   * The key of this browser's sign-ins (SignIn.browser): its browser cookie, which outlives a
   * sign-in; without one (a sign-in begun before the cookie existed), the transaction's binding.
   */
  function browserOf(ctx: Context, tx: LoginTransaction): string {
    const key = readBrowserCookie(ctx, settings);
    return key === undefined ? tx.binding : sha256(key);
  }

  /**
   * Revokes (RFC 7009, when the IdP has a revocation endpoint) the refresh token of a sign-in that
   * failed after its code was redeemed: no session cookie was handed out, so nobody holds it, and
   * at an IdP that keeps a grant alive per refresh token the grant would live on until it expires.
   * Best effort and in the background: the 400 or 503 page does not wait for it; bounded by the
   * IdP client's timeout.
   *
   * Not when another sign-in of the same browser at the same IdP has left a session since: one
   * begun in another tab while this one was at the IdP (this transaction names no session, and the
   * IdP's cross-site redirect withholds the Strict session cookie, so `shared` cannot see it). That
   * sign-in ran in the same IdP session and usually holds the same grant, which an IdP that revokes
   * per grant (oidc-provider, Keycloak) would end with this token: the user, just signed in, logged
   * out. Nor when the store cannot tell: revoking nothing is what a failed sign-in did before.
   * Only a session of the same user counts, when the ID token named one (`sub`): the browser cookie
   * outlives sign-ins, and another user's session in a shared browser is of another grant.
   */
  function discard(ctx: Context, idp: IdpClient, refreshToken: string, browser: string | undefined, sub: string | undefined): void {
    const reqId = ctx.state.requestId;
    // Tracked from here, not from the revocation: a shutdown between the two would drop it.
    idp.background.track((browser === undefined ? Promise.resolve(null) : store.lastSignInIdp(browser, sub)).then((held) => {
      if (held === idp.name) {
        log.info({ reqId, idp: idp.name }, 'login failed: its refresh token is not revoked (the browser signed in at this IdP meanwhile, maybe in the same grant)');
        return;
      }
      revokeInBackground(idp, refreshToken, log, reqId, 'login failed: the refresh token it was issued');
    }, (err: unknown) => {
      metrics.storeError(); // lastSignInIdp throws StoreUnavailable only; the request's own error is another
      log.warn({ reqId, idp: idp.name, err: errorSummary(err) }, 'login failed: its refresh token is not revoked (the store cannot say whether the browser has a session)');
    }));
  }

  function countUnavailable(ctx: Context, err: GoldpathError): GoldpathError {
    if (err.status >= 500) countLogin(ctx, 'unavailable');
    return err;
  }

  function failExchange(ctx: Context, err: unknown, idp: IdpClient): Promise<never> {
    const summary = errorSummary(err);
    if (err instanceof ClockSkew) {
      // Every sign-in fails so until a clock is mended: the operator's matter, said as one (once per
      // sign-in, never the token), and the user told it is no fault of theirs.
      countLogin(ctx, 'idp_error');
      log.warn({ reqId: ctx.state.requestId, reason: 'clock', idp: idp.name, idpClockAheadS: err.aheadS, toleranceS: CLOCK_TOLERANCE_S, ...(err.cause === undefined ? {} : { err: errorSummary(err.cause) }) },
        `login failed: ${err.message}`);
      throw new BadRequest(clocksDisagreeText(err.aheadS), 'login_failed');
    }
    if (refusedForProofTime(err)) {
      // The code redeemed with a DPoP proof (no PAR) the IdP refused for its iat: the clocks too.
      countLogin(ctx, 'idp_error');
      log.warn({ reqId: ctx.state.requestId, reason: 'clock', idp: idp.name, err: summary }, `login failed: ${PROOF_TIME_REFUSED}`);
      throw new BadRequest(clocksDisagreeText(), 'login_failed');
    }
    if (err instanceof oidc.AuthorizationResponseError) {
      return fail(ctx, `The identity provider refused the sign-in (${err.error}).`, { reason: 'idp_error', err: summary, idp: idp.name }, 'idp_error');
    }
    if (refusesClient(err)) {
      // The IdP does not accept goldpath's own client (a wrong or rotated secret, key or
      // certificate; a registration without this grant): every login fails until an operator
      // fixes it, and it is not the user's sign-in response that is wrong.
      countLogin(ctx, 'unavailable');
      log.error({ reqId: ctx.state.requestId, err: summary, idp: idp.name }, 'the IdP refused goldpath\'s client at its token endpoint: check its client authentication in idps.yaml and its registration at the IdP' +
        assertionClockHint(idp.idp.clientAuth));
      throw new Unavailable('the identity provider refused the sign-in; try again later');
    }
    if (err instanceof oidc.ResponseBodyError) {
      // e.g. invalid_grant: a replayed, expired or foreign code, or a PKCE mismatch.
      return fail(ctx, `The identity provider did not accept the sign-in code (${err.error}). Start the sign-in again.`, { reason: 'token_error', err: summary, idp: idp.name });
    }
    if (err instanceof GoldpathError) throw countUnavailable(ctx, err);
    if (err instanceof TypeError || (err instanceof oidc.ClientError && (OUTAGE_CODES.has(err.code ?? '') || err.code === undefined))) {
      countLogin(ctx, 'unavailable');
      log.warn({ reqId: ctx.state.requestId, err: summary, idp: idp.name }, 'IdP unreachable during login');
      throw new Unavailable('the identity provider cannot be reached; try again shortly');
    }
    // Validation failures: wrong nonce, wrong issuer or audience in the ID token, bad state, ...
    return invalid(ctx, idp, summary);
  }

  async function replacePreviousSessions(ctx: Context, tx: LoginTransaction, idpName: string): Promise<void> {
    const ids = new Set<string>();
    if (tx.previousSessionId) ids.add(tx.previousSessionId);
    const cookie = readCookie(ctx, settings.cookieName);
    if (cookie) {
      const old = await store.get(cookie);
      if (old) ids.add(old.id);
    }
    for (const id of ids) {
      // Marked first: a refresh of it that finds it gone then revokes nothing when it was at the
      // same IdP (REPLACED, whose value names the IdP of this sign-in).
      await store.putTransient(REPLACED.kind, id, idpName, REPLACED.ttlMs);
      await store.delete(id);
    }
  }
}
