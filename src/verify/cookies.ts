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

/** Whether `s` holds `word` (lower case ASCII) at `at`, ASCII case folded. */
function wordAt(s: string, at: number, word: string): boolean {
  if (at + word.length > s.length) return false;
  for (let i = 0; i < word.length; i++) {
    let c = s.charCodeAt(at + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== word.charCodeAt(i)) return false;
  }
  return true;
}

/** The white space of a regular expression's \s that a latin1 header value can hold. */
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;

/**
 * Whether a pair's value holds `, goldpath=` (any case, `__Host-` and `_suffix` spellings too):
 * servers that still split cookies on ',' (RFC 2965's separator) read a session cookie there.
 * A scan in linear time. (It was the regular expression /,\s*(?:__host-)?goldpath(?:_[^=]*)?\s*=/i,
 * whose backtracking is quadratic: one 32 KiB cookie `a=,goldpath_<spaces>x`, which Traefik lets
 * through, held the sidecar's only thread for over a second, 5 s at the sidecar's 72 KiB limit.)
 */
function hidesOurs(pair: string): boolean {
  const n = pair.length;
  const lastEq = pair.lastIndexOf('=');
  for (let comma = pair.indexOf(','); comma >= 0 && comma < lastEq; comma = pair.indexOf(',', comma + 1)) {
    let j = comma + 1;
    while (j < n && isSpace(pair.charCodeAt(j))) j++;
    if (wordAt(pair, j, '__host-')) j += 7;
    if (!wordAt(pair, j, 'goldpath')) continue;
    j += 8;
    // `goldpath_<anything but =>=`: any '=' after the '_' ends such a name.
    if (pair.charCodeAt(j) === 0x5f /* _ */) return lastEq > j;
    while (j < n && isSpace(pair.charCodeAt(j))) j++;
    if (pair.charCodeAt(j) === 0x3d /* = */) return true;
  }
  return false;
}

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
    } else if (!ours(key) && !(pair.includes(',') && hidesOurs(pair))) {
      rest = rest === '' ? pair : rest + '; ' + pair;
    }
  }
  return { session, rest };
}
