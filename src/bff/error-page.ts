// Browser-facing endpoints (login, callback) end in a page, not a JSON blob, when something is
// wrong. The status and wording still come from src/http/error-handler.ts; this only re-dresses
// its JSON body as HTML for clients that prefer HTML.
import type { Context, Next } from 'koa';
import { render } from '../http/error-handler.ts';
import type { Logger } from '../log.ts';

/** What a 503 says: the generic renderer hides 5xx messages ("internal error"), which tells a user nothing. */
// "Sign in again": a callback that met an outage has used its one-time sign-in; reloading it cannot work.
export const UNAVAILABLE_TEXT = 'The sign-in service is temporarily unavailable. Sign in again in a moment.';

function esc(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The BFF's pages (inline styles only). The edge's cors middleware (traefik/dynamic/goldpath.yml)
 * sets this very policy on every /api and /auth answer, replacing this one: keep the two equal.
 */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'";

/**
 * A 200 page that sends the browser on to `url` (same origin) by itself: a navigation that this
 * page starts is same-site, so it carries SameSite=Strict cookies, where a 302 inside a navigation
 * that another site started does not (callback.ts). A link for a browser that ignores the refresh.
 */
export function continuePage(ctx: Context, url: string): void {
  ctx.status = 200;
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', PAGE_CSP);
  ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${esc(url)}"><title>Signed in</title></head>
<body><p>Signed in. <a href="${esc(url)}">Continue</a></p></body></html>`;
}

/**
 * The sign-in a page offers to start again: the one that failed, to the same page and IdP, when the
 * handler knew them (ctx.state.signInAgain, set by signInAgain()); else a plain one.
 */
function signInAgainOf(ctx: Context): string {
  const again = ctx.state['signInAgain'];
  return typeof again === 'string' ? again : '/auth/login';
}

/**
 * Remembers, for the error page, how to start this sign-in again: `/auth/login` with its
 * `return_to` (a path safeReturnTo accepted) and, for an IdP other than the default, its `idp`.
 */
export function signInAgain(ctx: Context, returnTo: string, idp: string | undefined): void {
  const q = new URLSearchParams({ return_to: returnTo });
  if (idp !== undefined) q.set('idp', idp);
  ctx.state['signInAgain'] = `/auth/login?${q.toString()}`;
}

export function htmlErrorPages(log: Logger, onError?: (err: unknown) => void) {
  return async function renderHtmlErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (err) {
      onError?.(err);
      render(ctx, err, log);
      const body = ctx.body as { error?: string; error_description?: string };
      if (ctx.status === 503) {
        body.error_description = UNAVAILABLE_TEXT;
        ctx.set('Retry-After', '5');
      }
      if (ctx.accepts('json', 'html') !== 'html') return;
      const title = ctx.status >= 500 ? 'Sign-in is unavailable right now' : 'Sign-in failed';
      ctx.type = 'html';
      ctx.set('Content-Security-Policy', PAGE_CSP);
      ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><h1>${esc(title)}</h1>
<p>${esc(body.error_description ?? 'The request could not be completed.')}</p>
<p><code>${esc(body.error ?? 'error')}</code></p>
<p><a href="${esc(signInAgainOf(ctx))}">Sign in again</a> &middot; <a href="/">Home</a></p>
</body></html>`;
    }
  };
}
