// Set-Cookie headers written by hand: Koa's cookie helper refuses Secure cookies on a plain-http
// hop (the BFF sits behind a TLS-terminating edge) and adds attributes we do not want.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Settings } from '../config/types.ts';
import { LONGEST_SIGN_IN_MS } from '../session/types.ts';
import { splitCookies } from '../verify/cookies.ts';

/** The login-transaction cookie lives as long as the transaction (10 minutes). */
export const TX_TTL_MS = LONGEST_SIGN_IN_MS;
const TX_VALUE = /^[A-Za-z0-9_-]{43}$/;

export function txCookieName(settings: Pick<Settings, 'secureCookies'>): string {
  return settings.secureCookies ? '__Host-goldpath_tx' : 'goldpath_tx';
}

export function browserCookieName(settings: Pick<Settings, 'secureCookies'>): string {
  return settings.secureCookies ? '__Host-goldpath_browser' : 'goldpath_browser';
}

/**
 * The value of the cookie called `name`: undefined when absent, empty, or sent more than once.
 * Read exactly as the sidecar reads the session cookie (verify/cookies.ts): two of them (one planted
 * under a longer Path, which browsers send first) are ambiguous. Taking the first, /auth/session
 * said who was signed in, or not, by the order the browser sent them in, and reported a session
 * (its user, its CSRF token) that the sidecar refuses at every API call.
 */
export function readCookie(ctx: Context, name: string): string | undefined {
  const { session } = splitCookies(ctx.get('cookie') || undefined, name);
  return session ? session : undefined;
}

/**
 * Every value sent for the cookie called `name`, in order, at most `max` of them: for the one
 * request that must find the session among duplicates (logout.ts), where readCookie finds none.
 * Pairs are split as readCookie splits them: a name without '=' counts too (a value of no use).
 */
export function cookieValues(ctx: Context, name: string, max: number): string[] {
  const values: string[] = [];
  for (const part of ctx.get('cookie').split(';')) {
    const pair = part.trim();
    const eq = pair.indexOf('=');
    if ((eq < 0 ? pair : pair.slice(0, eq).trim()) !== name) continue;
    values.push(eq < 0 ? '' : pair.slice(eq + 1).trim());
    if (values.length === max) break;
  }
  return values;
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

/** Sets `name`, SameSite=Lax: it must come back on the IdP's cross-site redirect to the callback. */
function setRandom(ctx: Context, settings: Settings, name: string, value: string, maxAgeS: number): void {
  append(ctx, serialize(name, value, { maxAgeS, sameSite: 'Lax', secure: settings.secureCookies }));
}

/**
 * The login-transaction cookie's value: the one the request carries, so that logins started in two
 * tabs both complete, or 256 new random bits. Set (setTxCookie) once the transaction is saved.
 */
export function txCookieValue(ctx: Context, settings: Settings): string {
  return readRandom(ctx, txCookieName(settings)) ?? randomBytes(32).toString('base64url');
}

/** SameSite=Lax so it comes back on the IdP's top-level redirect to /auth/callback. */
export function setTxCookie(ctx: Context, settings: Settings, value: string): void {
  setRandom(ctx, settings, txCookieName(settings), value, TX_TTL_MS / 1000);
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
  const name = browserCookieName(settings);
  setRandom(ctx, settings, name, readRandom(ctx, name) ?? randomBytes(32).toString('base64url'), settings.sessionMaxMs / 1000);
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
  // Any of that name, even sent twice (which readCookie takes for none): the one set at Path=/ goes.
  if (cookieValues(ctx, name, 1).length > 0) append(ctx, serialize(name, '', { maxAgeS: 0, sameSite: 'Lax', secure: settings.secureCookies }));
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
