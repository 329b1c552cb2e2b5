// Step 2: no declared route, no upstream.
import { NotFound } from '../errors.ts';
import { quiet } from './quiet.ts';
import type { VerifyStep } from './state.ts';

const notFound = quiet(() => new NotFound());

export const matchRoute: VerifyStep = function matchRoute(ctx) {
  const route = ctx.state.policy.table.match(ctx.state.path);
  if (!route) return ctx.fail(notFound);
  ctx.state.route = route;
};
