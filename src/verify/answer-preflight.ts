// Step 3: a CORS preflight carries no credentials, so it is answered without identity: 200 for an
// allowed origin (the edge adds the CORS headers), 403 for any other.
import { Forbidden } from '../errors.ts';
import { quiet } from './quiet.ts';
import type { VerifyStep } from './state.ts';

/**
 * A preflight names the one method it asks for (Fetch). Traefik's cors middleware answers every
 * OPTIONS whose (first) Access-Control-Request-Method is not empty, so one that reaches us empty, or
 * sent twice (joined), is no preflight to it: our identity-less 200 then took a session route's
 * OPTIONS to the upstream with no login and no policy decision.
 */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const answerPreflight: VerifyStep = function answerPreflight(ctx) {
  if (ctx.state.method !== 'OPTIONS') return;
  const h = ctx.h;
  if (h.origin !== undefined && h.preflightMethod !== undefined && METHOD_TOKEN.test(h.preflightMethod)) {
    if (!ctx.state.policy.allowedOrigins.has(h.origin)) throw quiet(() => new Forbidden('origin not allowed', 'forbidden'));
    ctx.state.outcome = 'preflight';
    ctx.status = 200;
  }
};
