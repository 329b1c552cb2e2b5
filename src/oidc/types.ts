// What the verify sidecar needs from the OAuth layer. The BFF side implements it
// (src/oidc/), the sidecar only calls it; unit tests of the sidecar may use a fake.
import type { AccessToken, Session } from '../session/types.ts';

export interface UpstreamCredentials {
  /** Value for the upstream `Authorization` header: `Bearer <token>` or `DPoP <token>`. */
  readonly authorization: string;
  /** RFC 9449 proof for the upstream request (only for DPoP-bound tokens). */
  readonly dpop: string | undefined;
  /**
   * The session the token came from when a refresh made a newer one than the session asked with:
   * its user may differ (a refreshed ID token's claims, claims.ts refreshedUser).
   */
  readonly refreshed?: Session | undefined;
}

/**
 * The request a credentials() call is made for. The verify chain hands its own state in (nothing is
 * allocated per request): `requestId` is read only when a line is logged, as the chain mints ids
 * on first use.
 */
export interface RequestScope {
  /** Its id: the refresh's log lines carry it as reqId. */
  readonly requestId: string;
  /**
   * When it started (performance.now()): a refresh it waits for may keep it waiting on the store
   * only for what is left of the store budget since then (oidc/token-provider.ts).
   */
  readonly startedAt?: number;
}

export interface TokenProvider {
  /**
   * Credentials for calling `upstreamUrl` (method `method`) with the access token of `audience`
   * ('' = the token from login). Refreshes first when the token expires within 30 s; refreshes of
   * one session are single-flight across processes. Resolves null when the IdP rejected the
   * refresh (the session has then been deleted: the caller answers 401). Throws
   * StoreUnavailable/Unavailable when the store or IdP cannot be reached.
   */
  credentials(session: Session, audience: string, method: string, upstreamUrl: string, scope?: RequestScope): Promise<UpstreamCredentials | null>;
}

export type { AccessToken };
