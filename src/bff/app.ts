// The BFF as a Koa app: /auth/login, /auth/callback, /auth/session, /auth/logout,
// /auth/backchannel-logout, plus /healthz, /readyz (store + IdP metadata) and /metrics.
import Koa, { type Context, type Middleware, type Next } from 'koa';
import Router, { type Layer } from '@koa/router';
import { Registry } from 'prom-client';
import type { GoldpathConfig, Settings } from '../config/types.ts';
import { StoreUnavailable, Unavailable } from '../errors.ts';
import { answerUnmatched } from '../http/answer-unmatched.ts';
import { errorHandler } from '../http/error-handler.ts';
import { mountHealth } from '../http/health.ts';
import { assignRequestId } from '../http/request-id.ts';
import { errorFields, type Logger } from '../log.ts';
import type { FetchLike } from '../oidc/fetch.ts';
import { IdpRegistry } from '../oidc/registry.ts';
import { BackgroundTasks } from '../oidc/background.ts';
import { createTokenProvider, type OidcTokenProvider } from '../oidc/token-provider.ts';
import type { SessionStore } from '../session/types.ts';
import { backchannelLogoutHandler } from './backchannel-logout.ts';
import { CALLBACK_PATH } from './callback-path.ts';
import { callbackHandler } from './callback.ts';
import { htmlErrorPages } from './error-page.ts';
import { loginHandler } from './login.ts';
import { logoutHandler } from './logout.ts';
import { createBffMetrics, type BffMetrics } from './metrics.ts';
import { securityHeaders } from './security-headers.ts';
import { sessionHandler } from './session-info.ts';
import type { BffDeps } from './state.ts';
import { within } from '../within.ts';

export interface BffAppOptions {
  settings: Settings;
  config: GoldpathConfig;
  store: SessionStore;
  log: Logger;
  /** Where metrics go; default a registry of its own (never prom-client's global one). */
  metricsRegistry?: Registry;
  /** Replaces fetch for IdP calls (not used for tls_client_auth IdPs, which need node:https). */
  fetch?: FetchLike;
  /** Load every IdP's metadata before resolving (default false: loaded on first use, /readyz waits). */
  discoverEagerly?: boolean;
}

export interface BffApp {
  readonly app: Koa;
  /** The TokenProvider over the same IdPs and store (the demo hands it to the verify sidecar). */
  readonly tokens: OidcTokenProvider;
  readonly idps: IdpRegistry;
  readonly metrics: BffMetrics;
  /**
   * Swaps in a new, already validated configuration (SIGHUP); in-flight requests finish on the old
   * one. Rejects (ConfigError), swapping nothing, when an issuer it adds cannot be discovered.
   */
  reload(config: GoldpathConfig): Promise<void>;
  /** Waits, bounded, for the revocations started in the background: once serving stopped, before the store closes. */
  close(): Promise<void>;
}

export async function createBffApp(opts: BffAppOptions): Promise<BffApp> {
  const { settings, config, store, log } = opts;
  const metrics = createBffMetrics(opts.metricsRegistry ?? new Registry());
  // The app's, not a registry's: a reload replaces the registry, not the revocations it started.
  const background = new BackgroundTasks();
  const idps = new IdpRegistry(config.idps, { log, fetch: opts.fetch, background });
  warnDangerous(idps, log);
  // The store's failures no request hears (best-effort work, its connections, refreshes in the
  // background) are counted with the ones that fail a request (countStoreErrors below).
  const unsubscribe = store.onCaughtError(() => metrics.storeError());
  const onStoreError = () => metrics.storeError();
  const tokens = createTokenProvider({ idps, store, log, onRefresh: (o) => metrics.refresh(o), onStoreError });
  // Swapped as a whole by reload(): handlers read config and IdPs through these getters.
  let current = { config, idps, tokens };
  const deps: BffDeps = {
    settings, store, log, metrics,
    get config() { return current.config; },
    get idps() { return current.idps; },
    get tokens() { return current.tokens; },
  };
  if (opts.discoverEagerly) await idps.loadAll();
  else void idps.loadAll().catch(() => { /* logged by IdpClient; retried on use and by /readyz */ });

  const app = new Koa();
  app.proxy = false; // the BFF builds every URL from GOLDPATH_PUBLIC_URL, never from request headers
  // Koa's default 'error' listener prints the stack of whatever reaches it to stderr: a client
  // that resets its connection mid-request (read ECONNRESET, passed on by the response's
  // on-finished) would write multi-line stack traces between the JSON log lines, as often as it
  // likes. Everything else is rendered by errorHandler; what still arrives here is the connection's.
  app.silent = true;
  app.on('error', (err: unknown) => log.debug({ err: errorFields(err) }, 'connection error'));
  // Exact paths, as the edge's routers match them: @koa/router would otherwise also answer
  // /auth/login/ and /AUTH/LOGIN, which miss the edge's per-client sign-in limit (the `login`
  // router of traefik/dynamic/goldpath.yml is an exact, case-sensitive Path).
  const router = new Router({ strict: true, sensitive: true });
  const html = htmlErrorPages(log, (err) => {
    if (err instanceof StoreUnavailable) metrics.storeError();
  });
  getOnly(router, '/auth/login', html, loginHandler(deps));
  const callback = callbackHandler(deps);
  getOnly(router, CALLBACK_PATH, html, callback);
  getOnly(router, `${CALLBACK_PATH}/:idp`, html, callback); // the other IdPs' redirect URIs (callback-path.ts)
  router.get('/auth/session', sessionHandler(deps));
  router.post('/auth/logout', logoutHandler(deps));
  router.post('/auth/backchannel-logout', backchannelLogoutHandler(deps));
  mountHealth(router, {
    registry: metrics.registry,
    ready: async () => {
      // A full (noeviction) or read-only Redis still answers PING, yet no login could be saved:
      // probe a write too (one short-lived key, overwritten by every probe). Beside the IdPs'
      // waits, not before them: the probe's time is the longer of the two.
      const storeOk = (async () => {
        await store.ping();
        await store.putTransient('readyz', 'probe', '1', 10_000);
      })().catch((err: unknown) => {
        metrics.storeError(); // both throw StoreUnavailable only
        throw err;
      });
      // The default IdP's metadata, which most sign-ins need. Another IdP that cannot be reached
      // is named, not a reason to take this BFF out of rotation: its users get a 503 page, the
      // others sign in as ever (every BFF would fail the probe alike, so none would serve).
      // Each wait is bounded: an IdP that accepts connections and never answers held every probe
      // for its whole timeout (5 s), and a probe that times out is a failed one, for the default
      // IdP and the others alike. Discovery goes on in the background; a later probe sees it.
      const { idps } = current;
      const metadata = (c: typeof idps.default) => within(c.configuration(), READY_IDP_WAIT_MS,
        () => new Unavailable(`the IdP "${c.name}" has not answered (discovery)`));
      const others = idps.all().filter((c) => c !== idps.default);
      // All at once: one wait, not one per IdP.
      const [stored, first, ...results] = await Promise.allSettled([storeOk, ...[idps.default, ...others].map(metadata)]);
      if (stored!.status === 'rejected') throw stored!.reason;
      if (first!.status === 'rejected') throw first!.reason;
      const down = others.filter((_, i) => results[i]!.status === 'rejected').map((c) => c.name);
      return down.length > 0 ? { idps_unavailable: down } : undefined;
    },
  });

  app.use(assignRequestId);
  app.use(securityHeaders);
  app.use(accessLog(log, metrics));
  app.use(errorHandler(log));
  app.use(countStoreErrors(metrics));
  app.use(answerUnmatched('no such endpoint'));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));

  return {
    app, metrics,
    get tokens() { return current.tokens; },
    get idps() { return current.idps; },
    async reload(next: GoldpathConfig) {
      const nextIdps = await IdpRegistry.replacing(current.idps, next.idps, { log, fetch: opts.fetch, background });
      warnDangerous(nextIdps, log); // a reload may turn one on
      current = { config: next, idps: nextIdps, tokens: createTokenProvider({ idps: nextIdps, store, log, onRefresh: (o) => metrics.refresh(o), onStoreError }) };
    },
    // IdP clients use per-request connections and the store is the caller's: only the background
    // revocations are left to wait for (the caller stopped serving first; the store still works).
    close: () => {
      unsubscribe();
      return background.drain(log);
    },
  };
}

