// Step 5: a state-changing request riding on a session must prove it comes from our SPA: the
// session's CSRF token in X-CSRF-Token, and Fetch-Metadata / Origin consistent with our origins.
import { timingSafeEqual } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { CsrfError } from '../errors.ts';
import { CachedSession } from '../session/cached-session.ts';
import { quiet } from './quiet.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function checkCsrf(deps: VerifyDeps): VerifyStep {
  const publicOrigin = deps.settings.publicOrigin;
  return function checkCsrfStep(ctx) {
    const s = ctx.state;
    if (!s.session || SAFE.has(s.method)) return;
    const h = ctx.h;
    const token = h.csrfToken;
    // A cached session keeps its CSRF token outside its (parsed on demand) secrets.
    const expected = s.session instanceof CachedSession ? s.session.csrf : s.session.secrets.csrf;
    if (typeof token !== 'string' || !safeEqual(token, expected)) throw quiet(() => new CsrfError('missing or wrong X-CSRF-Token'));
    const origin = h.origin;
    const allowedCrossOrigin = origin !== undefined && origin !== publicOrigin && s.policy.allowedOrigins.has(origin);
    if (origin !== undefined && origin !== publicOrigin && !allowedCrossOrigin) throw quiet(() => new CsrfError('Origin not allowed'));
    const site = h.secFetchSite;
    if (site !== undefined && site !== 'same-origin' && !(site === 'same-site' && allowedCrossOrigin)) {
      throw quiet(() => new CsrfError('Sec-Fetch-Site not allowed'));
    }
  };
}
