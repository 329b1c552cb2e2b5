// Accept a well-formed X-Request-Id from the edge (so logs correlate across hops), mint one otherwise.
import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';

const OK = /^[A-Za-z0-9._:-]{1,128}$/;

// Minted ids are this process's random prefix and a counter: unique across processes (48 random
// bits each) and within one, and cheap. They correlate log lines; nothing trusts them. (randomUUID
// built its 36 characters from some twenty string pieces: ~600 bytes of garbage per allowed
// /auth/verify answer, the largest allocation of the sidecar's own on its hot path.)
const PREFIX = `${randomBytes(6).toString('base64url')}-`;
let minted = 0;

export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && OK.test(header) ? header : PREFIX + (++minted).toString(36);
}

export async function assignRequestId(ctx: Context, next: Next): Promise<void> {
  ctx.state.requestId = requestIdOf(ctx.get('x-request-id') || undefined);
  await next();
}
