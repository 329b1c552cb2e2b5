// The request headers the chain reads, found in one pass over rawHeaders. Node builds req.headers
// one property at a time, into a dictionary-mode object whose every read is a slow lookup; the
// sidecar reads ten headers and ignores the rest, so it never reads them from that object. (Node
// builds the object anyway, for every HTTP/1.1 request, to look for an Expect field: what this
// saves is the ten lookups, not the object.)
// Repeated headers are joined exactly as Node joins them in req.headers (Cookie with '; ', the
// others with ', '), so a duplicated X-Forwarded-Uri or Origin is still refused the same way.

export interface RequestHeaders {
  /** X-Forwarded-Method */
  method: string | undefined;
  /** X-Forwarded-Uri */
  uri: string | undefined;
  cookie: string | undefined;
  requestId: string | undefined;
  origin: string | undefined;
  secFetchMode: string | undefined;
  secFetchSite: string | undefined;
  csrfToken: string | undefined;
  /** Access-Control-Request-Method */
  preflightMethod: string | undefined;
  /** Sec-WebSocket-Key: the request is a WebSocket handshake (check-csrf.ts). */
  webSocketKey: string | undefined;
  /**
   * The first header whose meaning could differ between us and the upstream (see `override`),
   * which step 1 refuses.
   */
  confusing: string | undefined;
}

const join = (prev: string | undefined, v: string, sep: string) => (prev === undefined ? v : prev + sep + v);

/**
 * Whether `name` is the header `lower` (same length already). Traefik (Go) sends header names in
 * canonical form (X-Forwarded-Uri, Cookie, X-Csrf-Token): that spelling is compared first. The
 * others are compared letter by letter, ASCII case folded: a lower-cased copy per header of the
 * same length (Accept against Cookie and Origin, X-Forwarded-For against X-Forwarded-Uri) was
 * garbage on every request.
 */
function is(name: string, canonical: string, lower: string): boolean {
  if (name === canonical) return true;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Whether `name` is `lower` spelt with at least one other separator for a `-`, ASCII case folded.
 * CGI-style servers name a header's variable by upper-casing it and turning every character that
 * is not a letter or a digit into `_` (RFC 3875 4.1.18; Traefik's "header aliases" security notes):
 * for them X_Auth_User, X.Auth.User, X~Auth~User and X+Auth+User are all HTTP_X_AUTH_USER. Any
 * tchar of RFC 9110 other than a letter or a digit may stand for a `-`.
 */
function aliased(name: string, lower: string): boolean {
  let alias = false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    const want = lower.charCodeAt(i);
    if (want === 45 && c !== 45 && SEPARATOR_ALIAS[c] === 1) {
      alias = true;
      continue;
    }
    if (c >= 65 && c <= 90) c += 32;
    if (c !== want) return false;
  }
  return alias;
}

/** 1 for the tchars (RFC 9110 5.6.2) that are neither letters, digits nor `-`: ! # $ % & ' * + . ^ _ ` | ~ */
const SEPARATOR_ALIAS = new Uint8Array(128);
for (const ch of "!#$%&'*+.^_`|~") SEPARATOR_ALIAS[ch.charCodeAt(0)] = 1;

/**
 * Headers an upstream may read as something else than the edge and the sidecar did, which step 1
 * refuses (found in the same pass, by length like the rest, so other headers cost nothing more):
 * - a method override (X-HTTP-Method-Override and kin): many frameworks run the method it names,
 *   while the sidecar authorised (and, for GET, skipped the CSRF check of) the real one;
 * - a look-alike of a header the sidecar sets, spelt with `_`, `.` or another separator for a `-`
 *   (X_Auth_User, X.Auth.User): Traefik replaces X-Auth-User only, but CGI-style servers (Rack,
 *   WSGI, PHP) read every such spelling as HTTP_X_AUTH_USER;
 * - a path override (X-Original-URL, X-Rewrite-URL): Symfony's and Zend's request objects and
 *   IIS URL Rewrite route by it instead of the request line, so a public X-Forwarded-Uri could
 *   carry a session route's path to such an upstream.
 */
const override = (name: string, canonical: string, lower: string) => is(name, canonical, lower) || aliased(name, lower);

export function readRequestHeaders(raw: readonly string[]): RequestHeaders {
  const h: RequestHeaders = {
    method: undefined, uri: undefined, cookie: undefined, requestId: undefined, origin: undefined,
    secFetchMode: undefined, secFetchSite: undefined, csrfToken: undefined, preflightMethod: undefined,
    webSocketKey: undefined, confusing: undefined,
  };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const v = raw[i + 1]!;
    // The length picks the few candidates; only those are compared.
    switch (name.length) {
      case 11:
        if (aliased(name, 'x-auth-user')) h.confusing ??= name;
        break;
      case 13:
        if (override(name, 'X-Http-Method', 'x-http-method') || override(name, 'X-Rewrite-Url', 'x-rewrite-url')) h.confusing ??= name;
        break;
      case 17:
        if (is(name, 'Sec-Websocket-Key', 'sec-websocket-key')) h.webSocketKey = join(h.webSocketKey, v, ', ');
        else if (override(name, 'X-Method-Override', 'x-method-override')) h.confusing ??= name;
        break;
      case 22:
        if (override(name, 'X-Http-Method-Override', 'x-http-method-override')) h.confusing ??= name;
        break;
      case 6:
        if (is(name, 'Cookie', 'cookie')) h.cookie = join(h.cookie, v, '; ');
        else if (is(name, 'Origin', 'origin')) h.origin = join(h.origin, v, ', ');
        break;
      case 12:
        if (is(name, 'X-Request-Id', 'x-request-id')) h.requestId = join(h.requestId, v, ', ');
        else if (is(name, 'X-Csrf-Token', 'x-csrf-token')) h.csrfToken = join(h.csrfToken, v, ', ');
        else if (aliased(name, 'x-auth-roles') || aliased(name, 'x-request-id')) h.confusing ??= name;
        break;
      case 14:
        if (is(name, 'Sec-Fetch-Mode', 'sec-fetch-mode')) h.secFetchMode = join(h.secFetchMode, v, ', ');
        else if (is(name, 'Sec-Fetch-Site', 'sec-fetch-site')) h.secFetchSite = join(h.secFetchSite, v, ', ');
        else if (override(name, 'X-Original-Url', 'x-original-url')) h.confusing ??= name;
        break;
      case 15:
        if (is(name, 'X-Forwarded-Uri', 'x-forwarded-uri')) h.uri = join(h.uri, v, ', ');
        break;
      case 18:
        if (is(name, 'X-Forwarded-Method', 'x-forwarded-method')) h.method = join(h.method, v, ', ');
        break;
      case 29:
        if (is(name, 'Access-Control-Request-Method', 'access-control-request-method')) h.preflightMethod = join(h.preflightMethod, v, ', ');
        break;
    }
  }
  return h;
}
