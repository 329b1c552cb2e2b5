// Step 5: a state-changing request riding on a session must prove it comes from our SPA: the
// session's CSRF token in X-CSRF-Token, and Fetch-Metadata / Origin consistent with our origins.
import { timingSafeEqual } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { CsrfError } from '../errors.ts';
import { CachedSession } from '../session/cached-session.ts';
import { quiet } from './quiet.ts';
import type { RequestHeaders } from './request-headers.ts';
import type { VerifyDeps, VerifyPolicy, VerifyStep } from './state.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A WebSocket handshake: a GET, yet no read CORS guards. Its answer is a connection the page
 * reads and writes whatever Origin it came from, and browsers send the SameSite=Strict session
 * cookie on it from every page of the same site (any port of localhost, any sibling subdomain).
 * A browser always sends Sec-WebSocket-Key (forwardAuth passes it on: it is no hop-by-hop header)
 * and, with Fetch Metadata, Sec-Fetch-Mode: websocket.
 */
function isWebSocketHandshake(h: RequestHeaders): boolean {
  return h.webSocketKey !== undefined || h.secFetchMode === 'websocket';
}

export function checkCsrf(deps: VerifyDeps): VerifyStep {
  const publicOrigin = deps.settings.publicOrigin;

  /** Origin, when present, ours or allowed; Sec-Fetch-Site, when present, same-origin (or same-site from an allowed origin). */
  function checkSite(h: RequestHeaders, policy: VerifyPolicy): void {
    const origin = h.origin;
    const allowedCrossOrigin = origin !== undefined && origin !== publicOrigin && policy.allowedOrigins.has(origin);
    if (origin !== undefined && origin !== publicOrigin && !allowedCrossOrigin) throw quiet(() => new CsrfError('Origin not allowed'));
    const site = h.secFetchSite;
    if (site !== undefined && site !== 'same-origin' && !(site === 'same-site' && allowedCrossOrigin)) {
      throw quiet(() => new CsrfError('Sec-Fetch-Site not allowed'));
    }
  }

  return function checkCsrfStep(ctx) {
    const s = ctx.state;
    if (!s.session) return;
    const h = ctx.h;
    if (SAFE.has(s.method)) {
      // No token: the browser's WebSocket API cannot send a header. The origins are what tell.
      if (isWebSocketHandshake(h)) checkSite(h, s.policy);
      return;
    }
    const token = h.csrfToken;
    // A cached session keeps its CSRF token outside its (parsed on demand) secrets.
    const expected = s.session instanceof CachedSession ? s.session.csrf : s.session.secrets.csrf;
    if (typeof token !== 'string' || !safeEqual(token, expected)) throw quiet(() => new CsrfError('missing or wrong X-CSRF-Token'));
    checkSite(h, s.policy);
  };
}
