// TokenProvider (src/oidc/types.ts): upstream credentials for a session, refreshing first when the
// token expires within 30 s. Refreshes of one session are single-flight across every process that
// shares the store: the winner of store.tryLock(`refresh:<id>`) calls the IdP and writes the new
// secrets; the others poll the store until they see them. Safe under refresh-token rotation: a
// refresh token is only ever sent by the lock holder, after re-reading the latest one, and only
// while the lock will outlast the grant: a lock that expired under a grant still in flight would
// let another process send the same token (the IdP then refuses one of them, and with reuse
// detection revokes the whole grant). So the IdP's metadata and key set are loaded before the lock
// is taken, and a holder whose lock has less time left than a grant can take sends nothing (503).
//
// Time (SPEC 5: 503 within 1 s when the store is away). A refresh is a run of store calls (tryLock,
// a read under the lock, updateSecrets), each bounded alone (redis-backend.ts), and an IdP grant.
// It runs on its own (a Flight), under its lock, to its end, whoever waits for it; the requests
// that need it wait as follows:
//   - ahead of time (the token is valid but within the refresh window): at most AHEAD_WAIT_MS
//     (and never past the request's store budget, nor past what the token has left less
//     USABLE_MARGIN_MS), then they are answered with the token they have, which still works; the
//     refresh finishes in the background and the next request finds its token. Its failures are
//     logged (never an unhandled rejection). A token with less than the margin left counts as
//     expired.
//   - the token has expired: nothing can be sent without the refresh, so the request waits for
//     it, but only for as long as the refresh spends waiting on the STORE, up to what is left of
//     the request's store budget (STORE_BUDGET_MS since it started): then StoreUnavailable (503).
//     Time at the IdP, and waiting for another process's refresh (its lock), count against waitMs
//     (5 s) only: then 503, while the grant runs on to its own timeout (IdpClient.refreshBudgetMs,
//     12 s) and its rotated refresh token is saved. Cut off at 5 s, as it was, a grant the IdP had
//     completed left us the spent refresh token, and the next refresh ended the session.
import { clearTimeout, setTimeout } from 'node:timers';
import { StoreUnavailable, Unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import { FloodGate } from '../http/flood-gate.ts';
import { REPLACED, type Session, type SessionSecrets, type SessionStore } from '../session/types.ts';
import * as oidc from 'openid-client';
import { dpopProof } from './dpop.ts';
import { revokeInBackground, type IdpClient } from './idp-client.ts';
import { errorSummary, refusesClient, UntrustedRefresh } from './idp-errors.ts';
import type { IdpRegistry } from './registry.ts';
import { grantOf, isFresh, refreshWindow, sendable, toAccessToken } from './tokens.ts';
import type { AccessToken } from '../session/types.ts';
import type { RequestScope, TokenProvider, UpstreamCredentials } from './types.ts';

/** Every outcome a refresh can have: the metrics of both processes start each at 0. */
export const REFRESH_OUTCOMES = ['success', 'rejected', 'error', 'waited'] as const;
export type RefreshOutcome = typeof REFRESH_OUTCOMES[number];
/** How long a grant the IdP refused (not rejected: see isRejection) is not sent again for a session. */
export const REFUSED_RETRY_MS = 30_000;
/**
 * How long a request waits on the store, from its start, before a 503: SPEC 5's 1 s less room for
 * the rest of the chain (the PDP, the answer). The session load has its own, shorter bound
 * (session/store.ts DEFAULT_LOAD_DEADLINE_MS); a refresh gets what the load left.
 */
export const STORE_BUDGET_MS = 850;
/**
 * How long a request whose token is still valid waits for its refresh ahead of time: enough for a
 * healthy store and IdP (a few ms each), short enough to never matter for the 1 s.
 */
export const AHEAD_WAIT_MS = 150;
/**
 * What a token must have left to be served instead of its successor: an upstream checks it a moment
 * later (a few ms, more across a slow network). Less than this, it counts as expired.
 */
const USABLE_MARGIN_MS = 1_000;
/**
 * How long a token that a refresh here returned already due (within its refresh window by this
 * process's clock: expires_in 1 or 2 s, a JWT whose exp has passed because the IdP's clock is
 * behind ours by more than the token's life) is served as it is, before this process asks again
 * for that session and audience. Asked at every request, each grant answered alike, it was one
 * grant (one rotated refresh token, one IdP round trip) per API call for the life of the session.
 * 10 s: at most 6 grants a minute per session and process, whatever the request rate; short
 * enough that an IdP whose clock or lifetimes are mended is followed within seconds, and that a
 * 1-2 s token is replaced about as often as a 20 s one normally is (SPEC 5.6 refreshes 30 s
 * ahead). The upstream judges the token by its own clock, usually the IdP's, by which it is valid.
 */
export const REFRESH_FLOOR_MS = 10_000;
/** A token a refresh returns due within this is taken as arrived due (see arrivedDue). */
const ARRIVES_DUE_MS = 2_000;
/** The "tokens arrive already due" warning: one line per IdP per window, saying how many it stands for. */
const DUE_LOG_WINDOW_MS = 10 * 60_000;

/** Whether a token (present or not, expiring at `expiresAt`) still works long enough to be served. */
function usable(has: boolean, expiresAt: number | undefined): boolean {
  return has && (expiresAt === undefined || expiresAt - Date.now() > USABLE_MARGIN_MS);
}

export interface TokenProviderOptions {
  idps: IdpRegistry;
  store: SessionStore;
  log: Logger;
  /** Called once per refresh attempt (metrics). 'waited' = another caller's refresh was used. */
  onRefresh?: (outcome: RefreshOutcome) => void;
  /** Refresh when the token expires within this many ms. Default 30 s. */
  refreshSkewMs?: number;
  /**
   * How long a caller with an expired token waits for a refresh, its own process's or another's,
   * before giving up (503; the refresh goes on). Default 5 s.
   */
  waitMs?: number;
  /** See STORE_BUDGET_MS (tests). */
  storeBudgetMs?: number;
  /** See AHEAD_WAIT_MS (tests). */
  aheadWaitMs?: number;
  /**
   * Lock lifetime. Default 15 s: a read under the lock (≤ 1 s), the grant (≤ 12 s,
   * IdpClient.refreshBudgetMs), the write (≤ 1 s), and room to spare.
   */
  lockTtlMs?: number;
  /** See REFRESH_FLOOR_MS (tests). */
  refreshFloorMs?: number;
}

export interface OidcTokenProvider extends TokenProvider {
  /**
   * Makes sure the session has a fresh token for `audience`; returns the (possibly updated)
   * session, or null when the IdP rejected the refresh and the session was deleted.
   */
  fresh(session: Session, audience: string, scope?: RequestScope): Promise<Session | null>;
  /** The IdPs it refreshes at (a reload hands them on to the registry that replaces them). */
  readonly idps: IdpRegistry;
}

/** A caller waiting for a Flight, with what is left of its store budget (ms). */
interface Waiter {
  left: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly expire: () => void;
}

/**
 * One refresh of one session and audience in this process, running to its end whoever waits for
 * it, and metering the time it spends waiting on the store against each waiting caller's budget.
 */
class Flight {
  readonly done: Promise<Session | null>;
  /** The request that started it (its log lines carry that request's id). */
  readonly scope: RequestScope | undefined;
  /** performance.now() when the store call in progress began; undefined between store calls. */
  #since: number | undefined;
  readonly #waiters = new Set<Waiter>();
  /** Callers waiting without a store budget (within()). */
  #others = 0;

  constructor(scope: RequestScope | undefined, run: (f: Flight) => Promise<Session | null>) {
    this.scope = scope;
    this.done = run(this);
  }

  /** Whether a caller is still waiting to hear how it ends (or it ends unheard: logged then). */
  get heard(): boolean {
    return this.#waiters.size > 0 || this.#others > 0;
  }

  /** A store call of the refresh: its time counts against every waiting caller's budget. */
  async store<T>(call: Promise<T>): Promise<T> {
    this.#since = performance.now();
    for (const w of this.#waiters) this.#arm(w);
    try {
      return await call;
    } finally {
      const spent = performance.now() - this.#since;
      this.#since = undefined;
      for (const w of this.#waiters) {
        clearTimeout(w.timer);
        w.left -= spent;
      }
    }
  }

  #arm(w: Waiter): void {
    w.timer = setTimeout(w.expire, Math.max(0, w.left));
    w.timer.unref();
  }

  /**
   * Its outcome, or StoreUnavailable once it has kept this caller waiting on the store for
   * `budgetMs`. The refresh itself goes on either way.
   */
  wait(budgetMs: number, wallMs: number): Promise<Session | null> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        left: budgetMs,
        timer: undefined,
        expire: () => {
          clearTimeout(wall);
          this.#waiters.delete(w);
          reject(new StoreUnavailable(new Error('a token refresh waited on the session store beyond the request\'s budget')));
        },
      };
      this.#waiters.add(w);
      if (this.#since !== undefined) this.#arm(w);
      const leave = () => {
        clearTimeout(w.timer);
        clearTimeout(wall);
        return this.#waiters.delete(w);
      };
      // And in all, however the time goes (a slow IdP): the refresh goes on, and saves what it gets.
      const wall = setTimeout(() => {
        if (leave()) reject(new Unavailable('the token refresh is taking long: it goes on, try again shortly'));
      }, wallMs);
      wall.unref();
      this.done.then((s) => { if (leave()) resolve(s); }, (err: unknown) => { if (leave()) reject(err); });
    });
  }

  /** Its outcome if it comes within `ms` (wall time); `otherwise` after that, the refresh going on. */
  within(ms: number, otherwise: Session): Promise<Session | null> {
    return new Promise((resolve, reject) => {
      let waiting = true;
      this.#others++;
      const leave = () => {
        if (!waiting) return false;
        waiting = false;
        this.#others--;
        clearTimeout(timer);
        return true;
      };
      const timer = setTimeout(() => { if (leave()) resolve(otherwise); }, ms);
      timer.unref();
      this.done.then((s) => { if (leave()) resolve(s); }, (err: unknown) => { if (leave()) reject(err); });
    });
  }
}

