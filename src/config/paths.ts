// Canonical paths in config. Route prefixes and rule patterns are compared with the canonical
// request path that /auth/verify computes, so they must be canonical themselves: anything the
// sidecar would reject (or decode) can never match and is almost certainly a mistake.

/** RFC 3986 pchar without '%' (no encodings in config) and without '*' (not a wildcard here). */
const SEGMENT = /^[A-Za-z0-9\-._~!$&'()+,;=:@]+$/;

/** Quotes a piece of the value into a message (Cursor.show: it may come from the environment). */
export type Quote = (text: string) => string;

/** Why `segment` is not a canonical literal path segment, or undefined if it is. */
export function segmentProblem(segment: string, quote: Quote = JSON.stringify): string | undefined {
  if (segment === '.' || segment === '..') return 'must not contain dot segments (. or ..)';
  if (segment.includes('%')) return 'must not contain percent-encoding (write the decoded characters)';
  if (segment.includes('*')) return 'must not contain *';
  // The sidecar refuses every request whose path holds these (src/verify/canonical-uri.ts): a
  // prefix or rule with one could never match.
  if (segment.includes(';')) return 'must not contain ; (the sidecar refuses path parameters in every request, so it could never match)';
  if (segment.endsWith('.')) return 'must not end with . (the sidecar refuses such a segment in every request, as Windows servers drop it, so it could never match)';
  if (!SEGMENT.test(segment)) return `has a character not allowed in a path segment in ${quote(segment)}`;
  return undefined;
}

/**
 * Why `p` is not an absolute canonical path (starts with '/', no trailing slash, no '//', no dot
 * segments, no '%', '?', '#'), or undefined if it is. `segmentCheck` vets each segment.
 */
export function pathProblem(p: string, quote: Quote = JSON.stringify,
  segmentCheck: (s: string) => string | undefined = (s) => segmentProblem(s, quote)): string | undefined {
  if (!p.startsWith('/')) return 'must start with /';
  if (p.includes('?')) return 'must not contain ? (a query is not part of a path)';
  if (p.includes('#')) return 'must not contain # (a fragment never reaches the server)';
  if (p.includes('\\')) return 'must not contain a backslash';
  if (p.length > 1 && p.endsWith('/')) return 'must not end with / (prefixes match on segment boundaries already)';
  if (p.includes('//')) return 'must not contain //';
  if (p === '/') return undefined;
  for (const s of p.slice(1).split('/')) {
    const why = segmentCheck(s);
    if (why) return why;
  }
  return undefined;
}

/** Segments of a canonical path, without the leading empty one. */
export function splitPath(p: string): string[] {
  return p === '/' ? [] : p.slice(1).split('/');
}
