// Cookie header handling for the hot path: find the session cookie and produce the header the
// upstream gets, with every goldpath cookie removed, in one pass and without a cookie library.

export interface SplitCookies {
  /** The session cookie's value; undefined = absent; null = present more than once (ambiguous). */
  readonly session: string | undefined | null;
  /** The Cookie header without any goldpath cookie ('' when nothing is left). */
  readonly rest: string;
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
    } else if (!key.startsWith(name + '_')) {
      rest = rest === '' ? pair : rest + '; ' + pair;
    }
  }
  return { session, rest };
}
