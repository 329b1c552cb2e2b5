// One rule for the origins goldpath trusts: GOLDPATH_PUBLIC_URL (where the browser is) and
// routes.yaml cors.allowed_origins (SPAs the CSRF check lets call the API). The WHATWG URL parser
// is lenient (`*.example.com`, `-bad-.com` and port 0 parse; `/..` and `/%2e` normalise away), so
// the text itself is checked: an origin is exactly scheme://host[:port], optionally with a `/`.

/** Hosts where plain http is acceptable: the browser treats them as secure contexts. */
export const LOCAL_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

const SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#\\]*)(.*)$/s;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Why `host` (no brackets: IPv6 literals are checked by URL) is not a DNS name or IPv4 address. */
function hostProblem(host: string): string | undefined {
  if (IPV4.test(host)) return undefined;
  if (/[^\x00-\x7f]/.test(host)) return 'has a host name with non-ASCII letters (write its xn-- form)';
  const labels = host.split('.');
  if (host.length > 253 || labels.some((l) => !LABEL.test(l))) {
    return 'has an invalid host name (labels of letters, digits and inner -, separated by single dots; no *, _ or empty label)';
  }
  // A name ending in a number is read by browsers as an IPv4 address (1.2.3 is 1.2.0.3).
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'has a host that is neither a DNS name nor a dotted IPv4 address';
  return undefined;
}

const INVALID_PORT = 'has an invalid port (expected 1-65535, or none for the default)';

/** A port an origin may name: 1-65535 in decimal digits only (no sign, no space, no 0). */
export function isOriginPort(port: string): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

/** Why `authority` (host[:port], no user info) is not an exact DNS name or IP literal with a port 1-65535. */
function authorityProblem(authority: string): string | undefined {
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority);
  const [host, port] = hp ? [hp[1]!, hp[2]] : ['', undefined];
  if (host === '') return 'has no host';
  if (!host.startsWith('[')) {
    const why = hostProblem(host);
    if (why) return why;
  }
  if (port !== undefined && !isOriginPort(port)) return INVALID_PORT;
  return undefined;
}

/**
 * Why `value` (an http(s) URL the caller has parsed) cannot be an OpenID issuer discovery will
 * ever confirm, or undefined: the same host and port rules as an origin (no `*`, no port 0), and a
 * path the URL parser keeps as written (no dot segments, plain or percent-encoded, no spaces or
 * backslashes), as the IdP's `issuer` is compared with it exactly. Never repeats the value.
 */
export function issuerProblem(value: string): string | undefined {
  if (value.includes('*')) return 'must be an exact URL; wildcards are not allowed';
  const m = SHAPE.exec(value);
  if (!m) return 'is not a URL';
  const why = authorityProblem(m[2]!.slice(m[2]!.lastIndexOf('@') + 1));
  if (why) return why;
  const path = m[3]!.replace(/[?#].*$/s, '');
  if (/[\s\\]/.test(path)) return 'has a space or backslash in its path';
  if (path.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg))) return 'has a dot segment (. or .., maybe percent-encoded as %2e) in its path';
  return undefined;
}

export type OriginCheck =
  | { readonly origin: string; readonly secure: boolean; readonly problem?: undefined }
  | { readonly problem: string };

/**
 * `value` as an origin (`https://app.example.com`, normalised), or why it is not one: scheme
 * https, or http on localhost, 127.0.0.1 or [::1] only; a DNS name or IP literal; port 1-65535;
 * nothing but an optional `/` after it. Problems never repeat the value (it may come from the
 * environment); `plainHttpRisk` says what plain http would expose.
 */
export function checkOrigin(value: string, plainHttpRisk: string): OriginCheck {
  if (value.includes('*')) return { problem: 'must be an exact origin; wildcards are not allowed' };
  const m = SHAPE.exec(value);
  if (!m) return { problem: 'is not a URL' };
  // Checked before the URL parser, which refuses a port over 65535 as "not a URL" but takes :0.
  // Not with user info: "u:p@host" would read as host "u" with port "p@host" (an "invalid port").
  const early = m[2]!.includes('@') ? undefined : authorityProblem(m[2]!);
  if (early === INVALID_PORT) return { problem: early };
  if (!URL.canParse(value)) return { problem: 'is not a URL' };
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const protocol = scheme.toLowerCase();
  if (protocol !== 'https' && protocol !== 'http') {
    return { problem: `must use http or https (http only on localhost, 127.0.0.1 or [::1]), not ${protocol}:` };
  }
  if (authority.includes('@')) return { problem: 'must not contain a user name or password' };
  if (rest !== '' && rest !== '/') return { problem: 'must be an origin only, without path, query or fragment' };
  const why = authorityProblem(authority);
  if (why) return { problem: why };
  const u = new URL(value);
  if (protocol === 'http' && !LOCAL_HOSTS.has(u.hostname)) {
    return { problem: `uses plain http: ${plainHttpRisk}; use https (http is accepted only for localhost, 127.0.0.1 and [::1])` };
  }
  return { origin: u.origin, secure: protocol === 'https' };
}
