// Every answer of /auth/verify is counted by outcome and timed. Outcomes are a small fixed set
// (the chain's outcome names and error codes), so the label set stays bounded.
import type { VerifyContext, VerifyDeps } from './state.ts';

export function measure(deps: VerifyDeps): (ctx: VerifyContext, seconds: number) => void {
  const { observe } = deps.metrics;
  return function measureAnswer(ctx, seconds) {
    const body = ctx.body;
    const outcome = ctx.state.outcome ?? (typeof body === 'object' && typeof body.error === 'string' ? body.error : String(ctx.status));
    observe(outcome, seconds);
  };
}
