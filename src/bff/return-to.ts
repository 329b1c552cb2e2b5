// `return_to` is only ever a same-origin relative path: anything else becomes '/', so /auth/login
// can never be turned into an open redirect.
import { MAX_URI_BYTES } from '../verify/canonical-uri.ts';

/**
 * As long as a URI the sidecar lets through (its 414 is past this): the sidecar's 302 to sign in
 * carries the URI asked for as return_to, and a shorter limit here sent those users to `/`.
 */
const MAX_LENGTH = MAX_URI_BYTES;

export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_LENGTH) return '/';
  // One leading slash, and not '//' or '/\' (protocol-relative, and browsers read '\' as '/').
  if (value[0] !== '/' || value[1] === '/' || value[1] === '\\') return '/';
  // Control characters and whitespace (browsers strip tab/newline: '/\t/evil.com' is '//evil.com').
  // Backslashes anywhere, too: no legitimate SPA path needs them.
  if (/[\u0000-\u0020\u007f\\]/.test(value)) return '/';
  // Encoded slashes or backslashes in the path could be decoded into '//' by some hop: refuse
  // them. In the query or fragment they are data (`/app?next=%2Fhome`), never a path.
  const end = value.search(/[?#]/);
  if (/%(2f|5c)/i.test(end < 0 ? value : value.slice(0, end))) return '/';
  // Must stay on our origin once resolved (belt and braces over the checks above).
  try {
    const base = 'http://goldpath.invalid';
    const u = new URL(value, base);
    if (u.origin !== base) return '/';
    // The href after the origin, not pathname + search + hash: those drop an empty '?' or '#'.
    const out = u.href.slice(base.length);
    // Dot segments can collapse into a protocol-relative path: '/%2e//evil.com' and
    // '/a/..//evil.com' both normalise to '//evil.com'.
    if (!out.startsWith('/') || out.startsWith('//')) return '/';
    if (underAuth(u.pathname)) return '/';
    // Raw non-ASCII grows up to nine times once percent-encoded: the Location stays bounded.
    return out.length > MAX_LENGTH ? '/' : out;
  } catch {
    return '/';
  }
}

/**
 * Whether a path is one the edge sends to the BFF (traefik/dynamic/goldpath.yml's `auth` router:
 * `/auth/...`, case-sensitive, matched decoded): no page to come back to. A sign-in that returned
 * to /auth/login started another one (a link could chain them, each counted against the sign-in
 * limit), to /auth/logout ended on a 405, to /auth/callback on a 400 page.
 */
function underAuth(pathname: string): boolean {
  let path = pathname;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    // Invalid percent-encoding: the edge does not route it by a decoded path either.
  }
  return path.startsWith('/auth/');
}
