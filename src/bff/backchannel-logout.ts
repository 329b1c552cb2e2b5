// POST /auth/backchannel-logout: OpenID Connect Back-Channel Logout 1.0. The IdP posts a signed
// logout token; we verify it (signature against the IdP's JWKS, iss, aud, iat, typ, events, sid or
// sub, no nonce, jti not seen before) and delete the matching sessions at once.
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { BadRequest, GoldpathError, StoreUnavailable, Unavailable } from '../errors.ts';
import type { IdpClient } from '../oidc/idp-client.ts';
import { keySetUnavailable } from '../oidc/id-token-keys.ts';
import { errorSummary } from '../oidc/idp-errors.ts';
import { mediaType, readForm } from './body.ts';
import type { BffDeps } from './state.ts';
import { wellFormed } from '../strings.ts';
import { CLOCK_TOLERANCE_S, iatAheadS } from '../oidc/clock.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const BODY_LIMIT = 16 * 1024;
/** Logout tokens older than this are refused; jti markers live a bit longer than that. */
const MAX_AGE_S = 600;
/** How far the BFFs' own clocks may differ (as the store's INDEX_SLACK_MS allows for). */
export const BFF_CLOCK_SPREAD_S = 60;
// One BFF accepts a token for 720 s of its own clock (iat from a minute ahead to 660 s behind);
// BFFs whose clocks differ by d accept it, between them, for 720 + d s, and the marker the first
// one wrote must outlive the last: with only a few seconds over 720, a BFF lagging 30 s took a
// replay in its last 25 s. Plus a few seconds: jose compares whole seconds.
export const REPLAY_TTL_MS = (MAX_AGE_S + 2 * CLOCK_TOLERANCE_S + BFF_CLOCK_SPREAD_S + 5) * 1000;
/** Exported for the test of REPLAY_TTL_MS. */
export const LOGOUT_TOKEN_TIMES = { maxAgeS: MAX_AGE_S, toleranceS: CLOCK_TOLERANCE_S };
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

class InvalidLogoutToken extends BadRequest {
  /** `description`: what the IdP is answered, when more than "invalid" helps its operator. */
  constructor(readonly reason: string, description = 'the logout token is invalid') {
    super(description, 'invalid_request');
  }
}

/**
 * A logout token the IdP signed refused for its times alone (iat in the future, or older than
 * MAX_AGE_S; exp; nbf): the IdP's clock or this host's may be off. Its iat says by how much.
 */
function outOfTime(err: unknown, token: string): InvalidLogoutToken | undefined {
  if (!(err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired)) return undefined;
  if (err.reason !== 'check_failed' || !['iat', 'exp', 'nbf'].includes(err.claim)) return undefined;
  const ahead = iatAheadS(token);
  const when = ahead === undefined ? `its "${err.claim}" is out of time`
    : ahead > 0 ? `it was issued ${ahead} s in the future`
      : `it was issued ${-ahead} s ago`;
  return new InvalidLogoutToken(`clock: ${when} by this server's clock (tolerance ${CLOCK_TOLERANCE_S} s, maximum age ${MAX_AGE_S} s); ` +
    'the IdP\'s clock and this host\'s may disagree (check NTP on both), or the token came late', `the logout token is out of time: ${when} by this server's clock`);
}

