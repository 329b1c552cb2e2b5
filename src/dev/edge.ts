// The development edge: a small reverse proxy that applies traefik/dynamic/goldpath.yml with
// Traefik v3 semantics, so `npm start` and the tests exercise the very routes production uses.
// It implements only the subset goldpath needs (routers with Path/PathPrefix/Host rules, the
// headers, forwardAuth and rateLimit middlewares, load-balancer services) and refuses anything else at startup:
// a config it does not understand must never be half-applied. Traefik is the production edge.
//
// Behaviour copied from Traefik (pkg/middlewares/auth/forward.go, pkg/middlewares/headers, the
// entry point's forwarded-headers handling and request-path sanitising):
// - Entry point (the static file's entryPoints.web, when given): nobody is trusted, so Traefik's own
//   X-Forwarded-* list and X-Real-Ip are removed, underscore spellings included
//   (forwardedheaders.isManagedXHeader), and rewritten; any other client header passes (Forwarded,
//   X-Forwarded-Ssl, ...) unless a middleware removes it. http.underscoreHeadersStrategy and
//   http.middlewares (run ahead of every router's own) are applied; a query's ";" becomes "&"
//   (http.AllowQuerySemicolons), or "%3B" with encodeQuerySemicolons.
// - Paths with encoded / \ NUL ; % ? # are refused (400); dot segments and duplicate slashes are
//   removed before routing, and the upstream sees the cleaned path. A raw character Go escapes in a
//   path (" < > \ ^ ` { | }) makes it escape the whole decoded path anew, as URL.EscapedPath does.
// - forwardAuth: GET to the address with the client's headers plus X-Forwarded-Method, -Proto,
//   -Host, -Uri, -For (overwritten; with trustForwardHeader: false every header of Traefik's list is
//   removed first, so X-Real-Ip and X-Forwarded-Server do not reach it). 2xx: every
//   authResponseHeaders name is deleted from the request and re-set from the auth answer, then the
//   request goes upstream. An answer over maxResponseBodySize: 401, empty. Otherwise the auth
//   answer (status, headers incl. Location and Set-Cookie, body) goes back to the client.
// - headers: CORS preflights are answered at the edge (200, Access-Control-Allow-Origin only for a
//   listed origin); CORS, custom and security headers are added to every answer below the middleware.
import { request as httpRequest, Agent, type RequestOptions, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { listen, MAX_HEADER_BYTES } from '../http/serve.ts';
import { goDuration, RateLimiter, rateLimitProblems, type RateLimitConfig } from './edge-rate-limit.ts';
import type { Logger } from '../log.ts';

// ---------------------------------------------------------------------------------------------
// Rules: Traefik v3 syntax, matchers Path, PathPrefix, Host with ||, &&, ! and parentheses.

export interface RouteRequest {
  /** Host header without the port, lower-case. */
  readonly host: string;
  /** The sanitised path (see sanitizeRequestTarget). */
  readonly path: string;
}
export type RuleMatcher = (r: RouteRequest) => boolean;

const SUPPORTED_MATCHERS = ['Path', 'PathPrefix', 'Host'];

/** Parses a Traefik v3 rule; throws an Error naming the problem for anything unsupported. */
export function parseRule(rule: string): RuleMatcher {
  const tokens = tokenize(rule);
  let pos = 0;
  const peek = () => tokens[pos];
  const expect = (kind: string) => {
    const t = tokens[pos++];
    if (!t || t.kind !== kind) throw new Error(`expected ${kind} at ${t ? `"${t.text}"` : 'the end of the rule'}`);
    return t;
  };
  const orExpr = (): RuleMatcher => {
    const parts = [andExpr()];
    while (peek()?.kind === '||') { pos++; parts.push(andExpr()); }
    return parts.length === 1 ? parts[0]! : (r) => parts.some((p) => p(r));
  };
  const andExpr = (): RuleMatcher => {
    const parts = [unary()];
    while (peek()?.kind === '&&') { pos++; parts.push(unary()); }
    return parts.length === 1 ? parts[0]! : (r) => parts.every((p) => p(r));
  };
  const unary = (): RuleMatcher => {
    if (peek()?.kind === '!') { pos++; const inner = unary(); return (r) => !inner(r); }
    if (peek()?.kind === '(') { pos++; const inner = orExpr(); expect(')'); return inner; }
    return matcher();
  };
  const matcher = (): RuleMatcher => {
    const name = expect('ident').text;
    if (!SUPPORTED_MATCHERS.includes(name)) {
      throw new Error(`matcher ${name}() is not supported by the development edge (supported: ${SUPPORTED_MATCHERS.join(', ')})`);
    }
    expect('(');
    const arg = expect('string').text;
    if (peek()?.kind === ',') throw new Error(`${name}() takes exactly one argument in Traefik v3 rule syntax`);
    expect(')');
    return makeMatcher(name, arg);
  };
  const m = orExpr();
  if (pos !== tokens.length) throw new Error(`unexpected "${tokens[pos]!.text}"`);
  return m;
}

function makeMatcher(name: string, arg: string): RuleMatcher {
  switch (name) {
    case 'Host': {
      if (arg === '' || /[\s/]/.test(arg)) throw new Error(`Host(\`${arg}\`) is not a host name`);
      const host = arg.toLowerCase();
      // Traefik (pkg/muxer/http/matcher.go, host): a trailing "." on either side still matches.
      const bare = host.endsWith('.') ? host.slice(0, -1) : host;
      return (r) => r.host === host || (r.host.endsWith('.') ? r.host.slice(0, -1) : r.host) === bare;
    }
    case 'Path':
      if (!arg.startsWith('/')) throw new Error(`Path(\`${arg}\`) must start with /`);
      return (r) => r.path === arg;
    default: // PathPrefix
      if (!arg.startsWith('/')) throw new Error(`PathPrefix(\`${arg}\`) must start with /`);
      return (r) => r.path.startsWith(arg);
  }
}

interface Token { kind: 'ident' | 'string' | '(' | ')' | ',' | '||' | '&&' | '!'; text: string }

function tokenize(rule: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const two = rule.slice(i, i + 2);
    if (two === '||' || two === '&&') { out.push({ kind: two, text: two }); i += 2; continue; }
    if (c === '(' || c === ')' || c === ',' || c === '!') { out.push({ kind: c, text: c }); i++; continue; }
    if (c === '`' || c === '"') {
      const end = rule.indexOf(c, i + 1);
      if (end === -1) throw new Error(`unterminated string starting at column ${i + 1}`);
      const text = rule.slice(i + 1, end);
      if (c === '"' && text.includes('\\')) throw new Error('escapes in "…" strings are not supported; use backticks');
      out.push({ kind: 'string', text });
      i = end + 1;
      continue;
    }
    const ident = /^[A-Za-z][A-Za-z0-9]*/.exec(rule.slice(i));
    if (ident) { out.push({ kind: 'ident', text: ident[0] }); i += ident[0].length; continue; }
    throw new Error(`unexpected character "${c}" at column ${i + 1}`);
  }
  if (out.length === 0) throw new Error('the rule is empty');
  return out;
}

