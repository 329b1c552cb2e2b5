// Cookie header handling for the hot path: find the session cookie and produce the header the
// upstream gets, with every goldpath cookie removed, in one pass and without a cookie library.

export interface SplitCookies {
  /** The session cookie's value; undefined = absent; null = present more than once (ambiguous). */
  readonly session: string | undefined | null;
  /** The Cookie header without any goldpath cookie ('' when nothing is left). */
  readonly rest: string;
}

/**
 * Whether a cookie the session lookup does not take is still one of ours in the eyes of some
 * server, and so must not reach the upstream: either name (`goldpath`, `__Host-goldpath`) in any
 * letter case (ASP.NET Core reads cookie names ignoring case), or with a `_` suffix
 * (`goldpath_tx`). Cheap for the usual cookies: shorter names than ours are never lower-cased.
 */
function ours(key: string): boolean {
  if (key.length < 8) return false;
  const k = key.toLowerCase();
  const base = k.startsWith('__host-') ? k.slice(7) : k;
  return base === 'goldpath' || base.startsWith('goldpath_');
}

/**
 * A pair whose value holds `, goldpath=` (any case): servers that still split cookies on ','
 * (RFC 2965's separator) read a session cookie there.
 */
const AFTER_COMMA = /,\s*(?:__host-)?goldpath(?:_[^=]*)?\s*=/i;

export function splitCookies(header: string | undefined, name: string): SplitCookies {
  if (!header) return { session: undefined, rest: '' };
  let session: string | undefined | null;
  let rest = '';
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const pair = header.slice(start, end).trim();
    start = end + 1;
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq).trim();
    if (key === name) {
      session = session === undefined ? pair.slice(eq + 1).trim() : null;
    } else if (!ours(key) && !(pair.includes(',') && AFTER_COMMA.test(pair))) {
      rest = rest === '' ? pair : rest + '; ' + pair;
    }
  }
  return { session, rest };
}
