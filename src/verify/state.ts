// What the /auth/verify chain knows about one request, filled step by step.
import type { RouteConfig, Settings, RoutesConfig } from '../config/types.ts';
import type { Session, SessionStore } from '../session/types.ts';
import type { TokenProvider, UpstreamCredentials } from '../oidc/types.ts';
import type { Pdp } from '../pdp/index.ts';
import type { Logger } from '../log.ts';
import type { RouteTable } from './route-table.ts';
import type { VerifyMetrics } from './metrics.ts';

/** Everything that a SIGHUP reload replaces at once. */
export interface VerifyPolicy {
  readonly routes: RoutesConfig;
  readonly table: RouteTable;
  readonly pdp: Pdp;
  /** Origins allowed for CORS and CSRF Origin checks (the public origin is always allowed). */
  readonly allowedOrigins: ReadonlySet<string>;
}

export interface VerifyDeps {
  readonly settings: Settings;
  readonly store: SessionStore;
  readonly tokens: TokenProvider;
  readonly log: Logger;
  readonly metrics: VerifyMetrics;
  /** Read per request, so a reload swaps routes, rules and policies atomically. */
  readonly policy: () => VerifyPolicy;
}

export interface VerifyState {
  requestId: string;
  policy: VerifyPolicy;
  method: string;
  path: string;
  rawUri: string;
  route: RouteConfig;
  /** The client's Cookie header without goldpath cookies. */
  upstreamCookie: string;
  session: Session | undefined;
  credentials: UpstreamCredentials | undefined;
  outcome: string;
}

import type { ParameterizedContext, Next } from 'koa';
export type VerifyContext = ParameterizedContext<VerifyState>;
export type VerifyMiddleware = (ctx: VerifyContext, next: Next) => Promise<void>;
