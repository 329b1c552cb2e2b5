// Step 1 of /auth/verify: turn X-Forwarded-Uri into the one path that both we and the upstream
// will understand the same way, or refuse it. Anything ambiguous is a 400: we would rather
// refuse an odd request than authorise one path and have the upstream serve another.
import { BadRequest, UriTooLong } from '../errors.ts';

export const MAX_URI_BYTES = 8192;
/**
 * The longest URI (or path) a per-URI memo of the verify chain keeps: each memo is bounded in
 * entries, and this bounds their bytes (a memo of 8 KiB URIs is 32 times one of 256 bytes).
 */
export const MEMO_URI_LENGTH = 256;

export interface CanonicalUri {
  /** Percent-decoded path, segments joined by '/'. Used for route and rule matching. */
  readonly path: string;
  /** The URI exactly as received (for return_to). */
  readonly raw: string;
}

// RFC 3986 pchar plus '/', minus ';' (path parameters are stripped by some servers, e.g.
// Tomcat/Jetty, before routing: `/api/public;x/../orders`).
const PATH_OK = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/%") PATH_OK[c.charCodeAt(0)] = 1;

const HEX = /^[0-9A-Fa-f]{2}$/;
const DOTS_AND_SPACES = /^[. ]+$/;
/** Non-ASCII characters, whole (`u`: a character outside the BMP is one match, not two halves). */
const NON_ASCII = /[^\x00-\x7f]/gu;
const HAS_ASCII = /[\x00-\x7f]/;
/**
 * Invisible characters: formatting ones (zero-width space and joiners, BOM, soft hyphen, bidi
 * controls) and the other default-ignorable ones (Hangul fillers, variation selectors, the
 * combining grapheme joiner): servers that drop them read `admin\u200b` as `admin`.
 */
const FORMAT_CHAR = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
const ENCODED_IN_DECODED = /%[0-9A-Fa-f]{2}/;
// ignoreBOM: a leading U+FEFF is kept (and refused below), not silently dropped: the upstream gets it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function reject(why: string): never {
  throw new BadRequest(`X-Forwarded-Uri rejected: ${why}`, 'invalid_request');
}

export function canonicalize(uri: string | undefined): CanonicalUri {
  if (uri === undefined || uri === '') reject('missing');
  // Header values arrive as latin1 strings: one char per byte.
  if (uri.length > MAX_URI_BYTES) throw new UriTooLong();
  if (uri.charCodeAt(0) !== 0x2f) reject('must be an absolute path');

  const q = uri.indexOf('?');
  const rawPath = q < 0 ? uri : uri.slice(0, q);
  let hasPercent = false;
  let hasDot = false;
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c >= 128 || PATH_OK[c] === 0) {
      if (c === 0x5c) reject('backslash in path');
      if (c < 0x20 || c === 0x7f) reject('control character in path');
      if (c === 0x3b) reject("';' (path parameter) in path");
      reject('character not allowed in a path (percent-encode it)');
    }
    if (c === 0x25) hasPercent = true;
    else if (c === 0x2e) hasDot = true;
    else if (c === 0x2f && i > 0 && rawPath.charCodeAt(i - 1) === 0x2f) reject('empty path segment (//)');
  }
  if (q >= 0) checkQuery(uri, q + 1);
  // Nothing to decode and no '.' anywhere: no segment can be a dot segment (the common case).
  if (!hasPercent && !hasDot) return { path: rawPath, raw: uri };

  const segments = rawPath.split('/');
  for (let i = 1; i < segments.length; i++) {
    let seg = segments[i]!;
    if (hasPercent && seg.includes('%')) seg = segments[i] = decodeSegment(seg);
    // '.', '..', and their look-alikes: '...' or '.. ' (Windows drops trailing dots and spaces,
    // so '.. ' is '..' there) and all-space segments (dropped there: an empty segment).
    const c0 = seg.charCodeAt(0);
    if ((c0 === 0x2e || c0 === 0x20) && DOTS_AND_SPACES.test(seg)) reject(seg.trim() === '' ? 'all-space segment in path' : 'dot segment in path');
    // 'admin.' and 'admin ' are 'admin' there too, for the same reason.
    const cz = seg.charCodeAt(seg.length - 1);
    if (cz === 0x2e || cz === 0x20) reject("path segment ending in '.' or a space (Windows servers drop them)");
  }
  return { path: hasPercent ? segments.join('/') : rawPath, raw: uri };
}

