// The ForwardAuth sidecar. The /auth/verify chain below *is* SPEC section 5, step by step, in order.
//
// /auth/verify runs on node:http directly (runChain), not through Koa and @koa/router: it is the
// only hot endpoint, and Koa's per-request context plus the router cost more than all of the
// sidecar's own work on a cached request (test/bench). Health, readiness and metrics stay on Koa.
import type { RequestListener } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import { answerUnmatched } from '../http/answer-unmatched.ts';
import { errorHandler } from '../http/error-handler.ts';
import { mountHealth } from '../http/health.ts';
import { canonicalizeRequest } from './canonicalize-request.ts';
import { matchRoute } from './match-route.ts';
import { answerPreflight } from './answer-preflight.ts';
import { loadSession } from './load-session.ts';
import { checkCsrf } from './check-csrf.ts';
import { obtainCredentials } from './obtain-credentials.ts';
import { authorize } from './authorize.ts';
import { allow } from './allow.ts';
import { runChain } from './run-chain.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';

export const VERIFY_PATH = '/auth/verify';

/** /auth/verify, with or without a trailing slash or a query string. */
function isVerifyPath(url: string): boolean {
  if (!url.startsWith(VERIFY_PATH)) return false;
  const n = VERIFY_PATH.length;
  if (url.length === n || url.charCodeAt(n) === 0x3f /* ? */) return true;
  return url.charCodeAt(n) === 0x2f /* / */ && (url.length === n + 1 || url.charCodeAt(n + 1) === 0x3f);
}

export interface VerifyApp {
  /** The request listener for node:http (and supertest). */
  callback(): RequestListener;
}

export function createVerifyApp(deps: VerifyDeps): VerifyApp {
  // Around every step: a request id (X-Request-Id from the edge, or a new one), errors rendered
  // as JSON by src/http/error-handler.ts, and the answer counted and timed (see run-chain.ts).
  const verifyChain: readonly VerifyStep[] = [
    canonicalizeRequest(deps), // 1. canonical URI, or 400 / 414
    matchRoute,                // 2. a declared route, or 404
    answerPreflight,           // 3. CORS preflight: 200 without identity, or 403
    loadSession(deps),         // 4. session, or 401 / 302 on session routes
    checkCsrf(deps),           // 5. unsafe methods: CSRF token, Origin, Sec-Fetch-Site, or 403
    obtainCredentials(deps),   // 6. fresh access token for the route's audience, or 401
    authorize(deps),           // 7. Oso decision, or 403
    allow,                     // 8. 200 with the upstream headers
  ];
  // ForwardAuth uses GET unless preserveRequestMethod is set; any method is accepted.
  const verify = runChain(deps, verifyChain);

  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  const router = new Router();
  // The store's failures no request hears (best-effort work, its connections, the session
  // cache's heartbeat) are counted with the ones that fail a request (run-chain.ts).
  deps.store.onCaughtError(() => deps.metrics.storeErrors.inc());
  mountHealth(router, {
    registry: deps.metrics.registry,
    ready: () => deps.store.ping().catch((err: unknown) => {
      deps.metrics.storeErrors.inc(); // ping() throws StoreUnavailable only
      throw err;
    }),
  });
  app.use(errorHandler(deps.log));
  app.use(answerUnmatched('goldpath verify serves only /auth/verify'));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));

  return {
    callback() {
      const other = app.callback();
      return (req, res) => {
        if (isVerifyPath(req.url ?? '')) verify(req, res);
        else void other(req, res);
      };
    },
  };
}
