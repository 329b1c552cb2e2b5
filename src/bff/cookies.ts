// Set-Cookie headers written by hand: Koa's cookie helper refuses Secure cookies on a plain-http
// hop (the BFF sits behind a TLS-terminating edge) and adds attributes we do not want.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Settings } from '../config/types.ts';
import { LONGEST_SIGN_IN_MS } from '../session/types.ts';

/** The login-transaction cookie lives as long as the transaction (10 minutes). */
export const TX_TTL_MS = LONGEST_SIGN_IN_MS;
const TX_VALUE = /^[A-Za-z0-9_-]{43}$/;

export function txCookieName(settings: Pick<Settings, 'secureCookies'>): string {
  return settings.secureCookies ? '__Host-goldpath_tx' : 'goldpath_tx';
}

export function browserCookieName(settings: Pick<Settings, 'secureCookies'>): string {
  return settings.secureCookies ? '__Host-goldpath_browser' : 'goldpath_browser';
}

/** The first cookie called `name` in the Cookie header (undefined when absent or empty). */
export function readCookie(ctx: Context, name: string): string | undefined {
  const header = ctx.get('cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return v === '' ? undefined : v;
    }
  }
  return undefined;
}

function serialize(name: string, value: string, attrs: { maxAgeS: number; sameSite: 'Strict' | 'Lax'; secure: boolean }): string {
  // No Domain (host-only), Path=/ (required by __Host-), HttpOnly always.
  return `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(attrs.maxAgeS))}; HttpOnly; SameSite=${attrs.sameSite}${attrs.secure ? '; Secure' : ''}`;
}

function append(ctx: Context, cookie: string): void {
  const prev = ctx.response.get('Set-Cookie') as unknown as string[] | string | undefined;
  const list = prev ? ([] as string[]).concat(prev) : [];
  ctx.set('Set-Cookie', [...list, cookie]);
}

/** The session cookie: SameSite=Strict, lives until the session's absolute expiry at most. */
export function setSessionCookie(ctx: Context, settings: Settings, value: string, expiresAt: number): void {
  append(ctx, serialize(settings.cookieName, value, { maxAgeS: (expiresAt - Date.now()) / 1000, sameSite: 'Strict', secure: settings.secureCookies }));
}

export function clearSessionCookie(ctx: Context, settings: Settings): void {
  append(ctx, serialize(settings.cookieName, '', { maxAgeS: 0, sameSite: 'Strict', secure: settings.secureCookies }));
}

/** A cookie of ours holding 256 random bits (TX_VALUE), when the request carries a well-formed one. */
function readRandom(ctx: Context, name: string): string | undefined {
  const v = readCookie(ctx, name);
  return v && TX_VALUE.test(v) ? v : undefined;
}

/** Sets `name` (SameSite=Lax) to the value the request carries, or to 256 new random bits. */
function ensureRandom(ctx: Context, settings: Settings, name: string, maxAgeS: number): string {
  const value = readRandom(ctx, name) ?? randomBytes(32).toString('base64url');
  append(ctx, serialize(name, value, { maxAgeS, sameSite: 'Lax', secure: settings.secureCookies }));
  return value;
}

/**
 * The login-transaction cookie: SameSite=Lax so it comes back on the IdP's top-level redirect to
 * /auth/callback. Reused when present, so logins started in two tabs both complete.
 */
export function ensureTxCookie(ctx: Context, settings: Settings): string {
  return ensureRandom(ctx, settings, txCookieName(settings), TX_TTL_MS / 1000);
}

export function readTxCookie(ctx: Context, settings: Settings): string | undefined {
  return readRandom(ctx, txCookieName(settings));
}

/**
 * The browser cookie: only the key under which the store remembers the session of this browser's
 * last sign-in, so the next sign-in replaces it (SignIn.browser). It grants nothing. The
 * transaction cookie cannot be that key: it lives TX_TTL_MS, and a sign-in an hour later (a link
 * from another site, which the Strict session cookie does not come back on) would leave the old
 * session behind. Lax for the IdP's redirect to the callback; renewed at every sign-in, and kept
 * as long as the session that sign-in creates can live.
 */
export function ensureBrowserCookie(ctx: Context, settings: Settings): void {
  ensureRandom(ctx, settings, browserCookieName(settings), settings.sessionMaxMs / 1000);
}

export function readBrowserCookie(ctx: Context, settings: Settings): string | undefined {
  return readRandom(ctx, browserCookieName(settings));
}

/**
 * At logout: the session it keyed is gone, and a browser that signed out keeps no identifier of
 * ours (the next sign-in makes a new one). Only sent to a browser that has one.
 */
export function clearBrowserCookie(ctx: Context, settings: Settings): void {
  const name = browserCookieName(settings);
  if (readCookie(ctx, name) !== undefined) append(ctx, serialize(name, '', { maxAgeS: 0, sameSite: 'Lax', secure: settings.secureCookies }));
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

/** Constant-time string comparison (for CSRF tokens and cookie bindings). */
export function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y) && a.length === b.length;
}
