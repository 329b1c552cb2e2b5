// The request headers the chain reads, found in one pass over rawHeaders. Node builds req.headers
// lazily, one property at a time, into a dictionary-mode object whose every read is a slow lookup;
// the sidecar reads nine headers and ignores the rest, so it never asks for that object.
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

/** Whether `name` is `lower` spelt with at least one `_` for a `-`, ASCII case folded. */
function underscored(name: string, lower: string): boolean {
  let underscore = false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c === 95) {
      underscore = true;
      c = 45;
    } else if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return underscore;
}

/**
 * Headers an upstream may read as something else than the edge and the sidecar did, which step 1
 * refuses (found in the same pass, by length like the rest, so other headers cost nothing more):
 * - a method override (X-HTTP-Method-Override and kin): many frameworks run the method it names,
 *   while the sidecar authorised (and, for GET, skipped the CSRF check of) the real one;
 * - a look-alike of a header the sidecar sets, spelt with `_` (X_Auth_User): Traefik replaces
 *   X-Auth-User, but CGI-style servers (Rack, WSGI, PHP) read both spellings as HTTP_X_AUTH_USER.
 */
const override = (name: string, canonical: string, lower: string) => is(name, canonical, lower) || underscored(name, lower);

export function readRequestHeaders(raw: readonly string[]): RequestHeaders {
  const h: RequestHeaders = {
    method: undefined, uri: undefined, cookie: undefined, requestId: undefined, origin: undefined,
    secFetchMode: undefined, secFetchSite: undefined, csrfToken: undefined, preflightMethod: undefined,
    confusing: undefined,
  };
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const v = raw[i + 1]!;
    // The length picks the few candidates; only those are compared.
    switch (name.length) {
      case 11:
        if (underscored(name, 'x-auth-user')) h.confusing ??= name;
        break;
      case 13:
        if (override(name, 'X-Http-Method', 'x-http-method')) h.confusing ??= name;
        break;
      case 17:
        if (override(name, 'X-Method-Override', 'x-method-override')) h.confusing ??= name;
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
        else if (underscored(name, 'x-auth-roles') || underscored(name, 'x-request-id')) h.confusing ??= name;
        break;
      case 14:
        if (is(name, 'Sec-Fetch-Mode', 'sec-fetch-mode')) h.secFetchMode = join(h.secFetchMode, v, ', ');
        else if (is(name, 'Sec-Fetch-Site', 'sec-fetch-site')) h.secFetchSite = join(h.secFetchSite, v, ', ');
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
