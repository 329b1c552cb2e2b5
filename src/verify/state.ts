// What the /auth/verify chain knows about one request, filled step by step.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GoldpathError } from '../errors.ts';
import type { RouteConfig, Settings, RoutesConfig } from '../config/types.ts';
import type { Session, SessionStore } from '../session/types.ts';
import type { TokenProvider, UpstreamCredentials } from '../oidc/types.ts';
import type { Pdp } from '../pdp/index.ts';
import type { Logger } from '../log.ts';
import type { RouteTable } from './route-table.ts';
import type { VerifyMetrics } from './metrics.ts';
import { readRequestHeaders, type RequestHeaders } from './request-headers.ts';

/**
 * Everything that a SIGHUP reload replaces at once. A request takes one at its start and uses it
 * to its end: routes.yaml and idps.yaml of one version (a route's audience is one its IdP has).
 */
export interface VerifyPolicy {
  /** This version's number, from 1, one more at every build (session-memo.ts keeps it, not the policy). */
  readonly version: number;
  /** How tokens are obtained and refreshed, for this version's idps.yaml. */
  readonly tokens: TokenProvider;
  readonly routes: RoutesConfig;
  readonly table: RouteTable;
  readonly pdp: Pdp;
  /** Origins allowed for CORS and CSRF Origin checks (the public origin is always allowed). */
  readonly allowedOrigins: ReadonlySet<string>;
  /**
   * The idps.yaml names and their issuers: a session made with an IdP since removed, or since given
   * another issuer under the same name, is no session (load-session.ts).
   */
  readonly idps: ReadonlyMap<string, string>;
}

export interface VerifyDeps {
  readonly settings: Settings;
  /** A CachingSessionStore in the sidecar process (src/session/cache.ts); any store works. */
  readonly store: SessionStore;
  readonly log: Logger;
  readonly metrics: VerifyMetrics;
  /** Read per request, so a reload swaps routes, rules and policies atomically. */
  readonly policy: () => VerifyPolicy;
}

export interface VerifyState {
  /** X-Request-Id from the edge when well-formed, else a new one (made on first use). */
  readonly requestId: string;
  /** performance.now() when the chain began: a token refresh bounds its store waits from it. */
  startedAt: number;
  policy: VerifyPolicy;
  method: string;
  path: string;
  rawUri: string;
  route: RouteConfig;
  /** The client's Cookie header without goldpath cookies. */
  upstreamCookie: string;
  session: Session | undefined;
  credentials: UpstreamCredentials | undefined;
  /** Set by the step that answers (metrics label); errors are labelled by their code. */
  outcome: string | undefined;
}

class State implements VerifyState {
  readonly #header: string | undefined;
  readonly #make: (header: string | undefined) => string;
  #id: string | undefined = undefined;
  startedAt = 0;
  policy: VerifyPolicy = undefined!;
  method = '';
  path = '';
  rawUri = '';
  route: RouteConfig = undefined!;
  upstreamCookie = '';
  session: Session | undefined = undefined;
  credentials: UpstreamCredentials | undefined = undefined;
  outcome: string | undefined = undefined;

  constructor(header: string | undefined, make: (header: string | undefined) => string) {
    this.#header = header;
    this.#make = make;
  }

  // Made on first use: only a 200 and an answer a log line names carry one (run-chain.ts).
  get requestId(): string {
    return (this.#id ??= this.#make(this.#header));
  }
}

/**
 * One /auth/verify request. /auth/verify does not run on Koa: a Koa context, its delegates and a
 * router cost more per request than everything the sidecar decides (see test/bench). This is the
 * small part of Koa's context the chain uses, with the same names (and what the shared error
 * renderer, src/http/error-handler.ts, writes to: status, set(), body, state.requestId).
 */
export class VerifyContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request headers the chain reads (request-headers.ts). */
  readonly h: RequestHeaders;
  readonly state: VerifyState;
  /** 0 until a step answers; the chain stops at the first step that sets it. */
  status = 0;
  /** A denial to answer with (fail()); rendered like a thrown error. */
  error: GoldpathError | undefined = undefined;
  /** '' (empty answer) or a JSON object. */
  body: string | Record<string, unknown> = '';
  /** Response headers as a flat [name, value, name, value...] list (writeHead takes it as is). */
  readonly out: string[] = [];

  constructor(req: IncomingMessage, res: ServerResponse, requestId: (header: string | undefined) => string) {
    this.req = req;
    this.res = res;
    this.h = readRequestHeaders(req.rawHeaders);
    this.state = new State(this.h.requestId, requestId);
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  /**
   * Answers with an error, like throwing it, minus the cost of a throw (V8 walks the stack to
   * locate every throw): for the denials an attacker or a logged-out SPA can cause by the thousand.
   */
  fail(err: GoldpathError): void {
    this.error = err;
    this.status = err.status;
  }

  /** Adds response headers (Koa's ctx.set, which the error renderer uses). */
  set(field: string | Record<string, string>, value?: string): void {
    if (typeof field === 'string') this.out.push(field, value!);
    else for (const k in field) this.out.push(k, field[k]!);
  }
}

/**
 * One step of the chain: returns (or resolves) to pass the request on, sets ctx.status to answer,
 * or throws a GoldpathError that the error renderer answers with. Steps that need no I/O are
 * synchronous, so the hot path awaits only what really is asynchronous.
 */
export type VerifyStep = (ctx: VerifyContext) => void | Promise<void>;
