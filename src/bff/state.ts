// What every BFF handler gets.
import type { GoldpathConfig, Settings } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { SessionStore } from '../session/types.ts';
import type { IdpRegistry } from '../oidc/registry.ts';
import type { OidcTokenProvider } from '../oidc/token-provider.ts';
import type { BffMetrics } from './metrics.ts';

export interface BffDeps {
  readonly settings: Settings;
  /** config, idps and tokens change on a SIGHUP reload (app.ts): read them per request, never keep them. */
  readonly config: GoldpathConfig;
  readonly store: SessionStore;
  readonly log: Logger;
  readonly idps: IdpRegistry;
  readonly tokens: OidcTokenProvider;
  readonly metrics: BffMetrics;
}