/**
 * GET without the HEAD @koa/router adds to every GET route: these two act (a sign-in starts: a
 * transaction stored, a PAR call, a rate-limit token; a code is spent), and a HEAD from a link
 * checker or a prefetcher must not. HEAD is then a 405 with `Allow: GET`.
 */
function getOnly(router: Router, path: string, ...middleware: Middleware[]): void {
  const layer = router.register(path, ['GET'], middleware) as Layer;
  // Layer.methods is public in @koa/router's types, and what its allowedMethods reads; a router
  // release that handled it otherwise fails test/bff/ops.test.ts (HEAD would be answered again).
  layer.methods = ['GET'];
}

/** The alarmingly named idps.yaml opt-ins, said loudly at startup and at every reload. */
function warnDangerous(idps: IdpRegistry, log: Logger): void {
  for (const idp of idps.all()) {
    if (idp.idp.dangerouslyAllowInsecureHttp) {
      log.warn({ idp: idp.name, issuer: idp.idp.issuer }, '!!! dangerously_allow_insecure_http: this IdP may be reached over PLAIN HTTP; development only !!!');
    }
    if (idp.idp.dangerouslyTrustUnverifiedEmail) {
      log.warn({ idp: idp.name }, '!!! dangerously_trust_unverified_email: policies see this IdP\'s email claim as the user\'s address although it does not say it verified it !!!');
    }
  }
}

/**
 * How long /readyz waits for an IdP's metadata: under the 1 s a readiness probe commonly allows
 * (Kubernetes' timeoutSeconds default); the store's checks run beside it.
 */
const READY_IDP_WAIT_MS = 800;

/** The paths the BFF answers: the only values of the latency histogram's route label. */
const ROUTES = new Set(['/auth/login', '/auth/callback', '/auth/session', '/auth/logout', '/auth/backchannel-logout', '/healthz', '/readyz', '/metrics']);
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One line per request: method, path (never the query: it carries codes and state), status, time.
 * Any other path is `other` in the metrics: a label per path a client makes up would let anyone
 * grow /metrics (and this process's memory) without bound.
 */
function accessLog(log: Logger, metrics: BffMetrics) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const start = performance.now();
    ctx.set('X-Request-Id', ctx.state.requestId as string);
    try {
      await next();
    } finally {
      const seconds = (performance.now() - start) / 1000;
      const known = ROUTES.has(ctx.path);
      const label = known ? ctx.path : (ctx.path.startsWith(`${CALLBACK_PATH}/`) ? CALLBACK_PATH : 'other');
      metrics.observe(label, ctx.status, seconds);
      if (!QUIET.has(ctx.path)) {
        log.info({ reqId: ctx.state.requestId, method: ctx.method, path: known ? ctx.path : ctx.path.slice(0, 200), status: ctx.status, ms: Math.round(seconds * 1000) }, 'request');
      }
    }
  };
}

function countStoreErrors(metrics: BffMetrics) {
  return async function storeErrors(_ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      if (err instanceof StoreUnavailable) metrics.storeError();
      throw err;
    }
  };
}
