// Accept a well-formed X-Request-Id from the edge (so logs correlate across hops), mint one otherwise.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';

const OK = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && OK.test(header) ? header : randomUUID();
}

export async function assignRequestId(ctx: Context, next: Next): Promise<void> {
  ctx.state.requestId = requestIdOf(ctx.get('x-request-id') || undefined);
  await next();
}
