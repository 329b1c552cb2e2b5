// Runs the /auth/verify chain for one request on a bare node:http request and response: steps in
// order until one answers, fails or throws; errors rendered by the one error renderer; one writeHead.
import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Context } from 'koa';
import type { RouteConfig } from '../config/types.ts';
import { GoldpathError, StoreUnavailable } from '../errors.ts';
import { render } from '../http/error-handler.ts';
import { requestIdOf } from '../http/request-id.ts';
import { measure } from './measure.ts';
import { describeRequest } from './canonicalize-request.ts';
import { VerifyContext, type VerifyDeps, type VerifyStep } from './state.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * A rendered 4xx: status, headers and body, ready for writeHead and end. The body is kept as a
 * string, not bytes: Node joins a string body to the head and writes both with one write, where
 * a Buffer body goes out as a second chunk of a writev (2.7 k instructions more per answer,
 * callgrind, test/bench/instructions.ts).
 */
interface Prepared {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: string;
  readonly code: string;
}

export function runChain(deps: VerifyDeps, steps: readonly VerifyStep[]): (req: IncomingMessage, res: ServerResponse) => void {
  const record = measure(deps);
  const log = deps.log;
  // LOG_LEVEL=debug logs every answer (never the query, a cookie or a header value): the trail of
  // a refusal nobody can explain. Read once: at info the hot path pays nothing for it.
  const logAnswers = log.isLevelEnabled('debug');
  // A 4xx renders the same for the same error object (render reads it, never the request), and
  // the chain reuses error objects for its common denials (load-session.ts, authorize.ts...):
  // their rendering is kept with them and a repeated denial costs no JSON work.
  const prepared = new WeakMap<GoldpathError, Prepared>();

  /** The error renderer is written against Koa's context; ours has the members it uses. */
  function renderError(ctx: VerifyContext, err: unknown): void {
    ctx.out.length = 0; // nothing a step prepared survives an error
    ctx.error = undefined;
    // The store's failures only: an IdP that cannot refresh a token is a 503 too, not Redis's.
    if (err instanceof StoreUnavailable) deps.metrics.storeErrors.inc();
    render(ctx as unknown as Context, err, log);
  }

  function prepare(ctx: VerifyContext, err: GoldpathError): Prepared {
    renderError(ctx, err);
    const body = JSON.stringify(ctx.body);
    const headers = [...ctx.out, 'Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(body))];
    const code = (ctx.body as { error: string }).error;
    return { status: ctx.status, headers, body, code };
  }

  function answerError(ctx: VerifyContext, err: unknown): void {
    if (err instanceof GoldpathError && err.status < 500) {
      let p = prepared.get(err);
      if (p === undefined) {
        p = prepare(ctx, err);
        prepared.set(err, p);
      }
      ctx.status = p.status;
      ctx.state.outcome ??= p.code;
      let headers = p.headers;
      if (logAnswers || ctx.state.outcome === 'error') headers = [...headers, 'X-Request-Id', ctx.state.requestId];
      ctx.res.writeHead(p.status, headers as string[]);
      ctx.res.end(p.body);
      return;
    }
    renderError(ctx, err);
    send(ctx);
  }

  // X-Request-Id: an allow's goes to the upstream (Traefik copies it, authResponseHeaders). Any
  // other answer reaches the client through the edge, and carries one when a log line names it,
  // so a user can quote it: a 5xx, a policy error (answerError), every answer at LOG_LEVEL=debug.
  // Not the common refusals at info: there it would be a header Node validates and writes, ~3 %
  // of a 401's instructions (callgrind), that no log line could be matched with.
  function send(ctx: VerifyContext): void {
    const h = ctx.out;
    const allowed = ctx.status === 200 && ctx.state.outcome !== 'preflight';
    if (allowed || logAnswers || ctx.status >= 500) h.push('X-Request-Id', ctx.state.requestId);
    const body = ctx.body;
    if (typeof body === 'string') {
      h.push('Content-Length', '0');
      ctx.res.writeHead(ctx.status, h);
      ctx.res.end();
    } else {
      const json = JSON.stringify(body);
      h.push('Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(json)));
      ctx.res.writeHead(ctx.status, h);
      ctx.res.end(json);
    }
  }

  /** Answers and records; `failed` when a step threw `thrown`. */
  function finish(ctx: VerifyContext, start: number, failed: boolean, thrown: unknown): void {
    try {
      if (failed) answerError(ctx, thrown);
      else if (ctx.status === 0) answerError(ctx, new Error('the verify chain ended without an answer'));
      else if (ctx.error !== undefined) answerError(ctx, ctx.error);
      else send(ctx);
    } catch (err) {
      // An answer Node refuses to write (a header value with a control character...): 500.
      if (ctx.res.headersSent) throw err;
      ctx.state.outcome = undefined;
      renderError(ctx, err);
      send(ctx);
    }
    const seconds = (performance.now() - start) / 1000;
    record(ctx, seconds);
    if (logAnswers) logAnswer(ctx, seconds);
  }

  function logAnswer(ctx: VerifyContext, seconds: number): void {
    const s = ctx.state;
    const { method, path } = describeRequest(ctx);
    log.debug({
      reqId: s.requestId, method, path, route: (s.route as RouteConfig | undefined)?.name,
      status: ctx.status, outcome: s.outcome ?? (ctx.body as { error?: string }).error, ms: Math.round(seconds * 1e6) / 1e3,
    }, 'verify answer');
  }

  /** The rest of the chain once a step returned a promise (a session or decision not cached). */
  async function resume(ctx: VerifyContext, start: number, pending: Promise<void>, i: number): Promise<void> {
    let failed = false;
    let thrown: unknown;
    try {
      await pending;
      while (ctx.status === 0 && ++i < steps.length) {
        const next = steps[i]!(ctx);
        if (next !== undefined) await next;
      }
    } catch (err) {
      failed = true;
      thrown = err;
    }
    finish(ctx, start, failed, thrown);
  }

  const giveUp = (ctx: VerifyContext) => (err: unknown) => {
    log.error({ err: (err as Error)?.message, reqId: ctx.state.requestId }, 'verify: could not answer');
    ctx.res.destroy();
  };

  // Steps run synchronously until one returns a promise: a request answered from the caches
  // (the hot path, and every refusal) allocates no promise and waits for no microtask.
  return function verifyRequest(req, res) {
    const start = performance.now();
    const ctx = new VerifyContext(req, res, requestIdOf);
    ctx.state.startedAt = start;
    try {
      for (let i = 0; i < steps.length && ctx.status === 0; i++) {
        const pending = steps[i]!(ctx);
        if (pending !== undefined) {
          resume(ctx, start, pending, i).catch(giveUp(ctx));
          return;
        }
      }
    } catch (err) {
      try {
        finish(ctx, start, true, err);
      } catch (e) {
        giveUp(ctx)(e);
      }
      return;
    }
    try {
      finish(ctx, start, false, undefined);
    } catch (e) {
      giveUp(ctx)(e);
    }
  };
}
