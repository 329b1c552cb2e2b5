// Drives a login the way a browser does, over real HTTP: follows redirects, keeps cookies per host,
// fills in and submits the dev IdP's login and consent forms. Shared by the BFF, verify and browser
// tests. It does not run JavaScript and does not model SameSite (every matching cookie is sent).
//
//   const r = await browserLogin({ start: `${bff}/auth/login?return_to=/app`, user: 'admin' });
//   r.location        → where the BFF finally redirected (the return_to URL)
//   r.sessionCookie   → the value of the session cookie, r.jar → every cookie
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Buffer } from 'node:buffer';

export interface StoredCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: string | undefined;
  /** ms since epoch; undefined = session cookie. */
  expires: number | undefined;
  /** The Set-Cookie header as received (attribute assertions). */
  raw: string;
}

/** A minimal cookie jar: host-only cookies (Domain is ignored), path-matched, expiry honoured. */
export class CookieJar {
  readonly cookies: StoredCookie[] = [];

  /** Records the Set-Cookie headers of a response from `url`. */
  store(url: string | URL, setCookie: string[] | string | undefined): void {
    const u = new URL(url);
    for (const raw of ([] as string[]).concat(setCookie ?? [])) {
      const [pair, ...attrs] = raw.split(';');
      const eq = pair!.indexOf('=');
      if (eq <= 0) continue;
      const c: StoredCookie = {
        name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), host: u.hostname, path: '/',
        secure: false, httpOnly: false, sameSite: undefined, expires: undefined, raw,
      };
      for (const a of attrs) {
        const [k, ...v] = a.split('=');
        const key = k!.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path' && val.startsWith('/')) c.path = val;
        else if (key === 'secure') c.secure = true;
        else if (key === 'httponly') c.httpOnly = true;
        else if (key === 'samesite') c.sameSite = val;
        else if (key === 'max-age') c.expires = Date.now() + Number(val) * 1000;
        else if (key === 'expires' && c.expires === undefined) c.expires = Date.parse(val);
      }
      const i = this.cookies.findIndex((x) => x.name === c.name && x.host === c.host && x.path === c.path);
      if (i >= 0) this.cookies.splice(i, 1);
      if (c.expires === undefined || c.expires > Date.now()) this.cookies.push(c);
    }
  }

  /** Cookies a browser would send to `url` (Secure ones only over https or to localhost). */
  matching(url: string | URL): StoredCookie[] {
    const u = new URL(url);
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
    const now = Date.now();
    return this.cookies.filter((c) => c.host === u.hostname
      && (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/'))
      && (!c.secure || u.protocol === 'https:' || local)
      && (c.expires === undefined || c.expires > now));
  }

  /** The Cookie header for `url`, or undefined when nothing matches. */
  header(url: string | URL): string | undefined {
    const m = this.matching(url);
    return m.length ? m.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  get(name: string, host?: string): StoredCookie | undefined {
    return this.cookies.find((c) => c.name === name && (host === undefined || c.host === host));
  }

  delete(name: string, host?: string): void {
    for (let i = this.cookies.length - 1; i >= 0; i--) {
      const c = this.cookies[i]!;
      if (c.name === name && (host === undefined || c.host === host)) this.cookies.splice(i, 1);
    }
  }
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  url: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  jar?: CookieJar;
  /** Extra CA (PEM) for https servers with test certificates. */
  ca?: string | Buffer;
  /** Client certificate (PEM) for https servers that ask for one. */
  cert?: string | Buffer;
  key?: string | Buffer;
  timeoutMs?: number;
}

/** One HTTP request, no redirect following; cookies from and to `jar`. */
export function httpCall(url: string | URL, o: HttpOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { 'user-agent': 'goldpath-test-browser', ...o.headers };
  const cookie = o.jar?.header(u);
  if (cookie && !Object.keys(headers).some((h) => h.toLowerCase() === 'cookie')) headers['cookie'] = cookie;
  if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: o.method ?? 'GET', headers, ca: o.ca, cert: o.cert, key: o.key,
      timeout: o.timeoutMs ?? 10_000, agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        o.jar?.store(u, res.headers['set-cookie']);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), url: u.href });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${o.method ?? 'GET'} ${u.origin}${u.pathname}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

export interface HtmlForm {
  id: string | undefined;
  action: string;
  method: string;
  fields: Record<string, string>;
}

/** The forms of an HTML page, with their named input values (enough for the dev IdP's pages). */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]!);
    const fields: Record<string, string> = {};
    for (const i of m[2]!.matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(i[1]!);
      if (a['name'] !== undefined) fields[a['name']] = a['value'] ?? '';
    }
    forms.push({ id: attrs['id'], action: attrs['action'] ?? '', method: (attrs['method'] ?? 'get').toUpperCase(), fields });
  }
  return forms;
}

function attributes(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1]!.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

