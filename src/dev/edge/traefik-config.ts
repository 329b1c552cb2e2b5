// The Traefik configuration files the development edge applies: the static file's entry point and
// the dynamic file's routers, middlewares and services. What it does not apply is refused at
// startup, never ignored.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError, type ConfigProblem } from '../../errors.ts';
import { MAX_HEADER_BYTES } from '../../http/serve.ts';
import { rateLimitProblems, type RateLimitConfig } from './rate-limit.ts';
import { parseRule, type RouteRequest, type RuleMatcher } from './rule.ts';

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
  /** The router's entryPoints (undefined: every entry point, as Traefik's default). */
  readonly entryPoints?: readonly string[];
  /** tls: set: Traefik routes only requests that came over TLS to it. */
  readonly tls: boolean;
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
    if (r.entryPoints !== undefined && !isStringArray(r.entryPoints)) { add([...at, 'entryPoints'], 'expected a list of names'); ok = false; }
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
      name, rule: r.rule as string, match, middlewares: mws, service, tls: r.tls !== undefined,
      ...(r.entryPoints === undefined ? {} : { entryPoints: r.entryPoints as string[] }),
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