// ---------------------------------------------------------------------------------------------
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

/**
 * The X-headers Traefik manages (pkg/middlewares/forwardedheaders: XHeadersSet of v3.6.14 and later).
 * From an untrusted client, the entry point deletes each of them, and any spelling that is one of
 * them once every "_" is read as "-" (X_Forwarded_Host, X-Real_Ip); forwardAuth with
 * trustForwardHeader: false deletes them again from the auth request before setting its own.
 */
export const TRAEFIK_X_HEADERS: ReadonlySet<string> = new Set([
  'x-forwarded-proto', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-server',
  'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-prefix', 'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info', 'x-real-ip',
]);

/** Deletes the headers of TRAEFIK_X_HEADERS and their underscore spellings (lower-case names). */
function deleteTraefikXHeaders(h: Record<string, unknown>): void {
  for (const k of Object.keys(h)) if (TRAEFIK_X_HEADERS.has(k.replaceAll('_', '-'))) delete h[k];
}

// ---------------------------------------------------------------------------------------------
// The static configuration: the entry point's settings that change what a request carries.

export interface EntryPointConfig {
  readonly name: string;
  /** entryPoints.<name>.http.middlewares, names in the dynamic file, run ahead of every router's own. */
  readonly middlewares: readonly string[];
  /** http.underscoreHeadersStrategy (Traefik v3.6.20 and later; compose pins v3.6.22): keep (Traefik's default), delete or reject. */
  readonly underscoreHeadersStrategy: 'keep' | 'delete' | 'reject';
  /** http.encodeQuerySemicolons: ";" in the query becomes "%3B" instead of "&". */
  readonly encodeQuerySemicolons: boolean;
}

const ENCODED_CHARACTERS = ['allowEncodedSlash', 'allowEncodedBackSlash', 'allowEncodedNullCharacter',
  'allowEncodedSemicolon', 'allowEncodedPercent', 'allowEncodedQuestionMark', 'allowEncodedHash'];

/**
 * Reads entryPoints.<name> of a Traefik static configuration file (traefik/traefik.yml). Settings the
 * development edge does not apply are refused, not ignored (ConfigError naming each).
 */