function decodeEntities(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCharCode(parseInt(n, 16)))
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export interface Hop {
  method: string;
  url: string;
  status: number;
  location: string | undefined;
}

export interface LoginOptions {
  /** Absolute URL that starts the login, e.g. `${bff}/auth/login?return_to=/x`. */
  start: string;
  /** User name typed into the dev IdP (admin → roles admin, reader). Default 'alice'. */
  user?: string;
  /** Reuse a jar (a browser that already has cookies, e.g. an older session). */
  jar?: CookieJar;
  /** 'allow' (default) clicks Allow on the consent page; 'deny' clicks Deny (→ access_denied). */
  consent?: 'allow' | 'deny';
  /** Click Cancel on the login page instead of signing in (→ access_denied). */
  cancelLogin?: boolean;
  /** Name of the BFF session cookie. Default: `goldpath`, or `__Host-goldpath` when start is https. */
  cookieName?: string;
  /**
   * Called before each request; return a different URL to tamper with it (attack tests: swap the
   * state, replay a code, send the browser to another IdP). Return undefined to keep it.
   */
  rewrite?: (url: URL, hop: number) => URL | string | undefined;
  /** Stop before requesting a URL for which this returns true (default: stop after the BFF callback). */
  stopBefore?: (url: URL) => boolean;
  /** TLS options for https IdPs (test CAs). */
  ca?: string | Buffer;
  headers?: Record<string, string>;
  maxHops?: number;
}

export interface LoginResult {
  jar: CookieJar;
  /** Status of the last response received. */
  status: number;
  /** The last response (e.g. the BFF callback's 302, or an error page). */
  last: HttpResponse;
  /** Where the last redirect pointed (the return_to after a successful callback). */
  location: string | undefined;
  /** The callback URL the IdP sent the browser to (with code, state, iss), if reached. */
  callbackUrl: string | undefined;
  /** The BFF session cookie value, if one was set. */
  sessionCookie: string | undefined;
  hops: Hop[];
}

/**
 * Runs a login from `start` until the BFF's /auth/callback has answered (or `stopBefore` says
 * stop, or a page that is neither a redirect nor a known form is reached).
 */
export async function browserLogin(o: LoginOptions): Promise<LoginResult> {
  const jar = o.jar ?? new CookieJar();
  const startUrl = new URL(o.start);
  const bffOrigin = startUrl.origin;
  const cookieName = o.cookieName ?? (startUrl.protocol === 'https:' ? '__Host-goldpath' : 'goldpath');
  const hops: Hop[] = [];
  let callbackUrl: string | undefined;
  let method = 'GET';
  let body: string | undefined;
  let next = startUrl;
  let last: HttpResponse | undefined;
  let location: string | undefined;

  for (let i = 0; i < (o.maxHops ?? 25); i++) {
    const rewritten = o.rewrite?.(next, i);
    if (rewritten !== undefined) next = new URL(rewritten);
    if (o.stopBefore?.(next)) break;
    const isCallback = next.origin === bffOrigin && (next.pathname === '/auth/callback' || next.pathname.startsWith('/auth/callback/'));
    if (isCallback) callbackUrl = next.href;
    const headers: Record<string, string> = {
      accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', ...o.headers,
    };
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    last = await httpCall(next, { method, headers, body, jar, ca: o.ca });
    location = typeof last.headers.location === 'string' ? new URL(last.headers.location, next).href : undefined;
    hops.push({ method, url: next.href, status: last.status, location });
    method = 'GET';
    body = undefined;
    if (isCallback) break;
    if (last.status >= 300 && last.status < 400 && location) {
      next = new URL(location);
      continue;
    }
    if (last.status !== 200 || !/text\/html/.test(String(last.headers['content-type']))) break;
    const form = pickForm(parseForms(last.body), o);
    if (!form) break;
    if (form.id === 'login') form.fields['login'] = o.user ?? 'alice';
    next = new URL(form.action, next);
    method = form.method;
    if (method === 'POST') body = new URLSearchParams(form.fields).toString();
    else for (const [k, v] of Object.entries(form.fields)) next.searchParams.set(k, v);
  }
  if (!last) throw new Error('browserLogin: no request was made');
  return {
    jar, status: last.status, last, location, callbackUrl, hops,
    sessionCookie: jar.get(cookieName, startUrl.hostname)?.value,
  };
}

function pickForm(forms: HtmlForm[], o: LoginOptions): HtmlForm | undefined {
  const byId = (id: string) => forms.find((f) => f.id === id);
  if (byId('login')) return o.cancelLogin ? byId('abort') : byId('login');
  if (byId('consent')) return o.consent === 'deny' ? byId('abort') : byId('consent');
  return undefined;
}

/** Session cookie value from a jar (convenience for tests using `browserLogin`). */
export function sessionCookieOf(r: LoginResult, name = 'goldpath'): string | undefined {
  return r.jar.get(name)?.value;
}
