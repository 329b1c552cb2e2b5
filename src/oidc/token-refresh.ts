// The refresh of a session's token for an audience (the design, and its timings, at the top of
// token-provider.ts): one Flight per session and audience in this process, the store's lock
// across processes, then, under the lock, the grant at the IdP and the write of its result.
import { setTimeout } from 'node:timers';
import { Unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import { FloodGate } from '../http/flood-gate.ts';
import { REPLACED, type Session, type SessionSecrets, type SessionStore } from '../session/types.ts';
import { withGrant, type AudienceTokens } from './audience-tokens.ts';
import { revokeInBackground, type IdpClient } from './idp-client.ts';
import { errorSummary, RefreshOutOfTime, RefreshTokenOnly, refusesClient, UntrustedRefresh } from './idp-errors.ts';
import { Flight } from './refresh-flight.ts';
import { assertionClockHint, iatAheadS, PROOF_TIME_REFUSED, refusedClaims, refusedForProofTime } from './clock.ts';
import type { RefreshFloor } from './refresh-floor.ts';
import { isRefusal, isRejection } from './refresh-failures.ts';
import type { IdpRegistry } from './registry.ts';
import { toAccessToken } from './tokens.ts';
import { oversized } from './claims.ts';
import { userAfterRefresh } from './refreshed-user.ts';
import type { RequestScope } from './types.ts';

/** Every outcome a refresh can have: the metrics of both processes start each at 0. */
export const REFRESH_OUTCOMES = ['success', 'rejected', 'error', 'waited'] as const;
export type RefreshOutcome = typeof REFRESH_OUTCOMES[number];
/** How long a grant the IdP refused (not rejected: see isRejection) is not sent again for a session. */
export const REFUSED_RETRY_MS = 30_000;

/** What a token provider's refreshes share with it: its options, and its tokens' bookkeeping. */
export interface RefreshContext {
  idps: IdpRegistry;
  store: SessionStore;
  log: Logger;
  /** Called once per refresh attempt (TokenProviderOptions.onRefresh). */
  report: (o: RefreshOutcome) => void;
  /** Given each error the refresher caught and did not throw; counts the store's (TokenProviderOptions.onStoreError). */
  storeError: (err: unknown) => void;
  waitMs: number;
  lockTtl: number;
  grantFor: AudienceTokens['grantFor'];
  tokenFor: AudienceTokens['tokenFor'];
  floorIfDue: RefreshFloor['floorIfDue'];
}

/** What a refresh under the session's lock works with (see refreshLocked). */
interface Locked {
  idp: IdpClient;
  /** When the lock expires (performance.now()). */
  lockExpiresAt: number;
  /** Given a save still being retried after the refresh has answered: the lock is kept until it is over. */
  hold: (saving: Promise<unknown>) => void;
  flight: Flight;
}

export interface Refresher {
  /** The session's refresh for `audience` in this process: the one under way, or a new one. */
  refresh(session: Session, audience: string, scope: RequestScope | undefined): Flight;
  /** Sessions whose refresh the IdP rejected here (see `ended` in createRefresher). */
  readonly ended: ReadonlySet<string>;
}

export function createRefresher(ctx: RefreshContext): Refresher {
  const { idps, store, log, report, storeError, waitMs, lockTtl, grantFor, tokenFor, floorIfDue } = ctx;
  // In-process coalescing: concurrent callers in this process share one refresh.
  const inflight = new Map<string, Flight>();
  /**
   * Per IdP and message: a failed refresh every session meets (an IdP that is away, a clock that is
   * off) is logged one line a second, saying how many more it stands for (as the 503s they end in are).
   */
  const failureGates = new Map<string, FloodGate<Record<string, unknown>>>();
  const warnFailure = (idpName: string, line: Record<string, unknown>, message: string): void => {
    const key = `${idpName}\n${message}`;
    let gate = failureGates.get(key);
    if (gate === undefined) {
      failureGates.set(key, (gate = new FloodGate<Record<string, unknown>>(1_000,
        (last, also) => log.warn({ ...last, ...(also > 0 ? { alsoFailed: also } : {}) }, message))));
    }
    const held = gate.pass(performance.now(), line);
    if (held !== undefined) log.warn({ ...line, ...(held > 0 ? { alsoFailed: held } : {}) }, message);
  };
  /** IdP and audience pairs already logged as impossible without a refresh token (once each). */
  const warnedNoRefreshToken = new Set<string>();
  /**
   * Session and audience pairs whose last grant the IdP refused with an error other than a
   * rejection (invalid_target, invalid_scope, invalid_client...: a configuration problem, never
   * cured by asking again at once), until when they are not sent again. Without it every request
   * of such a session would be one more grant at the IdP, and one more log line. (oidc-provider
   * spends the refresh token on an invalid_target refusal: asking again would end the session besides.)
   */
  const refused = new Map<string, number>();
  /**
   * Sessions whose refresh the IdP rejected here, whose deletion may still be under way (it is not
   * waited for, see refreshLocked): a request meanwhile must not be answered with their token
   * after a short wait. Bounded as `refused` is; a session id never comes back.
   */
  const ended = new Set<string>();
  /** Failures already logged where they happened: a refresh that ends unheard does not log them twice. */
  const logged = new WeakSet<object>();
  const loggedAlready = <E>(err: E): E => {
    if (typeof err === 'object' && err !== null) logged.add(err);
    return err;
  };

  function refresh(session: Session, audience: string, scope: RequestScope | undefined): Flight {
    const key = `${session.id}\n${audience}`;
    const until = refused.get(key);
    if (until !== undefined) {
      if (until > performance.now()) throw new Unavailable('the identity provider refused to issue this token');
      refused.delete(key);
    }
    let flight = inflight.get(key);
    if (flight === undefined) {
      const f = new Flight(scope, (me) => singleFlight(session, audience, me));
      inflight.set(key, f);
      // A shutdown waits for it too (bounded): it outlives the request of a refresh ahead of time,
      // and has a rotated refresh token to save, or to revoke when its session ended meanwhile.
      idps.get(session.idp)?.background.track(f.done);
      f.done.then(() => inflight.delete(key), (err: unknown) => {
        inflight.delete(key);
        // Nobody heard it (a refresh ahead of time that outlived its request's short wait, or
        // whose request was answered 503): its failure would otherwise go unsaid, and uncounted.
        if (f.heard) return;
        storeError(err);
        if (!logged.has(err as object)) {
          log.warn({ reqId: f.scope?.requestId, err: errorSummary(err) }, 'token refresh failed (in the background)');
        }
      });
      flight = f;
    }
    return flight;
  }

  /** True when `current` holds a token for `audience` that differs from the stale one and is unexpired. */
  function refreshedElsewhere(current: Session, audience: string, stale: string | undefined): boolean {
    const t = tokenFor(current, audience);
    return t !== undefined && t.value !== stale && (t.expiresAt === undefined || t.expiresAt > Date.now());
  }

  async function singleFlight(session: Session, audience: string, flight: Flight): Promise<Session | null> {
    const lockName = `refresh:${session.id}`;
    const stale = tokenFor(session, audience)?.value;
    // Durations on the monotonic clock (as the lock's TTL in Redis is): a wall clock stepped back
    // (NTP) would stretch them, and a refresh could go on after its lock had expired.
    const deadline = performance.now() + waitMs;
    // Discovery (up to one IdP timeout) before the lock, never under it: see the top of token-provider.ts.
    // The key set too, for a grant: fetched after it, a key set that cannot be had costs the
    // session the refresh token the IdP has just rotated (nothing of that answer is kept). Not for
    // an IdP whose refresh answers carry no ID token: its key set being away stops nothing.
    try {
      const idp = idps.get(session.idp);
      await idp?.configuration();
      if (session.secrets.refreshToken !== undefined && idp?.idTokenOnRefresh(audience)) await idp.keySetReady();
    } catch (err) {
      report('error');
      throw loggedAlready(err); // IdpClient logs a discovery or a key set fetch that failed
    }
    let delay = 15;
    for (;;) {
      const lockedAt = performance.now();
      const lock = await flight.store(store.tryLock(lockName, lockTtl));
      if (lock) {
        let held: Promise<unknown> = Promise.resolve();
        try {
          // Re-read under the lock: the refresh token may have rotated since `session` was loaded.
          const current = await flight.store(store.getById(session.id));
          if (!current) return null;
          if (refreshedElsewhere(current, audience, stale)) {
            report('waited');
            return current;
          }
          return await refreshLocked(current, audience, lockedAt + lockTtl, (saving) => { held = saving; }, flight);
        } finally {
          // Not awaited: the answer does not depend on it, and a store that stalls would add its
          // timeout to a 503 that SPEC wants within 1 s. A lock not released expires. Released
          // only once a save still being retried (persist) is over: until then the refresh token
          // in the store may be one the IdP has already rotated away. A shutdown waits for both
          // (bounded): that save holds the refresh token the IdP rotated to.
          const release = held.then(() => store.unlock(lockName, lock))
            .catch((err: unknown) => {
              storeError(err);
              log.warn({ reqId: flight.scope?.requestId, err: errorSummary(err) }, 'refresh lock release failed');
            });
          idps.get(session.idp)?.background.track(release);
        }
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
      const current = await flight.store(store.getById(session.id));
      if (!current) return null; // the winner's refresh was rejected (or the user logged out)
      if (refreshedElsewhere(current, audience, stale)) {
        report('waited');
        return current;
      }
      if (performance.now() > deadline) {
        report('error');
        throw new Unavailable('a token refresh in another process did not finish in time');
      }
    }
  }

  /**
   * Refreshes under the lock, which expires at `lockExpiresAt` (performance.now()). `hold` is given a
   * save still being retried after this call has answered: the lock is kept until it is over.
   */
  async function refreshLocked(current: Session, audience: string, lockExpiresAt: number, hold: (saving: Promise<unknown>) => void, flight: Flight): Promise<Session | null> {
    const reqId = flight.scope?.requestId;
    const idp = idps.get(current.idp);
    const rt = current.secrets.refreshToken;
    const existing = tokenFor(current, audience);
    if (!idp || !rt) {
      // Nothing to refresh with: an unexpired token is still usable, otherwise log in again.
      if (existing && (existing.expiresAt === undefined || existing.expiresAt > Date.now())) return current;
      if (idp && audience !== '') {
        // A login gives the login token only; another audience's comes from the refresh token. The
        // IdP issued none (offline_access not asked for, or not granted): a new login would not
        // help, and deleting the session would send the user round a login loop. An operator's fix.
        if (!warnedNoRefreshToken.has(`${idp.name}\n${audience}`)) {
          warnedNoRefreshToken.add(`${idp.name}\n${audience}`);
          log.error({ reqId, idp: idp.name, audience }, 'the IdP issued no refresh token, so no token for this audience can be obtained: add offline_access to the IdP\'s scopes in idps.yaml');
        }
        report('error');
        throw loggedAlready(new Unavailable('no token for this API can be obtained from the identity provider'));
      }
      log.info({ reqId, idp: current.idp, reason: idp ? 'no refresh token' : 'unknown IdP' }, 'session cannot be refreshed: deleted');
      await flight.store(store.delete(current.id));
      report('rejected');
      return null;
    }
    // The grant, then the write (≤ 1 s), must end while the lock holds.
    if (performance.now() + idp.refreshBudgetMs + 1_000 > lockExpiresAt) {
      log.warn({ reqId, idp: idp.name }, 'token refresh not sent: the refresh lock would expire before the IdP must answer');
      report('error');
      throw loggedAlready(new Unavailable('the token refresh could not start in time'));
    }
    const locked: Locked = { idp, lockExpiresAt, hold, flight };
    let res;
    try {
      // An ID token's key set is waited for only while the write (≤ 1 s) can still follow under the lock.
      res = await idp.refresh(rt, audience, current.secrets.dpopJwk, lockExpiresAt - 1_000);
    } catch (err) {
      if (isRejection(err)) {
        log.info({ reqId, idp: idp.name, err: errorSummary(err) }, 'refresh rejected by the IdP: session deleted');
        return end(current, hold, reqId);
      }
      if (err instanceof UntrustedRefresh) {
        // Ended at once, its grant revoked: not a 503 the next request sends the grant again after.
        // With rotation `rt` is spent (that retry is invalid_grant, and an IdP with reuse detection
        // revokes the grant for it): the session cannot go on whatever we do. Without rotation,
        // whoever forged the answer on the way from the token endpoint has seen `rt` in the request
        // and holds a live grant, which only a revocation takes away. `rt` is revoked, the one token
        // known to be the IdP's (an IdP that revokes per grant, as oidc-provider, ends the rotated
        // one with it), and the one the answer carried when known (an IdP that revokes per token).
        log.warn({ reqId, idp: idp.name, err: errorSummary(err.cause) }, 'token refresh failed: the IdP\'s answer carries an ID token that fails verification; session deleted, its refresh token revoked');
        discard(idp, rt, reqId);
        if (err.refreshToken !== undefined && err.refreshToken !== rt) discard(idp, err.refreshToken, reqId);
        return end(current, hold, reqId);
      }
      if (err instanceof RefreshTokenOnly) return refreshTokenOnly(current, audience, err, locked);
      if (isRefusal(err)) refuse(`${current.id}\n${audience}`);
      if (refusesClient(err)) {
        log.error({ reqId, idp: idp.name, err: errorSummary(err) }, 'the IdP refused goldpath\'s client at its token endpoint: no token is refreshed until an operator ' +
          'fixes its client authentication in idps.yaml or its registration at the IdP (the refresh_token grant)' + assertionClockHint(idp.idp.clientAuth));
      } else {
        // Every session whose token needs a refresh meets an IdP that is away.
        warnFailure(idp.name, { reqId, idp: idp.name, err: errorSummary(err) }, refusedForProofTime(err)
          ? `token refresh failed: ${PROOF_TIME_REFUSED}; the session and its refresh token stay, and the grant is not sent again for ${REFUSED_RETRY_MS / 1000} s`
          : 'token refresh failed');
      }
      report('error');
      throw loggedAlready(err instanceof Unavailable ? err : new Unavailable('the IdP could not refresh the token', { cause: err }));
    }
    // The ID token's iss, aud, exp and nbf were checked by openid-client, its signature by
    // IdpClient.refresh; its sub is the session's, or nothing of the answer is kept (forAnotherUser).
    const idClaims = res.id_token !== undefined ? res.claims() : undefined;
    if (idClaims !== undefined && idClaims.sub !== current.sub) return forAnotherUser(current, res.refresh_token ?? rt, locked);
    // As at sign-in, for the login token: userinfo asked with the new access token, the write
    // (≤ 1 s) still to follow under the lock; any failure of it keeps the user as the ID token makes it.
    const token = withGrant(toAccessToken(res, Date.now(), true), grantFor(current.idp, audience));
    const user = await userAfterRefresh({ idp, current, audience, token, idClaims: idClaims as Record<string, unknown> | undefined,
      by: lockExpiresAt - 1_000, reqId, warn: (line, message) => warnFailure(idp.name, line, message) });
    // As at sign-in: a profile grown past what a session keeps is refused, never cut short (a role
    // list cut short would change what policies decide). The user signs in again, and is told why.
    const size = oversized(user);
    if (size !== undefined) {
      log.warn({ reqId, idp: idp.name, ...size }, 'the claims of a refresh (ID token, userinfo) make the user\'s profile too large to keep: session deleted');
      discard(idp, res.refresh_token ?? rt, reqId);
      return end(current, hold, reqId);
    }
    const secrets: SessionSecrets = {
      ...current.secrets,
      user,
      tokens: { ...current.secrets.tokens, [audience]: token },
      refreshToken: res.refresh_token ?? rt,
      idToken: res.id_token ?? current.secrets.idToken,
    };
    if (!(await save(current, secrets, res.refresh_token, locked))) return null;
    report('success');
    const refreshed = { ...current, secrets, version: current.version + 1 };
    floorIfDue(refreshed, audience, secrets.tokens[audience]!, idp.name, reqId);
    log.debug({ reqId, idp: idp.name, audience: audience || '(login)', rotated: res.refresh_token !== undefined }, 'token refreshed');
    return refreshed;
  }

  /**
   * Saves a refresh's `secrets` under its lock: true once saved; false when the session is gone (it
   * is not resurrected, and `obtained`, the refresh token the answer brought, is revoked). A store
   * that fails throws, the save going on in the background (persist) while the lock holds.
   */
  async function save(current: Session, secrets: SessionSecrets, obtained: string | undefined, locked: Locked): Promise<boolean> {
    const { idp, lockExpiresAt, hold, flight } = locked;
    const reqId = flight.scope?.requestId;
    // The session is gone when the save comes (a logout, a back-channel logout or its expiry since
    // it was read): a rotated refresh token is then held by nobody. Whoever deleted the session
    // revoked (logout) the one it held, not this one, which at an IdP that revokes per token (not
    // per grant) would keep the grant alive. Only on the store's answer "no such session": a save
    // that failed may have landed, and the session may hold the token.
    // Not when a new sign-in of the same browser at the same IdP replaced it (REPLACED): that
    // session may hold the same grant, which an IdP that revokes per grant would end with this
    // token. (One at another IdP holds no grant of this one's: revoked as any.) Nor when the store
    // cannot tell: revoking nothing is what a refresh did before.
    const gone = () => {
      if (obtained === undefined || obtained === current.secrets.refreshToken) return;
      // Tracked from the read on: the 401 goes out before it is answered, and a shutdown right
      // after must still wait for the revocation it leads to.
      idp.background.track(store.takeTransient(REPLACED.kind, current.id).then(
        (replaced) => { if (replaced !== current.idp) discard(idp, obtained, reqId); },
        storeError, // nothing revoked: see above
      ));
    };
    let saved: boolean;
    try {
      saved = await flight.store(store.updateSecrets(current.id, secrets));
    } catch (err) {
      // The IdP may have rotated the refresh token: the one in the store is spent, and a session
      // left with it ends at its next refresh. This request answers 503 now (within 1 s, as for
      // any store failure); the save goes on in the background while the lock holds (a failover
      // takes seconds), and the lock is kept until it is over.
      hold(persist(current.id, secrets, lockExpiresAt, reqId, gone));
      report('error');
      throw err;
    }
    if (!saved) {
      gone();
      report('rejected'); // deleted meanwhile (logout): never resurrect it
    }
    return saved;
  }

  /**
   * OIDC Core 12.2: an ID token in a refresh answer must name the user the session is for. One
   * that names another (an IdP that mixed up its grants) says the answer may be someone else's:
   * nothing of it is kept or served, and the session ends. `obtained` is the refresh token the
   * session would have held from now on: nobody holds it after this.
   */
  function forAnotherUser(current: Session, obtained: string, locked: Locked): null {
    const reqId = locked.flight.scope?.requestId;
    log.warn({ reqId, idp: locked.idp.name }, 'the IdP answered a refresh with an ID token for another user: session deleted');
    discard(locked.idp, obtained, reqId);
    return end(current, locked.hold, reqId);
  }

  /**
   * A refresh answer openid-client refused that is the IdP's own all the same (RefreshTokenOnly):
   * an ID token whose exp or nbf alone fails by this process's clock (a clock off at either end
   * fails every answer so until it is mended, which is no reason to end sessions), or a 200 whose
   * shape it refused (the IdP's bug). Either way an IdP that rotates has spent the refresh token
   * sent, and a session left with it would end at its next refresh. So the refresh token the answer
   * carries is saved, alone (its access and ID tokens are neither kept nor served), as a refresh's
   * secrets are; the request is a 503, and the grant is not sent again for REFUSED_RETRY_MS: every
   * request until it is mended would spend one. One whose ID token is for another user ends the session.
   */
  async function refreshTokenOnly(current: Session, audience: string, err: RefreshTokenOnly, locked: Locked): Promise<null> {
    const { idp, flight } = locked;
    const rt = current.secrets.refreshToken!;
    if (err.sub !== undefined && err.sub !== current.sub) return forAnotherUser(current, err.refreshToken ?? rt, locked);
    refuse(`${current.id}\n${audience}`);
    const obtained = err.refreshToken;
    const rotated = obtained !== undefined && obtained !== rt;
    const outOfTime = err instanceof RefreshOutOfTime;
    // How far the IdP's clock seems off, by the ID token's iat (openid-client's error holds its claims).
    const claims = outOfTime ? refusedClaims(err.cause) : undefined;
    const idpClockAheadS = claims === undefined ? undefined : iatAheadS(claims);
    warnFailure(idp.name, { reqId: flight.scope?.requestId, idp: idp.name, rotated, ...(idpClockAheadS === undefined ? {} : { idpClockAheadS }), err: errorSummary(err.cause) }, outOfTime
      ? 'token refresh failed: the ID token the IdP answered with has an exp or nbf that fails by this process\'s clock (a clock off here or at the IdP: check NTP on both); ' +
        'the refresh token it carries is kept, nothing else of the answer'
      : 'token refresh failed: the IdP answered with a success that is not a valid token response (its bug: see the error); ' +
        'the refresh token it carries is kept, nothing else of the answer');
    if (rotated && !(await save(current, { ...current.secrets, refreshToken: obtained }, obtained, locked))) return null;
    report('error');
    throw loggedAlready(new Unavailable(outOfTime
      ? 'the identity provider\'s answer carries an ID token that is out of time by this server\'s clock'
      : 'the identity provider answered the token refresh with an invalid token response'));
  }

  /**
   * Ends a session whose refresh the IdP rejected (or answered for someone else): this request is a
   * 401 even when the store cannot delete it now (an error here would let fresh() serve the
   * unexpired token of an ended session). Nor is the deletion waited for: a caller whose short wait
   * (AHEAD_WAIT_MS) ran out while a slow store deleted would be answered with that token. The lock
   * is kept until it is done. Left in the store, its next refresh is rejected again and deletes it then.
   */
  function end(current: Session, hold: (saving: Promise<unknown>) => void, reqId: string | undefined): null {
    report('rejected');
    if (ended.size >= 10_000) ended.clear();
    ended.add(current.id);
    hold(store.delete(current.id).catch((e: unknown) => {
      storeError(e);
      log.warn({ reqId, err: errorSummary(e) }, 'refresh rejected, but the session could not be deleted yet');
    }));
    return null;
  }

  /**
   * Retries a save of refreshed secrets until it lands, the session is gone (then `gone`), or the
   * lock ends. Given up, nothing is revoked: a write that failed may have landed all the same.
   */
  async function persist(id: string, secrets: SessionSecrets, lockExpiresAt: number, reqId: string | undefined, gone: () => void): Promise<void> {
    let delay = 100;
    // Each try may take the store's timeout (1 s): the last one must end while the lock holds.
    while (performance.now() + delay + 1_000 < lockExpiresAt) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1_000);
      try {
        if (await store.updateSecrets(id, secrets)) log.info({ reqId }, 'refreshed tokens saved after a session store failure');
        else gone();
        return;
      } catch (err) {
        storeError(err); // each retry is a store call of its own that failed
        // The store is still away: try again.
      }
    }
    log.error({ reqId }, 'refreshed tokens could not be saved: the session ends when the IdP refuses its previous refresh token');
  }

  /**
   * The refresh token a refresh leaves to a session that has ended, which nobody will hold or revoke
   * after it: revoked in the background (the request's 401 does not wait for it, nor does the lock).
   */
  function discard(idp: IdpClient, refreshToken: string, reqId: string | undefined): void {
    revokeInBackground(idp, refreshToken, log, reqId, 'token refresh: the refresh token of a session that ended');
  }

  function refuse(key: string): void {
    // Bounded: a store of refusals must not grow with every session an IdP misconfiguration hits.
    if (refused.size >= 10_000) refused.clear();
    // performance.now(): after a wall clock stepped back an hour, Date.now() held it for that hour.
    refused.set(key, performance.now() + REFUSED_RETRY_MS);
  }

  return { refresh, ended };
}
