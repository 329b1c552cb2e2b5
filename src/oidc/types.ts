// What the verify sidecar needs from the OAuth layer. The BFF side implements it
// (src/oidc/), the sidecar only calls it; unit tests of the sidecar may use a fake.
import type { AccessToken, Session } from '../session/types.ts';

export interface UpstreamCredentials {
  /** Value for the upstream `Authorization` header: `Bearer <token>` or `DPoP <token>`. */
  readonly authorization: string;
  /** RFC 9449 proof for the upstream request (only for DPoP-bound tokens). */
  readonly dpop: string | undefined;
}

export interface TokenProvider {
  /**
   * Credentials for calling `upstreamUrl` (method `method`) with the access token of `audience`
   * ('' = the token from login). Refreshes first when the token expires within 30 s; refreshes of
   * one session are single-flight across processes. Resolves null when the IdP rejected the
   * refresh (the session has then been deleted: the caller answers 401). Throws
   * StoreUnavailable/Unavailable when the store or IdP cannot be reached.
   */
  credentials(session: Session, audience: string, method: string, upstreamUrl: string): Promise<UpstreamCredentials | null>;
}

export type { AccessToken };
