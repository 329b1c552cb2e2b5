// Step 2: no declared route, no upstream.
import { NotFound } from '../errors.ts';
import type { VerifyMiddleware } from './state.ts';

export const matchRoute: VerifyMiddleware = async function matchRoute(ctx, next) {
  const route = ctx.state.policy.table.match(ctx.state.path);
  if (!route) throw new NotFound();
  ctx.state.route = route;
  await next();
};
