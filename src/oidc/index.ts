// The OAuth client layer shared by the BFF (login, logout) and the verify sidecar (token refresh).
import type { GoldpathConfig, Settings } from '../config/types.ts';
import type { StoreUnavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SessionStore } from '../session/types.ts';
import type { FetchLike } from './fetch.ts';
import { IdpRegistry } from './registry.ts';
import type { BackgroundTasks } from './background.ts';
import { createTokenProvider, type OidcTokenProvider, type RefreshOutcome } from './token-provider.ts';
import type { TokenProvider } from './types.ts';

export type { TokenProvider, UpstreamCredentials } from './types.ts';
export { IdpClient, type TokenResponse, type IdpClientOptions } from './idp-client.ts';
export { errorSummary } from './idp-errors.ts';
export { IdpRegistry } from './registry.ts';
export { createTokenProvider, type OidcTokenProvider, type RefreshOutcome, type TokenProviderOptions } from './token-provider.ts';
export { newDpopJwk, dpopProof, dpopThumbprint, dpopKeyPair, publicJwk, type DpopJwk } from './dpop.ts';
export { tlsFetch, readTlsMaterial, type FetchLike, type TlsMaterial } from './fetch.ts';
export { userFromClaims, mergeClaims, claimAt, stringList } from './claims.ts';
export { toAccessToken, isFresh } from './tokens.ts';

/**
 * What the verify sidecar calls at startup and at every reload (src/verify/server.ts): a
 * TokenProvider for the IdPs of idps.yaml over the shared store. At startup IdP metadata is
 * discovered lazily, on the first refresh; a reload (`previous`: the provider it replaces) goes
 * through IdpRegistry.replacing, as the BFF's does.
 */
export async function tokenProviderFactory(args: {
  settings: Settings;
  store: SessionStore;
  log: Logger;
  config: GoldpathConfig;
  fetch?: FetchLike;
  onRefresh?: (outcome: RefreshOutcome) => void;
  /** TokenProviderOptions.onStoreError. */
  onStoreError?: (err: StoreUnavailable) => void;
  /** The sidecar's, which its shutdown waits for (a reload builds another provider). */
  background?: BackgroundTasks;
  /** The provider a reload replaces: what its IdPs discovered is handed on. */
  previous?: TokenProvider;
}): Promise<OidcTokenProvider> {
  const opts = { log: args.log, fetch: args.fetch, background: args.background };
  // Another kind of provider (none in the product; tests pass their own) has no IdPs to hand on.
  const before = (args.previous as Partial<OidcTokenProvider> | undefined)?.idps;
  const idps = before instanceof IdpRegistry
    ? await IdpRegistry.replacing(before, args.config.idps, opts)
    : new IdpRegistry(args.config.idps, opts);
  return createTokenProvider({ idps, store: args.store, log: args.log, onRefresh: args.onRefresh, onStoreError: args.onStoreError });
}
