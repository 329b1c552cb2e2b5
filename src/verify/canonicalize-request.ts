// Step 1: the request being authorised is described by Traefik's X-Forwarded-* headers, not by
// the request to /auth/verify itself.
import { BadRequest } from '../errors.ts';
import { canonicalize } from './canonical-uri.ts';
import type { VerifyDeps, VerifyMiddleware } from './state.ts';

const METHOD = /^[A-Z]{1,16}$/;

export function canonicalizeRequest(deps: VerifyDeps): VerifyMiddleware {
  return async function canonicalizeRequestMw(ctx, next) {
    const headers = ctx.req.headers;
    const method = headers['x-forwarded-method'] ?? ctx.method;
    if (typeof method !== 'string' || !METHOD.test(method)) throw new BadRequest('X-Forwarded-Method is not an HTTP method');
    const uri = headers['x-forwarded-uri'];
    const { path, raw } = canonicalize(typeof uri === 'string' ? uri : undefined);
    const s = ctx.state;
    s.method = method;
    s.path = path;
    s.rawUri = raw;
    s.policy = deps.policy();
    await next();
  };
}