export function backchannelLogoutHandler(deps: BffDeps) {
  // deps.idps is read per request, never kept: a SIGHUP reload swaps it (app.ts).
  const { store, log, metrics } = deps;

  return async function backchannelLogout(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    try {
      if (mediaType(ctx.req) !== 'application/x-www-form-urlencoded') throw new InvalidLogoutToken('content type');
      const form = await readForm(ctx.req, BODY_LIMIT);
      const token = form['logout_token'];
      if (!token) throw new InvalidLogoutToken('no logout_token');
      const { targets, claims, replayKey: jti } = await verify(token);
      let recorded = false;
      try {
        recorded = await store.markOnce('bcl-jti', jti, REPLAY_TTL_MS);
        if (!recorded) throw new InvalidLogoutToken('replayed jti');
      } catch (err) {
        if (!(err instanceof StoreUnavailable)) throw err;
        metrics.storeError(); // not thrown on: nothing else counts it
        // A store that refuses the write (a full Redis) still deletes: the logout goes ahead
        // without its replay record, as a replay could only delete again. A store that is down
        // fails the deletion below as well (503, and the IdP retries).
        log.warn({ reqId: ctx.state.requestId, err: errorSummary(err) }, 'back-channel logout: the jti could not be recorded; logging out anyway');
      }
      const sid = typeof claims['sid'] === 'string' ? claims['sid'] : undefined;
      let deleted: number;
      try {
        deleted = 0;
        // With sid and sub: the sid's sessions, and the sub's stored without a sid (store.deleteBySid).
        for (const t of targets) deleted += sid !== undefined ? await store.deleteBySid(t.name, sid, claims.sub) : await store.deleteBySub(t.name, claims.sub!);
      } catch (err) {
        // The IdP retries a logout that did not answer 200 (OIDC Back-Channel Logout 2.8): its
        // retry, with the same token, must not be refused as a replay of this failed one.
        if (recorded) await store.unmark('bcl-jti', jti).catch((e: unknown) => log.warn({ reqId: ctx.state.requestId, err: errorSummary(e) }, 'back-channel logout: could not forget the jti of a failed logout'));
        throw err;
      }
      metrics.logout('backchannel', 'success');
      log.info({ reqId: ctx.state.requestId, idp: targets.map((t) => t.name).join(','), by: sid === undefined ? 'sub' : claims.sub === undefined ? 'sid' : 'sid+sub', deleted }, 'back-channel logout');
      ctx.body = {};
    } catch (err) {
      if (err instanceof InvalidLogoutToken) {
        metrics.logout('backchannel', 'invalid');
        // A clock off refuses every logout (sessions the IdP ended live on): a warning, not news.
        if (err.reason.startsWith('clock:')) log.warn({ reqId: ctx.state.requestId, reason: err.reason }, `back-channel logout refused: the logout token is out of time by this server's clock`);
        else log.info({ reqId: ctx.state.requestId, reason: err.reason }, 'back-channel logout refused');
        throw new BadRequest(err.message, 'invalid_request');
      }
      if (err instanceof GoldpathError && err.status < 500) {
        metrics.logout('backchannel', 'invalid');
        throw new BadRequest(err.message, 'invalid_request');
      }
      // Every failure the IdP will retry (a store down, its key set unreachable, anything else),
      // so that a dashboard shows logouts that did not happen.
      metrics.logout('backchannel', 'unavailable');
      throw err;
    }
  };

  /**
   * `idp` verifies the token; `targets` are every idps.yaml entry it speaks for (the same issuer and
   * client registered under several names: the IdP sends one token, sessions exist under each name).
   */
  async function verify(token: string): Promise<{ targets: IdpClient[]; claims: JWTPayload & { jti: string }; replayKey: string }> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new InvalidLogoutToken('not a JWT');
    }
    if (typeof unverified.iss !== 'string') throw new InvalidLogoutToken('no iss');
    // The issuer picks the IdP (and so the key set); the client id must be an audience. Matched up
    // to trailing slashes either way, as discovery matches idps.yaml's issuer (as URLs: a host-only
    // `https://idp.example` is `https://idp.example/`); jwtVerify then holds iss to the IdP's own.
    const candidates = deps.idps.byIssuer(unverified.iss);
    const aud = ([] as unknown[]).concat(unverified.aud ?? []);
    const targets = candidates.filter((c) => aud.includes(c.idp.clientId));
    const idp = targets[0];
    if (!idp) throw new InvalidLogoutToken('unknown issuer or audience');

    let claims: JWTPayload;
    let typ: string | undefined;
    let issuer: string;
    try {
      const meta = (await idp.configuration()).serverMetadata();
      const check = async () => jwtVerify(token, await idp.jwks(), {
        issuer: meta.issuer,
        audience: idp.idp.clientId,
        algorithms: ASYMMETRIC,
        maxTokenAge: MAX_AGE_S,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['iat', 'jti', 'events'],
      });
      const checkedAt = performance.now();
      let result: Awaited<ReturnType<typeof check>>;
      try {
        result = await check();
      } catch (err) {
        // A key the set lacks: the IdP may have rotated in a new one since the set was fetched
        // (id-token-keys.ts, UNKNOWN_KID_REFETCH_MS). Checked once more against a new copy.
        if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !(await idp.refetchKeysForUnknownKid(checkedAt))) throw err;
        result = await check();
      }
      claims = result.payload;
      typ = result.protectedHeader.typ;
      issuer = meta.issuer;
    } catch (err) {
      if (err instanceof GoldpathError) throw err;
      // The key set's failure (as ID token checks tell it, id-token-keys.ts), not the token's: a
      // jwks_uri answering a 5xx or a maintenance page is an outage (503, the IdP retries), not
      // an invalid token (400, the session outlives the IdP's logout).
      if (keySetUnavailable(err)) {
        log.warn({ idp: idp.name, err: errorSummary(err) }, 'cannot fetch the IdP key set for a logout token');
        throw new Unavailable('the IdP key set cannot be fetched');
      }
      throw outOfTime(err, token) ?? new InvalidLogoutToken(`verification: ${(err as { code?: string }).code ?? 'failed'}`);
    }
    // `logout+jwt` as Back-Channel Logout 1.0 recommends, or the plain `JWT` that Keycloak before
    // 25 and other IdPs still send (refusing it would let no IdP logout end a session there). An ID
    // token, also a `JWT`, cannot pass for one: the events claim is required and a nonce refused.
    if (typ !== undefined && !/^((application\/)?logout\+jwt|JWT)$/i.test(typ)) throw new InvalidLogoutToken('typ');
    const events = claims['events'];
    if (!events || typeof events !== 'object' || Array.isArray(events)) throw new InvalidLogoutToken('events');
    const event = (events as Record<string, unknown>)[EVENT];
    if (!event || typeof event !== 'object' || Array.isArray(event)) throw new InvalidLogoutToken('events');
    if ('nonce' in claims) throw new InvalidLogoutToken('nonce present');
    const sid = claims['sid'];
    if (sid !== undefined && (typeof sid !== 'string' || sid === '')) throw new InvalidLogoutToken('sid');
    if (claims.sub !== undefined && (typeof claims.sub !== 'string' || claims.sub === '')) throw new InvalidLogoutToken('sub');
    if (sid === undefined && claims.sub === undefined) throw new InvalidLogoutToken('neither sid nor sub');
    if (typeof claims.jti !== 'string' || claims.jti === '' || claims.jti.length > 256) throw new InvalidLogoutToken('jti');
    // No session can hold such an id (the callback refuses them): not valid text, not a logout.
    if (![sid, claims.sub, claims.jti].every((v) => v === undefined || wellFormed(v as string))) throw new InvalidLogoutToken('not valid text');
    // The replay record is the token's own (iss, aud, jti), never an idps.yaml name: a reload or a
    // replica that reorders or renames entries (targets[0] another name) must still refuse a replay.
    const audiences = [...new Set(([] as unknown[]).concat(claims.aud).map(String))].sort();
    // Hashed: the key's length is then fixed whatever the token's aud list holds.
    const replayKey = createHash('sha256').update(JSON.stringify([issuer, audiences, claims.jti])).digest('base64url');
    return { targets, claims: claims as JWTPayload & { jti: string }, replayKey };
  }
}