export function loadEntryPoint(file: string, name = 'web'): EntryPointConfig {
  const problems: ConfigProblem[] = [];
  const add = (key: string, message: string) => problems.push({ file, key, message });
  const doc = parseDocument(readFileSync(file, 'utf8'), { uniqueKeys: true });
  for (const e of doc.errors) add('(yaml)', e.message);
  if (problems.length) throw new ConfigError(problems);
  const root = doc.toJS() as unknown;
  const eps = isPlainObject(root) ? root.entryPoints : undefined;
  const ep = isPlainObject(eps) ? eps[name] : undefined;
  const at = `entryPoints.${name}`;
  if (!isPlainObject(ep)) throw new ConfigError([{ file, key: at, message: 'no such entry point' }]);
  for (const k of Object.keys(ep)) {
    if (k === 'forwardedHeaders' || k === 'proxyProtocol') add(`${at}.${k}`, 'is not supported: the development edge trusts no one\'s forwarded headers');
    else if (k !== 'address' && k !== 'http') add(`${at}.${k}`, 'is not supported by the development edge');
  }
  const http = ep.http ?? {};
  let middlewares: string[] = [];
  let underscoreHeadersStrategy: EntryPointConfig['underscoreHeadersStrategy'] = 'keep';
  let encodeQuerySemicolons = false;
  if (!isPlainObject(http)) add(`${at}.http`, 'expected a map');
  else {
    for (const [k, v] of Object.entries(http)) {
      const key = `${at}.http.${k}`;
      if (k === 'middlewares') {
        const names = isStringArray(v) ? v.map(stripProvider) : [undefined];
        if (names.some((n) => n === undefined)) add(key, 'expected a list of name@file middlewares');
        else middlewares = names as string[];
      } else if (k === 'underscoreHeadersStrategy') {
        if (v === 'keep' || v === 'delete' || v === 'reject') underscoreHeadersStrategy = v;
        else add(key, 'expected keep, delete or reject');
      } else if (k === 'encodeQuerySemicolons') {
        if (typeof v === 'boolean') encodeQuerySemicolons = v;
        else add(key, 'expected a boolean');
      } else if (k === 'maxHeaderBytes') {
        if (v !== MAX_HEADER_BYTES) add(key, `the development edge reads ${MAX_HEADER_BYTES} bytes of headers (src/http/serve.ts)`);
      } else if (k === 'encodedCharacters') {
        // The development edge always refuses these encodings (sanitizeRequestTarget).
        if (!isPlainObject(v) || Object.keys(v).some((o) => !ENCODED_CHARACTERS.includes(o) || v[o] !== false)) {
          add(key, `the development edge refuses every one of them: set ${ENCODED_CHARACTERS.join(', ')} to false`);
        }
      } else add(key, 'is not supported by the development edge');
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { name, middlewares, underscoreHeadersStrategy, encodeQuerySemicolons };
}

// ---------------------------------------------------------------------------------------------
// The dynamic configuration: read, check everything, report every problem at once.

export interface HeadersConfig {
  readonly accessControlAllowOriginList?: readonly string[];
  readonly accessControlAllowCredentials?: boolean;
  readonly accessControlAllowMethods?: readonly string[];
  readonly accessControlAllowHeaders?: readonly string[];
  readonly accessControlExposeHeaders?: readonly string[];
  readonly accessControlMaxAge?: number;
  readonly addVaryHeader?: boolean;
  readonly customRequestHeaders?: Readonly<Record<string, string>>;
  readonly customResponseHeaders?: Readonly<Record<string, string>>;
  readonly contentSecurityPolicy?: string;
  readonly frameDeny?: boolean;
  readonly customFrameOptionsValue?: string;
  readonly contentTypeNosniff?: boolean;
  readonly browserXssFilter?: boolean;
  readonly referrerPolicy?: string;
  readonly permissionsPolicy?: string;
  readonly stsSeconds?: number;
  readonly stsIncludeSubdomains?: boolean;
  readonly stsPreload?: boolean;
  readonly forceSTSHeader?: boolean;
}

export interface ForwardAuthConfig {
  readonly address: string;
  readonly trustForwardHeader?: boolean;
  readonly authResponseHeaders?: readonly string[];
  readonly authRequestHeaders?: readonly string[];
  readonly maxResponseBodySize?: number;
  readonly preserveLocationHeader?: boolean;
  readonly preserveRequestMethod?: boolean;
  readonly headerField?: string;
}

export type MiddlewareConfig =
  | { readonly name: string; readonly type: 'headers'; readonly headers: HeadersConfig }
  | { readonly name: string; readonly type: 'forwardAuth'; readonly forwardAuth: ForwardAuthConfig }
  | { readonly name: string; readonly type: 'rateLimit'; readonly rateLimit: RateLimitConfig };

export interface EdgeRouter {
  readonly name: string;
  readonly rule: string;
  /** Explicit priority, or Traefik's default: the length of the rule. */
  readonly priority: number;
  readonly match: RuleMatcher;
  readonly middlewares: readonly string[];
  readonly service: string;
}

export interface EdgeConfig {
  /** Sorted as Traefik tries them: highest priority first (ties by name). */
  readonly routers: readonly EdgeRouter[];
  readonly middlewares: Readonly<Record<string, MiddlewareConfig>>;
  /** Traefik service name -> the server URLs written in the file. */
  readonly services: Readonly<Record<string, readonly string[]>>;
}

const HEADERS_KEYS: Record<string, 'strings' | 'boolean' | 'integer' | 'string' | 'map'> = {
  accessControlAllowOriginList: 'strings', accessControlAllowCredentials: 'boolean',
  accessControlAllowMethods: 'strings', accessControlAllowHeaders: 'strings',
  accessControlExposeHeaders: 'strings', accessControlMaxAge: 'integer', addVaryHeader: 'boolean',
  customRequestHeaders: 'map', customResponseHeaders: 'map', contentSecurityPolicy: 'string',
  frameDeny: 'boolean', customFrameOptionsValue: 'string', contentTypeNosniff: 'boolean',
  browserXssFilter: 'boolean', referrerPolicy: 'string', permissionsPolicy: 'string',
  stsSeconds: 'integer', stsIncludeSubdomains: 'boolean', stsPreload: 'boolean', forceSTSHeader: 'boolean',
};
const FORWARD_AUTH_KEYS: Record<string, 'strings' | 'boolean' | 'integer' | 'string'> = {
  address: 'string', trustForwardHeader: 'boolean', authResponseHeaders: 'strings',
  authRequestHeaders: 'strings', maxResponseBodySize: 'integer', preserveLocationHeader: 'boolean',
  preserveRequestMethod: 'boolean', headerField: 'string',
};
const ROUTER_KEYS = new Set(['rule', 'service', 'middlewares', 'priority', 'entryPoints', 'tls']);

/** Reads and checks a Traefik dynamic configuration file; throws ConfigError listing every problem. */
export function loadEdgeConfig(file: string): EdgeConfig {
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const lineOf = (path: readonly (string | number)[]): number | undefined => {
    if (path.length === 0) return undefined;
    const off = (doc.getIn(path, true) as YamlNode | undefined)?.range?.[0];
    return off === undefined ? lineOf(path.slice(0, -1)) : lines.linePos(off).line;
  };
  const add = (path: readonly (string | number)[], message: string) =>
    problems.push({ file, line: lineOf(path), key: path.join('.') || '(root)', message });
  for (const e of doc.errors) problems.push({ file, line: e.linePos?.[0]?.line, key: '(yaml)', message: e.message });
  if (problems.length) throw new ConfigError(problems);

  const root = doc.toJS() as unknown;
  const routers: EdgeRouter[] = [];
  const middlewares: Record<string, MiddlewareConfig> = {};
  const services: Record<string, string[]> = {};
  if (!isPlainObject(root)) {
    add([], 'expected a map with http:');
    throw new ConfigError(problems);
  }
  for (const k of Object.keys(root)) if (k !== 'http') add([k], 'only http: is supported by the development edge');
  const http = root.http;
  if (!isPlainObject(http)) {
    add(['http'], 'expected a map with routers:, middlewares:, services:');
    throw new ConfigError(problems);
  }
  for (const k of Object.keys(http)) {
    if (!['routers', 'middlewares', 'services'].includes(k)) add(['http', k], 'is not supported by the development edge');
  }

  for (const [name, svc] of entries(http.services, ['http', 'services'], add)) {
    const at = ['http', 'services', name];
    const lb = isPlainObject(svc) && Object.keys(svc).length === 1 ? svc.loadBalancer : undefined;
    const servers = isPlainObject(lb) ? lb.servers : undefined;
    if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => isPlainObject(s) && typeof s.url === 'string')) {
      add(at, 'expected loadBalancer: { servers: [ { url: … } ] } (other service types are not supported by the development edge)');
      continue;
    }
    services[name] = servers.map((s) => (s as { url: string }).url);
  }

  for (const [name, mw] of entries(http.middlewares, ['http', 'middlewares'], add)) {
    const at = ['http', 'middlewares', name];
    const types = isPlainObject(mw) ? Object.keys(mw) : [];
    if (types.length !== 1) { add(at, 'expected exactly one middleware type'); continue; }
    const type = types[0]!;
    const body = (mw as Record<string, unknown>)[type];
    if (type === 'headers') {
      if (checkOptions(body, HEADERS_KEYS, [...at, type], add)) {
        middlewares[name] = { name, type, headers: body as HeadersConfig };
      }
    } else if (type === 'forwardAuth') {
      if (!checkOptions(body, FORWARD_AUTH_KEYS, [...at, type], add)) continue;
      const fa = body as ForwardAuthConfig;
      if (typeof fa.address !== 'string' || !/^http:\/\/[^/]+/.test(fa.address) || !URL.canParse(fa.address)) {
        add([...at, type, 'address'], 'expected an http:// URL');
        continue;
      }
      if (fa.trustForwardHeader === true) {
        add([...at, type, 'trustForwardHeader'], 'true is not supported: client X-Forwarded-* must never be trusted');
        continue;
      }
      middlewares[name] = { name, type, forwardAuth: fa };
    } else if (type === 'rateLimit') {
      if (!isPlainObject(body)) { add([...at, type], 'expected a map of options'); continue; }
      const wrong = rateLimitProblems(body);
      for (const [k, message] of wrong) add([...at, type, k], message);
      if (wrong.length === 0) middlewares[name] = { name, type, rateLimit: body as unknown as RateLimitConfig };
    } else {
      add([...at, type], `middleware type ${type} is not supported by the development edge (supported: headers, forwardAuth, rateLimit)`);
    }
  }

  for (const [name, r] of entries(http.routers, ['http', 'routers'], add)) {
    const at = ['http', 'routers', name];
    if (!isPlainObject(r)) { add(at, 'expected a map with rule: and service:'); continue; }
    let ok = true;
    for (const k of Object.keys(r)) if (!ROUTER_KEYS.has(k)) { add([...at, k], 'is not supported by the development edge'); ok = false; }
    let match: RuleMatcher | undefined;
    if (typeof r.rule !== 'string') add([...at, 'rule'], 'expected a rule string');
    else {
      try { match = parseRule(r.rule); } catch (err) { add([...at, 'rule'], (err as Error).message); }
    }
    if (r.priority !== undefined && !(Number.isInteger(r.priority) && (r.priority as number) >= 0)) {
      add([...at, 'priority'], 'expected a non-negative integer'); ok = false;
    }
    const service = typeof r.service === 'string' ? stripProvider(r.service) : undefined;
    if (service === undefined) add([...at, 'service'], 'expected the name of a service in this file');
    else if (!isPlainObject(http.services) || !(service in http.services)) add([...at, 'service'], `service ${r.service} is not defined in http.services`);
    const mws: string[] = [];
    if (r.middlewares !== undefined && !isStringArray(r.middlewares)) { add([...at, 'middlewares'], 'expected a list of names'); ok = false; }
    for (const [i, m] of (isStringArray(r.middlewares) ? r.middlewares : []).entries()) {
      const n = stripProvider(m);
      if (n === undefined || !isPlainObject(http.middlewares) || !(n in http.middlewares)) {
        add([...at, 'middlewares', i], `middleware ${m} is not defined in http.middlewares`); ok = false;
      } else mws.push(n);
    }
    if (!ok || !match || service === undefined) continue;
    routers.push({
      name, rule: r.rule as string, match, middlewares: mws, service,
      priority: r.priority === undefined ? (r.rule as string).length : (r.priority as number),
    });
  }
  if (problems.length) throw new ConfigError(problems);
  routers.sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : 1));
  return { routers, middlewares, services };
}

