// Step 1: the request being authorised is described by Traefik's X-Forwarded-* headers, not by
// the request to /auth/verify itself.
import { BadRequest } from '../errors.ts';
import { canonicalize } from './canonical-uri.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';

const METHOD = /^[A-Z]{1,16}$/;

export function canonicalizeRequest(deps: VerifyDeps): VerifyStep {
  return function canonicalizeRequestStep(ctx) {
    const method = ctx.h.method ?? ctx.method;
    if (!METHOD.test(method)) throw new BadRequest('X-Forwarded-Method is not an HTTP method');
    const { path, raw } = canonicalize(ctx.h.uri);
    const s = ctx.state;
    s.method = method;
    s.path = path;
    s.rawUri = raw;
    s.policy = deps.policy();
  };
}
