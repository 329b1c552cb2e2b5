// Step 2: no declared route, no upstream.
import { BadRequest, NotFound } from '../errors.ts';
import { quiet } from './quiet.ts';
import type { VerifyStep } from './state.ts';

const notFound = quiet(() => new NotFound());

export const matchRoute: VerifyStep = function matchRoute(ctx) {
  const { table } = ctx.state.policy;
  const path = ctx.state.path;
  const route = table.match(path);
  if (!route) return ctx.fail(notFound);
  // Step 1's rule, for letter case: a path that a case-insensitive upstream router would give to
  // another route than the one it matches here could differ in meaning between us and it.
  if (table.caseAmbiguous(path, route)) {
    throw new BadRequest('X-Forwarded-Uri rejected: ignoring letter case, it falls under another route', 'invalid_request');
  }
  // And for a `.format` suffix, which Rails and older Spring MVC routers strip (route-table.ts).
  if (table.formatAmbiguous(path, route)) {
    throw new BadRequest('X-Forwarded-Uri rejected: without its .format suffix, it falls under another route', 'invalid_request');
  }
  // And for a '?' or '#' decoded from %3F or %23, where servers that decode the path and read it
  // as a URL again end it (route-table.ts).
  if (table.cutAmbiguous(path, route)) {
    throw new BadRequest("X-Forwarded-Uri rejected: cut at its encoded '?' or '#', it falls under another route", 'invalid_request');
  }
  ctx.state.route = route;
};