/** `t` recording the grant it was asked for (an audience's token), as AccessToken.grant says. */
function withGrant(t: AccessToken, grant: string | undefined): AccessToken {
  return grant === undefined ? t : { ...t, grant };
}

export function createTokenProvider(opts: TokenProviderOptions): OidcTokenProvider {
  const { idps, store, log } = opts;
  const skew = opts.refreshSkewMs ?? 30_000;
  const waitMs = opts.waitMs ?? 5_000;
  const lockTtl = opts.lockTtlMs ?? 15_000;
  const storeBudget = opts.storeBudgetMs ?? STORE_BUDGET_MS;
  const aheadWait = opts.aheadWaitMs ?? AHEAD_WAIT_MS;
  const floorMs = opts.refreshFloorMs ?? REFRESH_FLOOR_MS;
  const report = (o: RefreshOutcome) => opts.onRefresh?.(o);
  // In-process coalescing: concurrent callers in this process share one refresh.
  const inflight = new Map<string, Flight>();
  /** Per IdP name: its failed refresh grants are logged one line a second (the IdP is away). */
  const failureGates = new Map<string, FloodGate<Record<string, unknown>>>();
  const failureGate = (name: string): FloodGate<Record<string, unknown>> => {
    let gate = failureGates.get(name);
    if (gate === undefined) {
      failureGates.set(name, (gate = new FloodGate<Record<string, unknown>>(1_000,
        (line, also) => log.warn({ ...line, ...(also > 0 ? { alsoFailed: also } : {}) }, 'token refresh failed'))));
    }
    return gate;
  };
  /** IdP and audience pairs already logged as impossible without a refresh token (once each). */
  const warnedNoRefreshToken = new Set<string>();
  /**
   * Session and audience pairs whose last grant the IdP refused with an error other than a
   * rejection (invalid_target, invalid_scope, invalid_client...: a configuration problem, never
   * cured by asking again at once), until when they are not sent again. Without it every request
   * of such a session would be one more grant at the IdP, and one more log line. (oidc-provider
   * spends the refresh token on such a refusal: asking again would end the session besides.)
   */
  const refused = new Map<string, number>();
  /**
   * Sessions whose refresh the IdP rejected here, whose deletion may still be under way (it is not
   * waited for, see refreshLocked): a request meanwhile must not be answered with their token
   * after a short wait. Bounded as `refused` is; a session id never comes back.
   */
  const ended = new Set<string>();
  /**
   * Session and audience pairs whose last refresh here returned a token already due (see
   * REFRESH_FLOOR_MS): the session's version that refresh wrote, and until when
   * (performance.now()) no refresh is sent from here. Bounded as `refused` is. Empty unless an
   * IdP answers so: the lookup then costs nothing.
   */
  const floors = new Map<string, { readonly version: number; readonly until: number }>();
  /** Per IdP name: its tokens arriving due are said once a window (DUE_LOG_WINDOW_MS). */
  const dueGates = new Map<string, FloodGate>();
  /** Failures already logged where they happened: a refresh that ends unheard does not log them twice. */
  const logged = new WeakSet<object>();
  const loggedAlready = <E>(err: E): E => {
    if (typeof err === 'object' && err !== null) logged.add(err);
    return err;
  };

  /** Each IdP's audiences' grants (tokens.ts grantOf), by IdP name and audience: made once per provider. */
  const grants = new Map<string, Map<string, string | undefined>>();
  function grantFor(idpName: string, audience: string): string | undefined {
    if (audience === '') return undefined;
    let byAudience = grants.get(idpName);
    if (byAudience === undefined) grants.set(idpName, (byAudience = new Map()));
    let grant = byAudience.get(audience);
    if (grant === undefined && !byAudience.has(audience)) byAudience.set(audience, (grant = grantOf(idps.get(idpName)?.idp.audiences[audience])));
    return grant;
  }
  /** When this provider's configuration was loaded (a process start, a reload). */
  const loadedAt = Date.now();
  /**
   * The session's token for `audience`, unless it was obtained, before this configuration was
   * loaded, for another resource or other scopes than idps.yaml now asks (a reload changed them):
   * that one is none, never served, and refreshed as a missing one is. One of another grant
   * obtained since is another process's, whose configuration differs (a rollout in progress):
   * served, as that process serves it. Refreshing it here would have the two refresh in turn at
   * every request of every session they share, each overwriting the other's token. One whose time
   * of issue is unknown is taken as old; one stored without a grant (a session from before it was
   * kept), as it is.
   */
  function tokenFor(session: Session, audience: string): AccessToken | undefined {
    const t = session.secrets.tokens[audience];
    if (t === undefined || t.grant === undefined || t.grant === grantFor(session.idp, audience)) return t;
    const issuedAt = t.expiresAt !== undefined && t.lifetimeMs !== undefined ? t.expiresAt - t.lifetimeMs : undefined;
    return issuedAt !== undefined && issuedAt >= loadedAt ? t : undefined;
  }

  /** What is left of the request's store budget (STORE_BUDGET_MS), in ms. */
  function budgetLeft(scope: RequestScope | undefined): number {
    const started = scope?.startedAt;
    return started === undefined ? storeBudget : Math.max(0, started + storeBudget - performance.now());
  }

  async function fresh(session: Session, audience: string, scope?: RequestScope): Promise<Session | null> {
    const token = tokenFor(session, audience);
    // Whether the token still works long enough to be served (asked again after every wait).
    const has = token !== undefined;
    const expiresAt = token?.expiresAt;
    if (isFresh(token, skew)) return session;
    if (ended.has(session.id)) return null;
    if (has && floored(session.id, audience, session.version)) return session;
    try {
      const flight = refresh(session, audience, scope);
      // Ahead of time: the token still works, so the answer never waits long for its successor,
      // nor longer than the token has left: what is served after the wait must still work.
      if (usable(has, expiresAt)) {
        const left = expiresAt === undefined ? aheadWait : expiresAt - USABLE_MARGIN_MS - Date.now();
        const s = await flight.within(Math.max(0, Math.min(aheadWait, budgetLeft(scope), left)), session);
        if (s !== session || usable(has, expiresAt)) return s; // the refresh's result, or the old token, still good
      }
      return await flight.wait(budgetLeft(scope), waitMs);
    } catch (err) {
      // A refresh ahead of time that failed (the IdP or the store away, a refusal): the token
      // still works for a few seconds, and serving it beats a 503. The next request tries again.
      if (err instanceof Unavailable && usable(has, expiresAt)) return session;
      throw err;
    }
  }

  /**
   * Whether, within the floor (REFRESH_FLOOR_MS) of a refresh here that returned a token already
   * due, a session read since it was written (`version` no older) is served the token it holds as
   * it is: that token, or one another process's refresh has replaced it with since (refreshed
   * here again, the two would take turns, one grant a request). A copy read before that refresh
   * (an older version, with the token it replaced) is refreshed as before, which finds the new one.
   */
  function floored(id: string, audience: string, version: number): boolean {
    if (floors.size === 0) return false;
    const key = `${id}\n${audience}`;
    const f = floors.get(key);
    if (f === undefined) return false;
    if (f.until <= performance.now()) {
      floors.delete(key);
      return false;
    }
    return version >= f.version;
  }

  /**
   * Due (within its refresh window) now or within ARRIVES_DUE_MS: a 1 s token is due at once, a
   * 2 s one after 1 s (refreshWindow), each a grant a second. A 10 s token, fresh for 5 s, is not:
   * it is refreshed before it expires, as ever.
   */
  const arrivedDue = (t: AccessToken): boolean => t.expiresAt !== undefined && t.expiresAt - refreshWindow(t, skew) - Date.now() < ARRIVES_DUE_MS;

  /** After a refresh that returned `t`: a token that arrived due is floored (REFRESH_FLOOR_MS), and said. */
  function floorIfDue(refreshed: Session, audience: string, t: AccessToken, idpName: string, reqId: string | undefined): void {
    if (!arrivedDue(t) || floorMs <= 0) return;
    if (floors.size >= 10_000) floors.clear();
    floors.set(`${refreshed.id}\n${audience}`, { version: refreshed.version, until: performance.now() + floorMs });
    warnDue(t, idpName, audience, reqId);
  }

  /**
   * An IdP whose tokens arrive due is an operator's matter (its token lifetime, or a clock): said
   * once a window per IdP, with how far off, never the token. `idpClockMs`: when the token says
   * its time of issue (a JWT's iat), how far the IdP's clock is from ours (negative: behind).
   */
  function warnDue(t: AccessToken, idpName: string, audience: string, reqId: string | undefined): void {
    let gate = dueGates.get(idpName);
    if (gate === undefined) dueGates.set(idpName, (gate = new FloodGate(DUE_LOG_WINDOW_MS)));
    const held = gate.pass(performance.now());
    if (held === undefined) return;
    const now = Date.now();
    const expiresInMs = t.expiresAt === undefined ? undefined : Math.round(t.expiresAt - now);
    const idpClockMs = t.expiresAt === undefined || t.lifetimeMs === undefined ? undefined : Math.round(t.expiresAt - t.lifetimeMs - now);
    log.warn({ reqId, idp: idpName, audience: audience || '(login)', expiresInMs, lifetimeMs: t.lifetimeMs, idpClockMs, floorMs, ...(held > 0 ? { alsoDue: held } : {}) },
      'the IdP\'s tokens arrive already due by this process\'s clock: each is served as it is for the refresh floor instead of being refreshed at every request; ' +
      'check the IdP\'s access token lifetime and both clocks (NTP)');
  }

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
        // whose request was answered 503): its failure would otherwise go unsaid.
        if (!f.heard && !logged.has(err as object)) {
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
    // Discovery (up to one IdP timeout) before the lock, never under it: see the top of this file.
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
            .catch((err: unknown) => log.warn({ reqId: flight.scope?.requestId, err: errorSummary(err) }, 'refresh lock release failed'));
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
      if (isRefusal(err)) refuse(`${current.id}\n${audience}`);
      if (refusesClient(err)) {
        log.error({ reqId, idp: idp.name, err: errorSummary(err) }, 'the IdP refused goldpath\'s client at its token endpoint: no token is refreshed until an operator ' +
          'fixes its client authentication in idps.yaml or its registration at the IdP (the refresh_token grant)');
      } else {
        // Every session whose token needs a refresh meets an IdP that is away: one line a second
        // per IdP, saying how many more it stands for (as the 503s they end in are logged).
        const line = { reqId, idp: idp.name, err: errorSummary(err) };
        const held = failureGate(idp.name).pass(performance.now(), line);
        if (held !== undefined) log.warn({ ...line, ...(held > 0 ? { alsoFailed: held } : {}) }, 'token refresh failed');
      }
      report('error');
      throw loggedAlready(err instanceof Unavailable ? err : new Unavailable('the IdP could not refresh the token', { cause: err }));
    }
    // OIDC Core 12.2: an ID token in a refresh answer must name the user the session is for. One
    // that names another (an IdP that mixed up its grants) says this answer, its access token
    // included, may be someone else's: nothing of it is kept or served, and the session ends.
    // (iss, aud, exp and iat were checked by openid-client, the signature by IdpClient.refresh.)
    if (res.id_token !== undefined && res.claims()?.sub !== current.sub) {
      log.warn({ reqId, idp: idp.name }, 'the IdP answered a refresh with an ID token for another user: session deleted');
      // The refresh token the session would have held from now on: nobody holds it after this.
      discard(idp, res.refresh_token ?? rt, reqId);
      return end(current, hold, reqId);
    }
    const secrets: SessionSecrets = {
      ...current.secrets,
      tokens: { ...current.secrets.tokens, [audience]: withGrant(toAccessToken(res, Date.now(), true), grantFor(current.idp, audience)) },
      refreshToken: res.refresh_token ?? rt,
      idToken: res.id_token ?? current.secrets.idToken,
    };
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
      const obtained = res.refresh_token;
      if (obtained === undefined || obtained === rt) return;
      // Tracked from the read on: the 401 goes out before it is answered, and a shutdown right
      // after must still wait for the revocation it leads to.
      idp.background.track(store.takeTransient(REPLACED.kind, current.id).then(
        (replaced) => { if (replaced !== current.idp) discard(idp, obtained, reqId); },
        () => { /* see above */ },
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
      report('rejected');
      return null; // deleted meanwhile (logout): never resurrect it
    }
    report('success');
    const refreshed = { ...current, secrets, version: current.version + 1 };
    floorIfDue(refreshed, audience, secrets.tokens[audience]!, idp.name, reqId);
    log.debug({ reqId, idp: idp.name, audience: audience || '(login)', rotated: res.refresh_token !== undefined }, 'token refreshed');
    return refreshed;
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
    hold(store.delete(current.id).catch((e: unknown) => log.warn({ reqId, err: errorSummary(e) }, 'refresh rejected, but the session could not be deleted yet')));
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
      } catch {
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

  async function credentials(session: Session, audience: string, method: string, upstreamUrl: string, scope?: RequestScope): Promise<UpstreamCredentials | null> {
    const idp = idps.get(session.idp);
    if (audience !== '' && idp && !idp.idp.audiences[audience]) {
      throw new Error(`route audience "${audience}" is not configured for IdP "${session.idp}"`);
    }
    const s = await fresh(session, audience, scope);
    if (!s) return null;
    const t = tokenFor(s, audience);
    if (!t) return null;
    // Kept as the IdP sent it (the refresh that brought it must not lose its rotated refresh
    // token), but not sendable: 503 (logged) for this session until its next token, never a 500.
    // A session bound to a DPoP key whose token is not (a refresh the IdP answered with a bearer
    // token): never sent as a bearer token, which anyone holding it could replay.
    if (t.type !== 'DPoP' && s.secrets.dpopJwk) throw new Unavailable(`the IdP "${s.idp}" issued a bearer token to a DPoP-bound session (dpop: true): it is not sent`);
    if (!sendable(t.value)) throw new Unavailable(`the IdP "${s.idp}" issued an access token that is not printable ASCII (RFC 6749 A.12): it cannot be sent in a header`);
    if (t.type === 'DPoP') {
      const jwk = s.secrets.dpopJwk;
      // The IdP called the token DPoP-bound although this session has no key (it sent no proof):
      // an IdP's misstep, not ours. Nothing can be sent with it: 503 (logged), never a 500.
      if (!jwk) throw new Unavailable(`the IdP "${s.idp}" issued a DPoP token to a session without a DPoP key (is dpop set in idps.yaml as the IdP expects?)`);
      return { authorization: `DPoP ${t.value}`, dpop: await dpopProof(jwk, method, upstreamUrl, t.value) };
    }
    return { authorization: `Bearer ${t.value}`, dpop: undefined };
  }

  return { credentials, fresh, idps };
}

/**
 * The IdP refused the grant for a reason asking again at once will not change (invalid_target,
 * invalid_scope, invalid_client...), as opposed to an outage it says will pass.
 */
function isRefusal(err: unknown): boolean {
  const passing = ['temporarily_unavailable', 'server_error', 'slow_down', 'use_dpop_nonce'];
  // A client authentication the IdP refuses (invalid_client) is a 401 with WWW-Authenticate
  // (RFC 6749 5.2, as oidc-provider answers it): openid-client throws that as a challenge, not as
  // a body error, and it was sent again at every request of every session needing a refresh.
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    return err.status < 500 && !err.cause.some((c) => passing.includes(String(c.parameters['error'])));
  }
  return err instanceof oidc.ResponseBodyError && err.status < 500 && !passing.includes(err.error);
}

/**
 * The IdP says this refresh token is no good (expired, revoked, reused): the session is over. Not
 * unauthorized_client: that one is about the client's registration (refusesClient), and ending
 * every session of an IdP for an operator's mistake would send all its users to sign in again.
 */
function isRejection(err: unknown): boolean {
  return err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant';
}
