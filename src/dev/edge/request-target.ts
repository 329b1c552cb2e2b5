// Request targets: Traefik's encoded-character filter, normalisation and path sanitising.

const REFUSED_ENCODINGS = new Set(['2F', '5C', '00', '3B', '25', '3F', '23']);
const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** A raw path Go's URL.EscapedPath keeps as it is (url.validEncoded): only these characters. */
const GO_KEEPS_RAW_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]/%]*$/;
/** What Go's path escaping leaves alone (url.shouldEscape, encodePath): every other byte is %XX. */
const GO_PATH_PLAIN = /[A-Za-z0-9\-._~$&+,/:;=@]/;

/**
 * The path Traefik routes on and forwards, and the raw query (with its "?"), or undefined when
 * Traefik would refuse the request (400).
 */
export function sanitizeRequestTarget(target: string): { path: string; query: string } | undefined {
  if (!target.startsWith('/') || /[^\x21-\x7e]/.test(target) || target.includes('#')) return undefined;
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  let path = '';
  const bytes: number[] = [];
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i]!;
    if (c !== '%') { path += c; bytes.push(c.charCodeAt(0)); continue; }
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
    const upper = hex.toUpperCase();
    if (REFUSED_ENCODINGS.has(upper)) return undefined;
    const byte = parseInt(hex, 16);
    bytes.push(byte);
    const ch = String.fromCharCode(byte);
    path += UNRESERVED.test(ch) ? ch : `%${upper}`;
    i += 2;
  }
  // With a raw " < > \ ^ ` { | } (a browser sends | and ^ as they are) Go ignores the raw path and
  // escapes the decoded one anew: Traefik checks its encodedCharacters on that, routes on it and
  // sends it on, as X-Forwarded-Uri and to the upstream alike. Left raw here, the sidecar refused
  // what production lets through. (Go's escaping would also decode a %2F or %3B of such a path;
  // those stay refused above.)
  if (!GO_KEEPS_RAW_PATH.test(rawPath)) {
    path = bytes.map((b) => {
      const ch = String.fromCharCode(b);
      return GO_PATH_PLAIN.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }).join('');
    if (/%5C/.test(path)) return undefined; // a raw \ is now %5C, which allowEncodedBackSlash: false refuses
  }
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  let clean = '/' + segments.join('/');
  if (path.endsWith('/') && clean !== '/') clean += '/';
  return { path: clean, query };
}
