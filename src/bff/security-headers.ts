// Headers on every BFF response. The callback URL carries the authorization code and state, and
// the BFF's pages link elsewhere: no Referer may carry them on (RFC 9700 section 4.2.4). Nothing
// the BFF answers is meant to be framed or sniffed as another type.
import type { Context, Next } from 'koa';

export async function securityHeaders(ctx: Context, next: Next): Promise<void> {
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  await next();
}
