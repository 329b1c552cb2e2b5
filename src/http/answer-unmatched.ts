// What a request that no route answered gets, in both processes: 404, or 405 with `Allow` when the
// path exists under other methods. @koa/router's allowedMethods only sets a status (405, or 501
// for a method it does not know) and an Allow header, after everything inside it has run; so this
// middleware sits outside the router and turns that bare status into the one error shape.
// Both 405 and 501 become 405: an unknown method is the client's mistake, not a server error.
// A 501 with an empty Allow is an unknown method (PROPFIND, TRACE...) on a path nothing serves
// under any method: a 404, like that path under any other method (it went out as @koa/router's
// bare 501 "Not Implemented", in plain text).
import type { Context, Next } from 'koa';
import { MethodNotAllowed, NotFound } from '../errors.ts';

export function answerUnmatched(description: string) {
  return async function answerUnmatched(ctx: Context, next: Next): Promise<void> {
    await next();
    if (ctx.body !== undefined && ctx.body !== null) return;
    const allow = ctx.response.get('Allow');
    if ((ctx.status === 405 || ctx.status === 501) && allow !== '') throw new MethodNotAllowed(allow);
    if (ctx.status === 404 || ctx.status === 501) throw new NotFound(description);
  };
}