/** The router Traefik would pick for this request, or undefined (404). */
export function selectRouter(routers: readonly EdgeRouter[], r: RouteRequest): EdgeRouter | undefined {
  return routers.find((x) => x.match(r));
}

type Add = (path: readonly (string | number)[], message: string) => void;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
function entries(v: unknown, at: string[], add: Add): [string, unknown][] {
  if (v === undefined || v === null) return [];
  if (!isPlainObject(v)) { add(at, 'expected a map'); return []; }
  return Object.entries(v);
}
/** `name` or `name@file`; other providers (e.g. @internal, @docker) are outside this file. */
function stripProvider(ref: string): string | undefined {
  const at = ref.indexOf('@');
  if (at === -1) return ref;
  return ref.slice(at + 1) === 'file' ? ref.slice(0, at) : undefined;
}
function checkOptions(body: unknown, keys: Record<string, string>, at: (string | number)[], add: Add): boolean {
  if (!isPlainObject(body)) { add(at, 'expected a map of options'); return false; }
  let ok = true;
  for (const [k, v] of Object.entries(body)) {
    const kind = keys[k];
    const good = kind === 'strings' ? isStringArray(v)
      : kind === 'boolean' ? typeof v === 'boolean'
      : kind === 'integer' ? Number.isInteger(v)
      : kind === 'string' ? typeof v === 'string'
      : kind === 'map' ? isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string')
      : false;
    if (!kind) add([...at, k], `option ${k} is not supported by the development edge`);
    else if (!good) add([...at, k], `expected ${kind === 'strings' ? 'a list of strings' : kind === 'map' ? 'a map of strings' : `a ${kind}`}`);
    ok &&= !!kind && good;
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// The proxy.

export interface DevEdgeOptions {
  readonly port: number;
  readonly host?: string;
  /** traefik/dynamic/goldpath.yml */
  readonly dynamicConfigPath: string;
  /**
   * Traefik service name -> base URL (origin) to send its requests to, e.g. { api: 'http://127.0.0.1:3000' }.
   * A forwardAuth address is resolved by its host name in the same map (http://verify:3002/auth/verify
   * -> services.verify + /auth/verify).
   */
  readonly services: Readonly<Record<string, string>>;
  /**
   * traefik/traefik.yml: its entry point (entryPoint, default "web") gives the middlewares run ahead
   * of every router and the underscore-header and query-semicolon settings. Without it, the edge
   * behaves as Traefik's defaults (no entry-point middlewares, underscore headers kept).
   */
  readonly staticConfigPath?: string;
  readonly entryPoint?: string;
  /** Routers to leave out, e.g. ['idp'] when the IdP is reached directly rather than through the edge. */
  readonly omitRouters?: readonly string[];
  /** The whole forwardAuth exchange, answer body included, as Traefik's client Timeout (30 s). */
  readonly authTimeoutMs?: number;
  /**
   * The public URL's origin (the demo's): a page load under another loopback name for this edge
   * (127.0.0.1 for localhost, same port) is sent there. The sign-in's cookies, the IdP's redirect
   * URI and the CSRF checks all name the public URL: under another name every sign-in ended in
   * "started in another browser", and the page shared its host with the dev IdP's cookies. Only
   * loopback names: a proxy in front that rewrites Host must not be sent round in circles.
   */
  readonly canonicalOrigin?: string;
  readonly log?: Logger;
}

export interface DevEdge {
  readonly url: string;
  readonly port: number;
  readonly config: EdgeConfig;
  readonly entryPoint: EntryPointConfig;
  close(): Promise<void>;
}

type ResponseHeaders = Record<string, string | string[]>;

/** One request on its way through a router's middlewares to its service. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly uri: string;
  readonly hostHeader: string;
  readonly clientIp: string;
  /** Headers for the next hop (lower-case names); middlewares edit them. */
  readonly headers: Record<string, string | string[]>;
  /** Response-header editors, outermost first; applied innermost first, as Traefik's wrappers do. */
  readonly modifiers: ((h: ResponseHeaders) => void)[];
  status?: number;
}
type Step = (ex: Exchange, next: () => Promise<void>) => Promise<void>;

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const AUTH_TIMEOUT_MS = 30_000; // forward.go: http.Client{Timeout: 30 * time.Second}
/**
 * The answer headers read from the sidecar and the services. Go's HTTP client takes up to 10 MB;
 * Node's default of 16 KiB refused the sidecar's 302 to sign in for a long URI (its Location carries
 * the URI percent-encoded, up to ~25 KB for an 8 KiB one): a 500 where Traefik sends the browser on.
 */
const ANSWER_MAX_HEADER_BYTES = 64 * 1024;

export async function startDevEdge(opts: DevEdgeOptions): Promise<DevEdge> {
  const config = loadEdgeConfig(opts.dynamicConfigPath);
  const omitted = new Set(opts.omitRouters ?? []);
  const problems: ConfigProblem[] = [];
  const file = opts.dynamicConfigPath;
  for (const name of omitted) {
    if (!config.routers.some((r) => r.name === name)) problems.push({ file, key: `http.routers.${name}`, message: 'omitRouters names a router that does not exist' });
  }
  const routers = config.routers.filter((r) => !omitted.has(r.name));
  const entryPoint: EntryPointConfig = opts.staticConfigPath
    ? loadEntryPoint(opts.staticConfigPath, opts.entryPoint)
    : { name: opts.entryPoint ?? 'web', middlewares: [], underscoreHeadersStrategy: 'keep', encodeQuerySemicolons: false };
  for (const m of entryPoint.middlewares) {
    if (!config.middlewares[m]) {
      problems.push({ file: opts.staticConfigPath!, key: `entryPoints.${entryPoint.name}.http.middlewares`, message: `middleware ${m} is not defined in ${file}` });
    }
  }
  const origin = (name: string, key: string): URL | undefined => {
    const base = opts.services[name];
    if (base === undefined || !URL.canParse(base)) {
      problems.push({ file, key, message: `no URL for "${name}" in the development edge's services map` });
      return undefined;
    }
    const u = new URL(base);
    if (u.protocol !== 'http:' || (u.pathname !== '/' && u.pathname !== '')) {
      problems.push({ file, key, message: `services.${name} must be a plain http origin, got ${base}` });
      return undefined;
    }
    return u;
  };
  const chains = new Map<string, Step[]>();
  for (const r of routers) {
    const steps: Step[] = [];
    for (const m of [...entryPoint.middlewares, ...r.middlewares]) {
      const mw = config.middlewares[m];
      if (!mw) continue; // reported above
      if (mw.type === 'headers') steps.push(headersStep(mw.headers));
      else if (mw.type === 'rateLimit') steps.push(rateLimitStep(new RateLimiter(mw.rateLimit)));
      else {
        const address = new URL(mw.forwardAuth.address);
        const target = origin(address.hostname, `http.middlewares.${m}.forwardAuth.address`);
        if (target) steps.push(forwardAuthStep(mw.forwardAuth, address, target));
      }
    }
    const target = origin(r.service, `http.routers.${r.name}.service`);
    if (target) steps.push(proxyStep(target));
    chains.set(r.name, steps);
  }
  if (problems.length) throw new ConfigError(problems);

  const canonical = opts.canonicalOrigin === undefined ? undefined : new URL(opts.canonicalOrigin);
  const misnamed = (hostHeader: string): boolean => canonical !== undefined && LOOPBACK_NAMES.has(canonical.hostname)
    && hostHeader.toLowerCase() !== canonical.host && LOOPBACK_NAMES.has(hostOnly(hostHeader)) && (portOf(hostHeader) || '80') === (canonical.port || '80');
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const serverName = hostname();
  const log = opts.log;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const target = sanitizeRequestTarget(req.url ?? '');
    const hostHeader = req.headers.host ?? '';
    const router = target && selectRouter(routers, { host: hostOnly(hostHeader), path: target.path });
    const underscored = Object.keys(req.headers).filter((h) => h.includes('_'));
    const done = (status: number, routerName?: string) => log?.info({
      method: req.method, path: target?.path ?? '(refused)', router: routerName, status,
      ms: Math.round(performance.now() - started),
    }, 'edge');
    if (!target || (underscored.length > 0 && entryPoint.underscoreHeadersStrategy === 'reject')) {
      plain(res, 400, '400 Bad Request\n'); done(400); return;
    }
    // Only what a person types or follows: other methods go on as ever (and meet the CSRF checks).
    if ((req.method === 'GET' || req.method === 'HEAD') && misnamed(hostHeader)) {
      // req.url is visible ASCII starting with "/" (sanitizeRequestTarget): safe in a Location.
      res.writeHead(302, { location: `${opts.canonicalOrigin}${req.url}`, 'cache-control': 'no-store', 'content-length': 0 });
      res.end();
      done(302);
      return;
    }
    if (!router) { plain(res, 404, '404 page not found\n'); done(404); return; }

    const clientIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const headers = copyHeaders(req.headers);
    // Hop-by-hop headers, and those the client names in Connection, go at the entry point, before
    // any middleware, as Traefik (since 3.1.3) does: removed only on the way to the upstream, a
    // `Connection: X-Auth-User` would delete what forwardAuth just set.
    stripHopByHop(headers, false);
    // Entry point: underscoreHeadersStrategy: delete removes every header whose name has a "_".
    if (entryPoint.underscoreHeadersStrategy === 'delete') for (const h of underscored) delete headers[h];
    // Nobody is trusted: Traefik's own X-Forwarded-* list and X-Real-Ip (any "_" spelling) are
    // replaced. Nothing else: Forwarded, X-Forwarded-Ssl and the like pass unless a middleware
    // (the bundled config's strip-forwarding) removes them.
    deleteTraefikXHeaders(headers);
    headers['x-forwarded-proto'] = 'http';
    if (hostHeader) headers['x-forwarded-host'] = hostHeader;
    headers['x-forwarded-port'] = /:(\d+)$/.exec(hostHeader)?.[1] ?? '80';
    headers['x-forwarded-server'] = serverName;
    headers['x-real-ip'] = clientIp;

    // http.AllowQuerySemicolons at the entry point, and the proxy's director after it: a ";" in the
    // query is a "&" for forwardAuth's X-Forwarded-Uri and for the upstream alike.
    const query = target.query.replaceAll(';', entryPoint.encodeQuerySemicolons ? '%3B' : '&');
    const ex: Exchange = { req, res, uri: target.path + query, hostHeader, clientIp, headers, modifiers: [] };
    const steps = chains.get(router.name)!;
    const run = (i: number): Promise<void> => steps[i]!(ex, () => run(i + 1));
    res.once('finish', () => done(ex.status ?? res.statusCode, router.name));
    run(0).catch((err: unknown) => {
      log?.error({ err: String(err), router: router.name }, 'edge failure');
      if (!res.headersSent) plain(res, 500, 'Internal Server Error\n');
      else res.destroy();
    });
  };

  function respond(ex: Exchange, status: number, headers: ResponseHeaders, body: Buffer | Readable | undefined): void {
    for (let i = ex.modifiers.length - 1; i >= 0; i--) ex.modifiers[i]!(headers);
    ex.status = status;
    ex.res.writeHead(status, headers);
    if (body === undefined || ex.req.method === 'HEAD') {
      if (body && !Buffer.isBuffer(body)) body.resume();
      ex.res.end();
    } else if (Buffer.isBuffer(body)) ex.res.end(body);
    else body.pipe(ex.res);
  }

  function headersStep(cfg: HeadersConfig): Step {
    const hasCors = [cfg.accessControlAllowOriginList, cfg.accessControlAllowMethods, cfg.accessControlAllowHeaders,
      cfg.accessControlExposeHeaders].some((x) => x && x.length > 0) || !!cfg.accessControlAllowCredentials ||
      !!cfg.accessControlMaxAge || !!cfg.addVaryHeader;
    const allowedOrigin = (o: string | undefined) =>
      o === undefined ? undefined : cfg.accessControlAllowOriginList?.find((x) => x === '*' || x === o);
    return async (ex, next) => {
      const origin = single(ex.req.headers.origin);
      if (hasCors && ex.req.method === 'OPTIONS' && origin && single(ex.req.headers['access-control-request-method'])) {
        const h: ResponseHeaders = {};
        if (cfg.accessControlAllowCredentials) h['access-control-allow-credentials'] = 'true';
        if (cfg.accessControlAllowHeaders?.length) h['access-control-allow-headers'] = cfg.accessControlAllowHeaders.join(',');
        if (cfg.accessControlAllowMethods?.length) h['access-control-allow-methods'] = cfg.accessControlAllowMethods.join(',');
        const match = allowedOrigin(origin);
        if (match) h['access-control-allow-origin'] = match;
        h['access-control-max-age'] = String(cfg.accessControlMaxAge ?? 0);
        h['content-length'] = '0';
        respond(ex, 200, h, undefined);
        return;
      }
      for (const [k, v] of Object.entries(cfg.customRequestHeaders ?? {})) {
        if (v === '') delete ex.headers[k.toLowerCase()];
        else ex.headers[k.toLowerCase()] = v;
      }
      ex.modifiers.push((h) => {
        // Security headers first (Traefik nests them inside the custom/CORS handler).
        const sec: Record<string, string> = {};
        if (cfg.stsSeconds && cfg.forceSTSHeader) { // the dev edge is plain http: HSTS only when forced
          sec['strict-transport-security'] = `max-age=${cfg.stsSeconds}` +
            (cfg.stsIncludeSubdomains ? '; includeSubDomains' : '') + (cfg.stsPreload ? '; preload' : '');
        }
        if (cfg.customFrameOptionsValue) sec['x-frame-options'] = cfg.customFrameOptionsValue;
        else if (cfg.frameDeny) sec['x-frame-options'] = 'DENY';
        if (cfg.contentTypeNosniff) sec['x-content-type-options'] = 'nosniff';
        if (cfg.browserXssFilter) sec['x-xss-protection'] = '1; mode=block';
        if (cfg.contentSecurityPolicy) sec['content-security-policy'] = cfg.contentSecurityPolicy;
        if (cfg.referrerPolicy) sec['referrer-policy'] = cfg.referrerPolicy;
        if (cfg.permissionsPolicy) sec['permissions-policy'] = cfg.permissionsPolicy;
        for (const [k, v] of Object.entries(sec)) setHeader(h, k, v);
        for (const [k, v] of Object.entries(cfg.customResponseHeaders ?? {})) {
          if (v === '') deleteHeader(h, k);
          else setHeader(h, k, v);
        }
        const match = allowedOrigin(origin);
        if (match) setHeader(h, 'access-control-allow-origin', match);
        if (cfg.accessControlAllowCredentials) setHeader(h, 'access-control-allow-credentials', 'true');
        if (cfg.accessControlExposeHeaders?.length) setHeader(h, 'access-control-expose-headers', cfg.accessControlExposeHeaders.join(','));
        if (cfg.addVaryHeader) {
          const vary = getHeader(h, 'vary');
          if (vary !== 'Origin') setHeader(h, 'vary', vary ? `${vary},Origin` : 'Origin');
        }
      });
      await next();
    };
  }

  function rateLimitStep(limiter: RateLimiter): Step {
    return async (ex, next) => {
      const a = limiter.admit(ex.clientIp);
      if ('refused' in a) {
        const text = 'Too Many Requests';
        respond(ex, 429, {
          'retry-after': String(Math.ceil(a.retryInMs / 1000)), 'x-retry-in': goDuration(a.retryInMs),
          'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)),
        }, Buffer.from(text));
        return;
      }
      if (a.wait > 0) await new Promise((r) => setTimeout(r, a.wait));
      await next();
    };
  }

  function forwardAuthStep(cfg: ForwardAuthConfig, address: URL, target: URL): Step {
    const responseHeaders = (cfg.authResponseHeaders ?? []).map((h) => h.toLowerCase());
    const requestFilter = cfg.authRequestHeaders?.length ? new Set(cfg.authRequestHeaders.map((h) => h.toLowerCase())) : undefined;
    const limit = cfg.maxResponseBodySize ?? -1;
    return async (ex, next) => {
      const h: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ex.headers)) h[k] = v;
      stripHopByHop(h, false);
      delete h['content-length']; // the auth request has no body
      // trustForwardHeader set to false: writeHeader deletes Traefik's X-headers (X-Real-Ip and
      // X-Forwarded-Server too) and sets its own; left unset, the older code only overwrites
      // For, Proto, Method, Host and Uri.
      if (cfg.trustForwardHeader === false) deleteTraefikXHeaders(h);
      if (requestFilter) for (const k of Object.keys(h)) if (!requestFilter.has(k)) delete h[k];
      h['x-forwarded-for'] = ex.clientIp;
      h['x-forwarded-method'] = ex.req.method ?? 'GET';
      h['x-forwarded-proto'] = 'http';
      if (cfg.trustForwardHeader === false) h['x-forwarded-port'] = /:(\d+)$/.exec(ex.hostHeader)?.[1] ?? '80';
      if (ex.hostHeader) h['x-forwarded-host'] = ex.hostHeader;
      else delete h['x-forwarded-host'];
      h['x-forwarded-uri'] = ex.uri;
      h.host = address.host; // what Traefik's HTTP client sends

      let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer };
      try {
        answer = await fetchLimited({
          protocol: 'http:', hostname: target.hostname, port: target.port || 80, agent, maxHeaderSize: ANSWER_MAX_HEADER_BYTES,
          method: cfg.preserveRequestMethod ? ex.req.method : 'GET',
          path: address.pathname + address.search, headers: h,
        }, limit, opts.authTimeoutMs ?? AUTH_TIMEOUT_MS);
      } catch (err) {
        // Traefik answers 500 when the auth server cannot be reached, and 401 (no body) when its
        // answer is over maxResponseBodySize (forward.go, errResponseBodyTooLarge): fail closed.
        log?.warn({ err: (err as Error).message, address: address.href }, 'forwardAuth request failed');
        respond(ex, err instanceof ResponseBodyTooLarge ? 401 : 500, { 'content-length': '0' }, undefined);
        ex.req.resume();
        return;
      }

      if (answer.status < 200 || answer.status >= 300) {
        const out = copyHeaders(answer.headers);
        for (const k of ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']) delete out[k];
        const location = single(answer.headers.location);
        if (location !== undefined && location !== '') {
          out.location = cfg.preserveLocationHeader ? location : new URL(location, address).href;
        }
        out['content-length'] = String(answer.body.length);
        respond(ex, answer.status, out, answer.body);
        ex.req.resume();
        return;
      }
      for (const name of responseHeaders) {
        delete ex.headers[name];
        const v = answer.headers[name];
        if (v !== undefined) ex.headers[name] = v;
      }
      await next();
    };
  }

  function proxyStep(target: URL): Step {
    return (ex) => new Promise<void>((resolve) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ex.headers)) headers[k] = v;
      stripHopByHop(headers, true);
      // The entry removed any client value, so this is the whole chain: the client's address.
      headers['x-forwarded-for'] = ex.clientIp;
      const upstream = httpRequest({
        protocol: 'http:', hostname: target.hostname, port: target.port || 80, agent, maxHeaderSize: ANSWER_MAX_HEADER_BYTES,
        method: ex.req.method, path: ex.uri, headers, // passHostHeader: the Host header is kept
      });
      upstream.on('response', (r) => {
        const out = copyHeaders(r.headers);
        stripHopByHop(out, true);
        respond(ex, r.statusCode ?? 502, out, r);
        r.once('end', resolve);
        r.once('error', () => { ex.res.destroy(); resolve(); });
      });
      upstream.on('error', (err) => {
        log?.warn({ err: err.message, service: target.host }, 'upstream request failed');
        if (!ex.res.headersSent) respond(ex, 502, { 'content-type': 'text/plain; charset=utf-8' }, Buffer.from('Bad Gateway\n'));
        else ex.res.destroy();
        resolve();
      });
      ex.res.once('close', () => { if (!ex.res.writableFinished) upstream.destroy(); resolve(); });
      ex.req.pipe(upstream);
    });
  }

  const listening = await listen(handler, opts.port, opts.host ?? '127.0.0.1');
  return {
    url: listening.url,
    port: listening.port,
    config: { ...config, routers },
    entryPoint,
    close: async () => {
      await listening.close();
      agent.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers.

class ResponseBodyTooLarge extends Error {}

/** Traefik reads at most limit + 1 bytes of the auth answer: anything more is too large. */
function fetchLimited(
  options: RequestOptions,
  limit: number,
  timeoutMs: number,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = () => clearTimeout(timer);
    const req = httpRequest(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (limit >= 0 && size > limit) {
          settle();
          res.destroy();
          req.destroy();
          reject(new ResponseBodyTooLarge(`the auth response body is larger than maxResponseBodySize (${limit} bytes)`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => { settle(); resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }); });
      res.on('error', (err) => { settle(); reject(err); });
    });
    req.on('error', (err) => { settle(); reject(err); });
    // A deadline for the whole exchange, reading the answer included, as Go's Client.Timeout: a
    // socket idle timeout never fired for an answer that trickled in, and the client waited forever.
    timer = setTimeout(() => req.destroy(new Error('the auth server did not answer in time')), timeoutMs);
    req.end();
  });
}

function copyHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

/** Removes hop-by-hop headers, including every header the Connection header names. */
function stripHopByHop(h: Record<string, string | string[]>, proxyAuth: boolean): void {
  const conn = h.connection;
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : []) {
    for (const name of v.split(',')) delete h[name.trim().toLowerCase()];
  }
  for (const k of HOP_BY_HOP) delete h[k];
  // Proxy-Authorization goes to the auth server (RFC 7235 4.4), never to an upstream.
  if (proxyAuth) { delete h['proxy-authorization']; delete h['proxy-authenticate']; }
}

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The port of a Host header ('' when it names none). */
function portOf(hostHeader: string): string {
  const i = hostHeader.lastIndexOf(':');
  return i > hostHeader.lastIndexOf(']') ? hostHeader.slice(i + 1) : '';
}

function hostOnly(hostHeader: string): string {
  const h = hostHeader.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return i === -1 ? h : h.slice(0, i);
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function setHeader(h: ResponseHeaders, name: string, value: string): void {
  deleteHeader(h, name);
  h[name.toLowerCase()] = value;
}
function deleteHeader(h: ResponseHeaders, name: string): void {
  const lc = name.toLowerCase();
  for (const k of Object.keys(h)) if (k.toLowerCase() === lc) delete h[k];
}
function getHeader(h: ResponseHeaders, name: string): string | undefined {
  const lc = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === lc) return Array.isArray(v) ? v.join(',') : v;
  return undefined;
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
