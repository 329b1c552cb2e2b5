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
import { StoreUnavailable, Unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Session, SessionStore } from '../session/types.ts';
import { audienceTokens } from './audience-tokens.ts';
import { dpopProof } from './dpop.ts';
import { createRefreshFloor, REFRESH_FLOOR_MS } from './refresh-floor.ts';
import type { IdpRegistry } from './registry.ts';
import { isFresh, unsendable } from './tokens.ts';
import { createRefresher, type RefreshOutcome } from './token-refresh.ts';
import type { RequestScope, TokenProvider, UpstreamCredentials } from './types.ts';

// Moved to files of their own; exported from here as ever.
export { REFRESH_FLOOR_MS } from './refresh-floor.ts';
export { REFRESH_OUTCOMES, REFUSED_RETRY_MS, type RefreshOutcome } from './token-refresh.ts';

/**
 * How long a request waits on the store, from its start, before a 503: SPEC 5's 1 s less room for
 * the rest of the chain (the PDP, the answer). The session load has its own, shorter bound
 * (session/session-load.ts DEFAULT_LOAD_DEADLINE_MS); a refresh gets what the load left.
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
  /**
   * Called with each session store failure the provider caught and did not throw (metrics:
   * goldpath_store_errors_total): a refresh ahead of time the store failed (the token still
   * works, so it is served), a refresh that failed with nobody waiting for it, a lock release,
   * a deletion or a save retried in the background.
   */
  onStoreError?: (err: StoreUnavailable) => void;
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

export function createTokenProvider(opts: TokenProviderOptions): OidcTokenProvider {
  const { idps, store, log } = opts;
  const skew = opts.refreshSkewMs ?? 30_000;
  const waitMs = opts.waitMs ?? 5_000;
  const lockTtl = opts.lockTtlMs ?? 15_000;
  const storeBudget = opts.storeBudgetMs ?? STORE_BUDGET_MS;
  const aheadWait = opts.aheadWaitMs ?? AHEAD_WAIT_MS;
  const floorMs = opts.refreshFloorMs ?? REFRESH_FLOOR_MS;
  const report = (o: RefreshOutcome) => opts.onRefresh?.(o);
  // The store's failures only: an IdP that is away is not the store's (nor its metric's).
  const storeError = (err: unknown) => {
    if (err instanceof StoreUnavailable) opts.onStoreError?.(err);
  };
  const { grantFor, tokenFor } = audienceTokens(idps);
  const { floored, floorIfDue } = createRefreshFloor(skew, floorMs, log);
  const { refresh, ended } = createRefresher({ idps, store, log, report, storeError, waitMs, lockTtl, grantFor, tokenFor, floorIfDue });

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
      if (err instanceof Unavailable && usable(has, expiresAt)) {
        storeError(err);
        return session;
      }
      throw err;
    }
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
    const why = unsendable(t, s.secrets.dpopJwk !== undefined, s.idp);
    if (why !== undefined) throw new Unavailable(why);
    if (t.type === 'DPoP') {
      return { authorization: `DPoP ${t.value}`, dpop: await dpopProof(s.secrets.dpopJwk!, method, upstreamUrl, t.value), refreshed: s === session ? undefined : s };
    }
    return { authorization: `Bearer ${t.value}`, dpop: undefined, refreshed: s === session ? undefined : s };
  }

  return { credentials, fresh, idps };
}