function decodeSegment(seg: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hex = seg.slice(i + 1, i + 3);
    if (!HEX.test(hex)) reject('invalid percent-encoding');
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  let out: string;
  try {
    out = utf8.decode(new Uint8Array(bytes));
  } catch {
    reject('percent-encoding is not valid UTF-8');
  }
  for (let i = 0; i < out.length; i++) {
    const c = out.charCodeAt(i);
    if (c === 0x2f) reject("encoded '/' in path");
    if (c === 0x5c) reject("encoded '\\' in path");
    // Spring, Tomcat-style stacks strip ';...' path parameters, some after decoding: /api/orders%3Bx
    // is /api/orders there but no route (or a shorter, public one) here.
    if (c === 0x3b) reject("encoded ';' (path parameter) in path");
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) reject('encoded control character in path');
  }
  // A server that decodes twice would see a different path: refuse %25XX.
  if (ENCODED_IN_DECODED.test(out)) reject('double percent-encoding in path');
  // Servers that fold Unicode compatibility forms (IIS best-fit mapping, NFKC in some frameworks)
  // read fullwidth '／', '．．', '‥', 'ｏrders', 'ﬁ' or mathematical '𝐚𝐝𝐦𝐢𝐧' as the ASCII they
  // resemble, and case-insensitive comparisons char by char (Java's equalsIgnoreCase, .NET's
  // OrdinalIgnoreCase) read dotless 'ı' and dotted 'İ' as 'i', and one that upper-cases whole
  // strings reads 'ß' as 'SS': refuse them all.
  const wide = out.match(NON_ASCII);
  if (wide) {
    for (const ch of wide) {
      if (HAS_ASCII.test(ch.normalize('NFKC')) || ch.toUpperCase().charCodeAt(0) < 0x80 || ch.toLowerCase().charCodeAt(0) < 0x80) {
        reject('Unicode look-alike of an ASCII character in path');
      }
      if (FORMAT_CHAR.test(ch)) reject('invisible formatting character in path');
    }
  }
  return out;
}

function checkQuery(uri: string, from: number): void {
  let method = false;
  for (let i = from; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) reject('control, space or non-ASCII character in query');
    if (c === 0x23) reject("'#' in URI");
    if (c === 0x25) {
      if (!HEX.test(uri.slice(i + 1, i + 3))) reject('invalid percent-encoding in query');
      method = true; // an encoded name may spell one (`_%6Dethod`)
    } else if ((c | 0x20) === 0x6d && (uri.charCodeAt(i + 1) | 0x20) === 0x65) method = true; // 'me'
  }
  if (method) checkOverrideParameters(uri, from);
}

/**
 * Query parameters that make the upstream run another method than the one the policy judged:
 * `POST /api/orders/1?_method=DELETE` is a DELETE in Symfony and Laravel, Express's
 * method-override('_method'), Scalatra and akka-http. Refused like the override headers
 * (request-headers.ts). Names are compared as PHP reads them (decoded, '.', ' ' and '[' become
 * '_') and ignoring case. A `_method` in a form body is not visible here: see README.
 */
const OVERRIDE_PARAMETERS = new Set(['_method', 'x-http-method-override', 'x-http-method', 'x-method-override']);

function checkOverrideParameters(uri: string, from: number): void {
  for (const part of uri.slice(from).split(/[&;]/)) {
    const eq = part.indexOf('=');
    let name = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
    // PHP decodes a name and then reads it as a C string, up to its first NUL: `_method%00x` is
    // `_method` to Symfony and Laravel. (Every '%' here starts a valid escape: checkQuery.)
    const nul = name.indexOf('%00');
    if (nul >= 0) name = name.slice(0, nul);
    if (name.includes('%')) {
      try {
        name = decodeURIComponent(name);
      } catch {
        // Not UTF-8, which PHP does not care about (`_method%00%FF` was let through here): its
        // bytes as latin1 characters, none of which folds to the ASCII of the names below.
        name = name.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      }
    }
    // PHP drops leading spaces, reads `_method[...]` as an array named `_method`, then turns
    // '.', ' ' and '[' into '_'.
    name = name.replace(/^ +/, '');
    const bracket = name.indexOf('[');
    if (bracket > 0 && name.indexOf(']', bracket) > 0) name = name.slice(0, bracket);
    const read = name.toLowerCase().replace(/[. []/g, '_');
    if (OVERRIDE_PARAMETERS.has(read) || OVERRIDE_PARAMETERS.has(read.replace(/_/g, '-'))) {
      reject('method override parameter in query (the upstream would run another method than the one authorised)');
    }
  }
}
