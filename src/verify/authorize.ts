// Step 7: ask the PDP. Public routes need no rule. Deny, no rule and a throwing policy all give
// 403: the PDP never lets an exception through, and we never allow on doubt.
import { Forbidden } from '../errors.ts';
import type { VerifyDeps, VerifyMiddleware } from './state.ts';

export function authorize(deps: VerifyDeps): VerifyMiddleware {
  return async function authorizeMw(ctx, next) {
    const s = ctx.state;
    if (s.route.auth === 'session') {
      const d = await s.policy.pdp.decide(s.session!.secrets.user, { method: s.method, path: s.path, route: s.route.name });
      if (!d.allow) {
        s.outcome = d.outcome === 'allow' ? 'deny' : d.outcome;
        if (d.outcome === 'error') deps.log.warn({ reqId: s.requestId, route: s.route.name, rule: d.rule }, 'policy error: denied');
        throw new Forbidden();
      }
    }
    await next();
  };
}
