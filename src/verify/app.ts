// The ForwardAuth sidecar. The /auth/verify chain below *is* SPEC section 5, step by step, in order.
import Koa from 'koa';
import Router, { type RouterMiddleware } from "@koa/router";
import { errorHandler } from '../http/error-handler.ts';
import { assignRequestId } from '../http/request-id.ts';
import { mountHealth } from '../http/health.ts';
import { measure } from './measure.ts';
import { canonicalizeRequest } from './canonicalize-request.ts';
import { matchRoute } from './match-route.ts';
import { answerPreflight } from './answer-preflight.ts';
import { loadSession } from './load-session.ts';
import { checkCsrf } from './check-csrf.ts';
import { obtainCredentials } from './obtain-credentials.ts';
import { authorize } from './authorize.ts';
import { allow } from './allow.ts';
import type { VerifyDeps, VerifyState } from './state.ts';

export function createVerifyApp(deps: VerifyDeps): Koa<VerifyState> {
  const app = new Koa<VerifyState>();
  // Never trust X-Forwarded-* for our own request: the ones we read describe the *client's* request.
  app.proxy = false;
  app.silent = true;

  const verifyChain = [
    measure(deps),
    errorHandler(deps.log),
    assignRequestId,
    canonicalizeRequest(deps), // 1. canonical URI, or 400 / 414
    matchRoute,                // 2. a declared route, or 404
    answerPreflight,           // 3. CORS preflight: 200 without identity, or 403
    loadSession(deps),         // 4. session, or 401 / 302 on session routes
    checkCsrf(deps),           // 5. unsafe methods: CSRF token, Origin, Sec-Fetch-Site, or 403
    obtainCredentials(deps),   // 6. fresh access token for the route's audience, or 401
    authorize(deps),           // 7. Oso decision, or 403
    allow,                     // 8. 200 with the upstream headers
  ];

  const router = new Router();
  // ForwardAuth uses GET unless preserveRequestMethod is set; accept any method.
  router.all("/auth/verify", ...(verifyChain as RouterMiddleware[]));
  mountHealth(router, { registry: deps.metrics.registry, ready: () => deps.store.ping() });

  app.use(errorHandler(deps.log) as Koa.Middleware<VerifyState>);
  app.use(router.routes() as Koa.Middleware<VerifyState>);
  app.use((ctx) => {
    ctx.status = 404;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error: 'not_found', error_description: 'goldpath verify serves only /auth/verify' };
  });
  return app;
}
