// Outermost: every answer of /auth/verify is counted by outcome and timed.
import { performance } from 'node:perf_hooks';
import type { VerifyDeps, VerifyMiddleware } from './state.ts';

export function measure(deps: VerifyDeps): VerifyMiddleware {
  const { decisions, duration, storeErrors } = deps.metrics;
  return async function measureMw(ctx, next) {
    const start = performance.now();
    try {
      await next();
    } finally {
      const body = ctx.body as { error?: unknown } | undefined;
      const outcome = ctx.state.outcome ?? (typeof body?.error === 'string' ? body.error : String(ctx.status));
      if (ctx.status === 503) storeErrors.inc();
      decisions.inc({ outcome });
      duration.observe({ outcome }, (performance.now() - start) / 1000);
    }
  };
}
