// Step 3: a CORS preflight carries no credentials, so it is answered without identity: 200 for an
// allowed origin (the edge adds the CORS headers), 403 for any other.
import { Forbidden } from '../errors.ts';
import type { VerifyMiddleware } from './state.ts';

export const answerPreflight: VerifyMiddleware = async function answerPreflight(ctx, next) {
  const h = ctx.req.headers;
  if (ctx.state.method === 'OPTIONS' && h.origin !== undefined && h['access-control-request-method'] !== undefined) {
    if (!ctx.state.policy.allowedOrigins.has(h.origin)) throw new Forbidden('origin not allowed', 'forbidden');
    ctx.state.outcome = 'preflight';
    ctx.status = 200;
    ctx.body = '';
    return;
  }
  await next();
};
