// The one place errors become responses: {"error", "error_description"} JSON, no-store,
// 5xx details never exposed. Non-Goldpath errors are unexpected: logged, answered as opaque 500.
import type { Context, Next } from 'koa';
import { GoldpathError } from '../errors.ts';
import { errorFields, type Logger } from '../log.ts';
import { FloodGate } from './flood-gate.ts';

export function errorHandler(log: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      render(ctx, err, log);
    }
  };
}

export function render(ctx: Context, err: unknown, log: Logger): void {
  const ge = err instanceof GoldpathError ? err : undefined;
  // Koa's own HttpErrors (e.g. body too large from a parser) carry status/expose: honour 4xx.
  const status = ge?.status ?? clientStatus(err) ?? 500;
  if (status >= 500) {
    // A 503 is a dependency away: one line a second, saying how many it stands for. A 500 is a
    // bug, each worth its line.
    // A held 503 keeps the error itself: its fields are made only for a line that is said.
    const failure = { err, reqId: ctx.state.requestId as string | undefined };
    const held = status === 503 && ge ? gateOf(log).pass(performance.now(), failure) : 0;
    if (held !== undefined) sayFailed(log, failure, held);
  }
  const code = ge?.code ?? (status >= 500 ? 'server_error' : 'invalid_request');
  // A 503 says what the client can do (try again) without saying which dependency failed.
  const description = status === 503 && ge ? 'temporarily unavailable: try again shortly' : status >= 500 ? 'internal error' : (err as Error).message;
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  if (ge?.headers) ctx.set(ge.headers);
  ctx.body = { error: code, error_description: description, ...(ge?.extra ?? {}) };
}

interface Failure { err: unknown; reqId: string | undefined }

function sayFailed(log: Logger, f: Failure, also: number): void {
  log.error({ err: errorFields(f.err), reqId: f.reqId, ...(also > 0 ? { alsoFailed: also } : {}) }, 'request failed');
}

const gates = new WeakMap<Logger, FloodGate<Failure>>();
function gateOf(log: Logger): FloodGate<Failure> {
  let gate = gates.get(log);
  // The 503s held in a second are said when it ends (the last one, standing for the others).
  if (gate === undefined) gates.set(log, (gate = new FloodGate<Failure>(1_000, (last, also) => sayFailed(log, last, also))));
  return gate;
}

function clientStatus(err: unknown): number | undefined {
  const s = (err as { status?: unknown; expose?: unknown })?.status;
  return typeof s === 'number' && s >= 400 && s < 500 ? s : undefined;
}
