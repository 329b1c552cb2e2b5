// What an IdpClient is made with (registry.ts makes them), and the refresh grant's time budget its
// default refresh timeout derives from.
import type * as oidc from 'openid-client';
import type { Logger } from '../log.ts';
import type { BackgroundTasks } from './background.ts';
import type { FetchLike } from './fetch.ts';

export interface IdpClientOptions {
  log: Logger;
  /** Replaces the global fetch for every IdP request (tests, proxies). Ignored with tls_client_auth. */
  fetch?: FetchLike;
  /** Per-request timeout for IdP calls, seconds. Default 5. */
  timeoutSeconds?: number;
  /**
   * Timeout of a refresh grant's request, seconds. Default REFRESH_GRANT_BUDGET_S, split between
   * the two requests of a DPoP IdP (see refreshBudgetMs).
   */
  refreshTimeoutSeconds?: number;
  /**
   * The metadata the client this one replaces (a reload) had discovered, for the same issuer: used
   * instead of discovery, so a SIGHUP asks the IdP nothing, and one while it is away does not
   * unlearn what it knew (registry.ts).
   */
  previousMetadata?: Readonly<oidc.ServerMetadata>;
  /**
   * Where revokeInBackground keeps its calls, for a shutdown to wait for: the process's one, shared
   * by the clients of every reload. Default: this client's own.
   */
  background?: BackgroundTasks;
  /** How long a fetched key set counts as fresh (keySetReady), seconds. Default jose's, 600 (tests). */
  jwksMaxAgeSeconds?: number;
}

/**
 * How long a refresh grant may take, seconds: longer than other IdP calls. A grant cut short after
 * the IdP has answered it leaves the IdP holding a rotated refresh token and us the spent one:
 * with reuse detection (oidc-provider), the next refresh ends the session. The grant runs on under
 * its lock whoever waits for it (token-refresh.ts), so a slow IdP delays it rather than losing
 * it; the lock (15 s) must outlast it and the write that follows.
 */
export const REFRESH_GRANT_BUDGET_S = 12;
