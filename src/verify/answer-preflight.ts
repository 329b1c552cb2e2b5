// Step 3: a CORS preflight carries no credentials, so it is answered without identity: 200 for an
// allowed origin (the edge adds the CORS headers), 403 for any other.
import { Forbidden } from '../errors.ts';
import { quiet } from './quiet.ts';
import type { VerifyStep } from './state.ts';

export const answerPreflight: VerifyStep = function answerPreflight(ctx) {
  if (ctx.state.method !== 'OPTIONS') return;
  const h = ctx.h;
  if (h.origin !== undefined && h.preflightMethod !== undefined) {
    if (!ctx.state.policy.allowedOrigins.has(h.origin)) throw quiet(() => new Forbidden('origin not allowed', 'forbidden'));
    ctx.state.outcome = 'preflight';
    ctx.status = 200;
  }
};
