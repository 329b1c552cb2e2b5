// Offline checks of traefik/ and compose/: the files validate against the upstream JSON schemas,
// reference only things that exist, and agree with each other and with compose/config/.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { loadEdgeConfig, loadEntryPoint, sanitizeRequestTarget, selectRouter, TRAEFIK_X_HEADERS, type EdgeConfig } from '../../src/dev/edge/index.ts';
import { denoImageV8Flags } from '../helpers/process.ts';
import { FORWARD_AUTH_MAX_HEADER_BYTES, MAX_HEADER_BYTES } from '../../src/http/serve.ts';
import { DEFAULT_SESSION_CACHE_BYTES } from '../../src/session/cache.ts';
import { PAGE_CSP } from '../../src/bff/error-page.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHARED = resolve(ROOT, '..', 'shared', 'reference');
const TRAEFIK_STATIC = join(ROOT, 'traefik', 'traefik.yml');
const TRAEFIK_DYNAMIC = join(ROOT, 'traefik', 'dynamic', 'goldpath.yml');
const COMPOSE_DIR = join(ROOT, 'compose');
const COMPOSE = join(COMPOSE_DIR, 'compose.yaml');

type Obj = Record<string, unknown>;
const readYaml = (file: string): unknown => parseYaml(readFileSync(file, 'utf8'), { merge: true });

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  command?: string[];
  ports?: unknown[];
  expose?: unknown[];
  volumes?: string[];
  env_file?: unknown;
  environment?: Record<string, string>;
  profiles?: string[];
  networks?: string[] | Record<string, { aliases?: string[] } | null>;
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  healthcheck?: { test?: string[] | string };
  restart?: string;
  user?: string;
  init?: boolean;
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  privileged?: boolean;
  mem_limit?: string;
  pids_limit?: number;
  [other: string]: unknown;
}
interface Compose { services: Record<string, ComposeService>; networks: Record<string, Obj | null> }

const compose = readYaml(COMPOSE) as Compose;
const edge: EdgeConfig = loadEdgeConfig(TRAEFIK_DYNAMIC);
const dynamic = readYaml(TRAEFIK_DYNAMIC) as { http: { middlewares: Obj; services: Obj; routers: Obj } };
const staticConfig = readYaml(TRAEFIK_STATIC) as Obj;

function schema(name: string): Obj | undefined {
  const file = join(SHARED, name);
  if (!existsSync(file)) return undefined;
  const s = JSON.parse(readFileSync(file, 'utf8')) as Obj;
  // Draft-07 schemas; the URL spelling of $schema varies between them, so Ajv's default meta-schema is used.
  delete s.$schema;
  return s;
}

function validator(name: string, ctx: Mocha.Context) {
  const s = schema(name);
  if (!s) {
    // The reference copies live beside the repository (../shared/reference). Missing in CI is a failure.
    if (process.env.CI) assert.fail(`${join(SHARED, name)} is missing`);
    ctx.skip();
  }
  return new Ajv({ strict: false, allErrors: true }).compile(s!);
}

function mount(svc: ComposeService, hostPath: string): string | undefined {
  for (const v of svc.volumes ?? []) {
    const [src, dst] = v.split(':');
    if (resolve(COMPOSE_DIR, src!) === resolve(COMPOSE_DIR, hostPath)) return dst;
  }
  return undefined;
}

/**
 * A .dockerignore as BuildKit reads it: the last pattern that matches a path or one of its parent
 * folders decides (! re-includes); * and ? stay within a segment, ** crosses them.
 */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const neg = l.startsWith('!');
    const glob = posix.normalize((neg ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/$/, '');
    const re = glob.split(/(\*\*\/?|\*|\?)/).map((t) => t === '**/' ? '(?:.*/)?' : t === '**' ? '.*' : t === '*' ? '[^/]*' : t === '?' ? '[^/]'
      : t.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('');
    return { neg, re: new RegExp(`^${re}$`) };
  });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (candidates.some((c) => r.re.test(c))) excluded = !r.neg;
    return excluded;
  };
}

/** The router Traefik picks, after its path sanitising (dot segments, duplicate slashes, unreserved %XX). */
function router(path: string, host = 'localhost') {
  const target = sanitizeRequestTarget(path);
  assert.ok(target, `${path} would be refused before routing`);
  return selectRouter(edge.routers, { host, path: target.path });
}

/** { host, port } of the servers of a Traefik service, or of a forwardAuth address. */
function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 80) };
}

/** The port a goldpath container listens on: its PORT variable. */
function listenPort(name: string): number {
  const svc = compose.services[name];
  assert.ok(svc, `compose.yaml has no service ${name}`);
  const port = Number(svc.environment?.PORT);
  assert.ok(Number.isInteger(port) && port > 0, `service ${name} sets no PORT`);
  return port;
}

describe('traefik/ and compose/ (static checks)', () => {
  describe('JSON schemas', () => {
    it('traefik/dynamic/goldpath.yml validates against the Traefik v3 file-provider schema', function () {
      const validate = validator('traefik-v3-file-provider.schema.json', this);
      assert.ok(validate(readYaml(TRAEFIK_DYNAMIC)), JSON.stringify(validate.errors, null, 2));
      // The schema really checks option names: a typo in forwardAuth is refused.
      const typo = structuredClone(dynamic) as { http: { middlewares: Record<string, { forwardAuth?: Obj }> } };
      typo.http.middlewares['goldpath-verify']!.forwardAuth!.authResponseHeader = ['X'];
      assert.equal(validate(typo), false);
    });

    it('traefik/traefik.yml validates against the Traefik v3 static schema', function () {
      const validate = validator('traefik-v3-static.schema.json', this);
      assert.ok(validate(staticConfig), JSON.stringify(validate.errors, null, 2));
      assert.equal(validate({ ...staticConfig, entryPoints: { web: { adress: ':8080' } } }), false);
    });

    it('compose/compose.yaml validates against the Compose specification schema', function () {
      const validate = validator('compose-spec.schema.json', this);
      assert.ok(validate(compose), JSON.stringify(validate.errors, null, 2));
      assert.equal(validate({ services: { x: { imag: 'y' } } }), false);
    });
  });

  describe('routers', () => {
    const verifyHost = hostPort(((dynamic.http.middlewares['goldpath-verify'] as Obj).forwardAuth as Obj).address as string).host;

    it('no router can send a request to the verify service', () => {
      for (const r of edge.routers) {
        assert.notEqual(r.service, 'verify', `router ${r.name} targets the verify service`);
        for (const url of edge.services[r.service] ?? []) {
          assert.notEqual(hostPort(url).host, verifyHost, `router ${r.name} -> service ${r.service} -> ${url} is the verify sidecar`);
        }
      }
      for (const path of ['/auth/verify', '/auth/verify/', '/auth/verify/x', '/AUTH/verify', '/Auth/Verify', '/auth/verify/../verify',
        '/auth//verify', '/auth/./verify', '/api/../auth/verify', '/auth/%76erify', '/auth/verify?x=1']) {
        for (const host of ['localhost', 'idp.localhost', 'verify']) {
          const r = router(path, host);
          assert.ok(r, `no router for ${path}`);
          assert.notEqual(r.service, 'verify');
          if (host === 'localhost') assert.equal(r.name, 'spa', `${path} must fall through to the SPA, got router ${r.name}`);
        }
      }
    });

    it('the auth router sends /auth/** (except /auth/verify) to the BFF; sign-in starts go there through a per-client rate limit', () => {
      for (const path of ['/auth/callback', '/auth/logout', '/auth/session', '/auth/backchannel-logout', '/auth/verifyx', '/auth/login/x']) {
        assert.equal(router(path)?.name, 'auth', path);
        assert.equal(router(path)?.service, 'bff', path);
      }
      // The allowed origins' SPAs call /api/** with their CSRF token, which they read from /auth/session:
      // the BFF's router answers them with the same CORS headers as the API's (the BFF sets none).
      assert.deepEqual(router('/auth/session')?.middlewares, ['cors']);
      const login = router('/auth/login')!;
      assert.equal(login.service, 'bff');
      assert.deepEqual(login.middlewares, ['login-rate']);
      const limit = (dynamic.http.middlewares['login-rate'] as Obj).rateLimit as Obj;
      assert.ok(limit, 'login-rate is a rateLimit middleware');
      assert.equal(limit.sourceCriterion, undefined, 'by remote address: no forwarded header is trusted');
      assert.ok((limit.average as number) >= 1 && (limit.burst as number) >= 1);
      assert.equal(router('/auth')?.name, 'spa');
      assert.equal(router('/authx/login')?.name, 'spa');
    });

    it('the api router covers /api and /api/**, not /apifoo, with [cors, goldpath-verify]', () => {
      for (const path of ['/api', '/api/', '/api/x', '/api/orders/42']) assert.equal(router(path)?.name, 'api', path);
      for (const path of ['/apifoo', '/ap', '/', '/index.html', '/x/api/orders']) assert.equal(router(path)?.name, 'spa', path);
      const api = edge.routers.find((r) => r.name === 'api')!;
      assert.deepEqual(api.middlewares, ['cors', 'goldpath-verify']);
      assert.equal(api.service, 'api');
    });

    it('the SPA catch-all has the lowest priority and the security headers', () => {
      const spa = edge.routers.find((r) => r.name === 'spa')!;
      assert.equal(spa.priority, Math.min(...edge.routers.map((r) => r.priority)));
      assert.deepEqual(spa.middlewares, ['security-headers']);
      const h = (dynamic.http.middlewares['security-headers'] as Obj).headers as Obj;
      assert.match(h.contentSecurityPolicy as string, /default-src 'self'/);
      assert.match(h.contentSecurityPolicy as string, /frame-ancestors 'none'/);
      assert.doesNotMatch(h.contentSecurityPolicy as string, /unsafe-inline|unsafe-eval/);
      assert.equal(h.contentTypeNosniff, true);
      assert.ok(h.referrerPolicy);
      assert.notEqual(h.forceSTSHeader, true, 'HSTS must only be sent over TLS');
    });

    it('the dev IdP host wins over every path router', () => {
      for (const path of ['/', '/api/orders', '/auth/login', '/.well-known/openid-configuration']) {
        assert.equal(router(path, 'idp.localhost')?.service, 'dev-idp', path);
      }
    });

    it('Traefik takes no larger request than the sidecar can read with the URI sent twice (a long URI gets the sidecar\'s 414)', () => {
      const web = ((staticConfig.entryPoints as Obj).web as Obj).http as Obj;
      const limit = web.maxHeaderBytes as number;
      assert.equal(limit, MAX_HEADER_BYTES, 'maxHeaderBytes of the web entry point');
      // Every client header, the URI again as X-Forwarded-Uri, and X-Forwarded-Method/-Proto/-Host/-For.
      assert.ok(FORWARD_AUTH_MAX_HEADER_BYTES >= 2 * limit + 1024);
    });

    it('every router to the API goes through [cors, goldpath-verify], whatever host or priority it has', () => {
      // The path checks above ask with Host: localhost only: a router such as Host(`api.localhost`) -> api,
      // or one at a higher priority, would reach the API without the sidecar and still pass them.
      const protectedServices = new Set(['api']);
      for (const r of edge.routers) {
        if (protectedServices.has(r.service)) assert.deepEqual(r.middlewares, ['cors', 'goldpath-verify'], `router ${r.name} -> ${r.service}`);
      }
      for (const host of ['localhost', 'api.localhost', 'example.com', '127.0.0.1']) {
        for (const path of ['/api', '/api/orders/42', '/api/public/hello']) assert.equal(router(path, host)?.name, 'api', `${host}${path}`);
      }
    });

    it('every router listens on the web entry point only (never on the ping/metrics one)', () => {
      const entryPoints = Object.keys(staticConfig.entryPoints as Obj);
      for (const [name, r] of Object.entries(dynamic.http.routers as Record<string, { entryPoints?: string[] }>)) {
        // Without entryPoints a router listens on every entry point, :8082 included.
        assert.deepEqual(r.entryPoints, ['web'], `router ${name}: entryPoints`);
        for (const ep of r.entryPoints ?? []) assert.ok(entryPoints.includes(ep), `router ${name}: no entry point ${ep} in traefik.yml`);
      }
    });

    it('forwardAuth: all client headers in, the SPEC section 5 headers out, bounded, no trust', () => {
      const fa = (dynamic.http.middlewares['goldpath-verify'] as Obj).forwardAuth as Obj;
      assert.equal(fa.trustForwardHeader, false);
      assert.equal(fa.authRequestHeaders, undefined, 'the sidecar needs every client header');
      assert.deepEqual(new Set((fa.authResponseHeaders as string[]).map((h) => h.toLowerCase())),
        new Set(['authorization', 'dpop', 'x-auth-user', 'x-auth-roles', 'x-request-id', 'cookie', 'x-csrf-token']));
      assert.ok(Number.isInteger(fa.maxResponseBodySize) && (fa.maxResponseBodySize as number) > 0);
      assert.equal(new URL(fa.address as string).pathname, '/auth/verify');
    });
  });

  describe('agreement with compose/config', () => {
    const routesFile = join(COMPOSE_DIR, 'config', 'routes.yaml');
    const routes = () => readYaml(routesFile) as { routes: { prefix: string }[]; cors?: { allowed_origins?: string[] } };

    it('the cors middleware allows exactly routes.yaml cors.allowed_origins', () => {
      const cors = (dynamic.http.middlewares.cors as Obj).headers as Obj;
      assert.deepEqual([...(cors.accessControlAllowOriginList as string[])].sort(), [...(routes().cors?.allowed_origins ?? [])].sort());
      assert.equal(cors.accessControlAllowCredentials, true);
      const allowHeaders = (cors.accessControlAllowHeaders as string[]).map((h) => h.toLowerCase());
      assert.ok(allowHeaders.includes('x-csrf-token') && allowHeaders.includes('content-type'));
      assert.ok(!(cors.accessControlAllowOriginList as string[]).includes('*'));
      // The list is the whole truth: an upstream's own (maybe echoed) Access-Control-Allow-Origin is deleted.
      assert.equal((cors.customResponseHeaders as Obj | undefined)?.['Access-Control-Allow-Origin'], '');
    });

    it('/api and /auth answers run no script: the cors middleware sets the BFF pages\' own policy', () => {
      const cors = (dynamic.http.middlewares.cors as Obj).headers as Obj;
      // It replaces the BFF's on its pages: anything stricter would break them, anything looser
      // would let an HTML answer under /api run a script on the app's origin.
      assert.equal(cors.contentSecurityPolicy, PAGE_CSP);
      assert.match(PAGE_CSP, /default-src 'none'/);
      assert.doesNotMatch(PAGE_CSP, /script-src|unsafe-eval|sandbox/);
    });

    it('the api router covers every routes.yaml prefix', () => {
      const list = routes().routes;
      assert.ok(list.length > 0);
      for (const { prefix } of list) {
        for (const path of [prefix, `${prefix}/`, `${prefix}/42`, `${prefix}/a/b`]) {
          assert.equal(router(path)?.name, 'api', `${path} (routes.yaml prefix ${prefix}) must go through the api router`);
        }
      }
    });

    it('pdp.yaml policies resolve, inside the containers, to the mounted policies folder', () => {
      const bff = compose.services.bff!;
      const configDir = bff.environment?.GOLDPATH_CONFIG_DIR;
      assert.equal(mount(bff, './config'), configDir, 'GOLDPATH_CONFIG_DIR must be where ./config is mounted');
      const policiesMount = mount(bff, '../policies');
      assert.ok(policiesMount, 'the policies folder is not mounted');
      const pdp = readYaml(join(COMPOSE_DIR, 'config', 'pdp.yaml')) as { policies: string[] };
      for (const p of pdp.policies) {
        const inContainer = posix.resolve(configDir!, p);
        assert.ok(inContainer.startsWith(policiesMount + '/'), `${p} -> ${inContainer} is outside ${policiesMount}`);
        assert.ok(existsSync(resolve(COMPOSE_DIR, 'config', p)), `${p} does not exist`);
      }
    });
  });

  describe('compose.yaml', () => {
    it('has the golden-path services, dev-idp only in the dev profile', () => {
      for (const s of ['traefik', 'redis', 'bff', 'verify', 'api', 'spa', 'dev-idp']) assert.ok(compose.services[s], s);
      assert.deepEqual(compose.services['dev-idp']!.profiles, ['dev']);
      for (const [name, s] of Object.entries(compose.services)) {
        if (name !== 'dev-idp') assert.equal(s.profiles, undefined, `${name} must run without a profile`);
      }
      assert.match(compose.services.traefik!.image!, /^traefik:v3\.\d+\.\d+$/, 'pin Traefik v3 to a patch release');
      assert.match(compose.services.redis!.image!, /^redis:7/);
    });

    it('publishes only Traefik\'s web entry point; verify is internal', () => {
      for (const [name, s] of Object.entries(compose.services)) {
        if (name !== 'traefik') assert.equal(s.ports, undefined, `${name} must not publish ports`);
      }
      assert.equal(compose.services.verify!.expose, undefined);
      const ports = compose.services.traefik!.ports as string[];
      assert.deepEqual(ports, ['127.0.0.1:8080:8080'], 'on loopback only: the dev IdP signs anyone in');
      const web = ((staticConfig.entryPoints as Obj).web as Obj).address as string;
      assert.equal(web, ':8080');
      for (const [name, ep] of Object.entries(staticConfig.entryPoints as Obj)) {
        if (name !== 'web') assert.ok(!ports.some((p) => p.endsWith(`:${((ep as Obj).address as string).slice(1)}`)), `${name} is published`);
      }
    });

    it('upstream services share no network with Redis or the sidecar; each service reaches what it calls', () => {
      const netsOf = (name: string): string[] => {
        const n = compose.services[name]!.networks;
        return n === undefined ? ['default'] : Array.isArray(n) ? n : Object.keys(n);
      };
      const reaches = (from: string, to: string) => netsOf(from).some((n) => netsOf(to).includes(n));
      for (const name of Object.keys(compose.services)) {
        for (const n of netsOf(name)) assert.ok(n in compose.networks, `${name}: network ${n} is not declared`);
      }
      // Everything Traefik routes to, and the dev IdP: none can touch the store or call the sidecar.
      const upstreams = new Set(Object.values(edge.services).flat().map((url) => hostPort(url).host));
      upstreams.add('dev-idp');
      for (const name of upstreams) {
        if (name === 'bff') continue; // the BFF writes the sessions
        for (const inner of ['redis', 'verify']) assert.ok(!reaches(name, inner), `${name} shares a network with ${inner}`);
      }
      assert.ok(upstreams.has('api') && upstreams.has('spa'));
      // Each listens beyond its own loopback (the dev IdP's default is loopback only).
      for (const name of ['bff', 'verify', 'api', 'spa', 'dev-idp']) assert.equal(compose.services[name]!.environment?.HOST, '0.0.0.0', `${name}: HOST`);
      for (const [from, to] of [['traefik', 'verify'], ['bff', 'redis'], ['verify', 'redis'], ['dev-idp', 'bff']] as const) {
        assert.ok(reaches(from, to), `${from} cannot reach ${to}`);
      }
      for (const name of upstreams) assert.ok(reaches('traefik', name), `traefik cannot reach ${name}`);
      // The BFF and the sidecar call the dev IdP at idp.localhost: Traefik's alias on a network they are on.
      const traefikNets = compose.services.traefik!.networks as Record<string, { aliases?: string[] } | null>;
      for (const name of ['bff', 'verify']) {
        assert.ok(netsOf(name).some((n) => traefikNets[n]?.aliases?.includes('idp.localhost')), `${name} cannot resolve idp.localhost`);
      }
    });

    it('every Traefik service and the forwardAuth address point at a compose service and its port', () => {
      for (const [name, urls] of Object.entries(edge.services)) {
        for (const url of urls) {
          const { host, port } = hostPort(url);
          assert.ok(compose.services[host], `traefik service ${name} -> ${url}: no compose service ${host}`);
          assert.equal(listenPort(host), port, `traefik service ${name} -> ${url}: ${host} listens on ${listenPort(host)}`);
        }
      }
      const address = ((dynamic.http.middlewares['goldpath-verify'] as Obj).forwardAuth as Obj).address as string;
      const { host, port } = hostPort(address);
      assert.equal(host, 'verify');
      assert.equal(listenPort('verify'), port);
      assert.deepEqual(compose.services.verify!.command?.slice(-1), ['verify']);
      assert.deepEqual(compose.services.bff!.command?.slice(-1), ['bff']);
      assert.deepEqual(compose.services['dev-idp']!.command?.slice(-1), ['dev-idp']);
    });

    it("node accepts every flag a service's command gives it (a typo would stop the container at start)", () => {
      let checked = 0;
      for (const [name, s] of Object.entries(compose.services)) {
        const script = s.command?.findIndex((c) => c.startsWith('dist/')) ?? -1;
        if (s.command?.[0] !== 'node' || script < 0) continue;
        const flags = s.command.slice(1, script);
        const r = spawnSync(process.execPath, [...flags, '-e', ''], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${name}: node ${flags.join(' ')}: ${r.stderr}`);
        checked += flags.length;
      }
      assert.ok(checked >= 2, 'the verify service starts node with its memory flags');
      const bad = spawnSync(process.execPath, ['--max-semi-space-sise=2', '-e', ''], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0, 'node refuses a misspelt flag: the check above can fail');
    });

    it('every file, folder and Dockerfile it references exists', () => {
      for (const [name, s] of Object.entries(compose.services)) {
        if (s.build) {
          const b = typeof s.build === 'string' ? { context: s.build } : s.build;
          const ctx = resolve(COMPOSE_DIR, b.context);
          assert.ok(statSync(ctx).isDirectory(), `${name}: build context ${b.context}`);
          assert.ok(existsSync(join(ctx, b.dockerfile ?? 'Dockerfile')), `${name}: ${b.dockerfile}`);
        }
        for (const v of s.volumes ?? []) {
          const src = v.split(':')[0]!;
          if (src.startsWith('.') || src.startsWith('/')) assert.ok(existsSync(resolve(COMPOSE_DIR, src)), `${name}: volume ${src}`);
        }
        const envFiles = s.env_file === undefined ? [] : ([] as unknown[]).concat(s.env_file);
        for (const f of envFiles) {
          const p = typeof f === 'string' ? f : (f as { path: string; required?: boolean }).path;
          if (typeof f === 'object' && (f as { required?: boolean }).required === false) continue;
          assert.ok(existsSync(resolve(COMPOSE_DIR, p)), `${name}: env_file ${p}`);
        }
        for (const d of Object.keys(s.depends_on ?? {})) assert.ok(compose.services[d], `${name} depends on unknown ${d}`);
        // Commands of the goldpath image name compiled files that the build produces from src/.
        const script = s.command?.find((c) => c.startsWith('dist/'));
        if (script) assert.ok(existsSync(join(ROOT, script.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `${name}: ${script}`);
      }
      const traefik = compose.services.traefik!;
      assert.equal(mount(traefik, '../traefik/traefik.yml'), '/etc/traefik/traefik.yml');
      assert.equal(mount(traefik, '../traefik/dynamic'), ((staticConfig.providers as Obj).file as Obj).directory);
      assert.ok(existsSync(join(COMPOSE_DIR, 'Dockerfile')));
    });

    it('.env.example documents every variable compose.yaml reads', () => {
      const used = new Set([...readFileSync(COMPOSE, 'utf8').matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
      const example = readFileSync(join(COMPOSE_DIR, '.env.example'), 'utf8');
      const documented = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]!));
      for (const v of used) assert.ok(documented.has(v), `${v} is not in .env.example`);
      for (const v of ['GOLDPATH_SESSION_KEYS', 'GOLDPATH_CLIENT_SECRET', 'GOLDPATH_PUBLIC_URL', 'REDIS_URL', 'GOLDPATH_IDP_ISSUER']) {
        assert.ok(documented.has(v), v);
      }
      assert.match(example, /^GOLDPATH_PUBLIC_URL=http:\/\/localhost:8080$/m);
      // Empty: compose's default, the bundled Redis with REDIS_PASSWORD.
      assert.match(example, /^REDIS_URL=$/m);
      assert.match(example, /^GOLDPATH_IDP_ISSUER=http:\/\/idp\.localhost:8080$/m);
      assert.match(example, /randomBytes\(32\)/, 'say how to generate the session keys');
    });

    it('the BFF and the sidecar get every setting of SPEC 2 that the operator may set in .env', () => {
      // A variable set in .env that compose does not pass on is silently ignored: the defaults apply.
      const settings = ['GOLDPATH_CONFIG_DIR', 'REDIS_URL', 'GOLDPATH_PUBLIC_URL', 'GOLDPATH_SESSION_KEYS', 'HOST', 'LOG_LEVEL', 'GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX', 'GOLDPATH_MAX_LOGINS_PER_MINUTE'];
      for (const name of ['bff', 'verify']) {
        const env = compose.services[name]!.environment ?? {};
        for (const v of settings) assert.ok(env[v] !== undefined, `${name}: ${v} is not passed`);
      }
      for (const v of ['GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX', 'REDIS_URL', 'LOG_LEVEL']) {
        assert.equal(compose.services.bff!.environment![v], compose.services.verify!.environment![v], `${v}: the BFF and the sidecar read the same`);
        assert.match(compose.services.bff!.environment![v]!, new RegExp(`^\\$\\{${v}:-`), `${v} comes from .env, with a default`);
      }
    });

    it('the IdP issuer works from the browser and the containers: traefik carries the idp.localhost alias', () => {
      const nets = compose.services.traefik!.networks as Record<string, { aliases?: string[] }>;
      assert.ok(Object.values(nets).some((n) => n?.aliases?.includes('idp.localhost')));
      assert.equal(new URL(compose.services.bff!.environment!.GOLDPATH_IDP_ISSUER!.replace(/^\$\{[A-Z_]+:-(.*)\}$/, '$1')).host, 'idp.localhost:8080');
      const idp = edge.routers.find((r) => r.name === 'idp')!;
      assert.equal(idp.service, 'dev-idp');
    });

    it('the web entry point runs strip-forwarding ahead of every router and deletes every "_" header', () => {
      // Traefik removes only its own list of forwarding headers from a client (TRAEFIK_X_HEADERS, and
      // their "_" spellings); RFC 7239 Forwarded and X-Forwarded-Ssl/-Scheme pass unless removed here.
      const web = ((staticConfig.entryPoints as Obj).web as Obj).http as Obj;
      assert.deepEqual(web.middlewares, ['strip-forwarding@file']);
      assert.equal(web.underscoreHeadersStrategy, 'delete');
      const strip = ((dynamic.http.middlewares['strip-forwarding'] as Obj).headers as Obj).customRequestHeaders as Record<string, string>;
      assert.deepEqual(Object.keys((dynamic.http.middlewares['strip-forwarding'] as Obj).headers as Obj), ['customRequestHeaders'],
        'headers only removes here: no CORS or security headers on every router');
      for (const name of ['Forwarded', 'X-Forwarded-Prefix', 'X-Forwarded-Ssl', 'X-Forwarded-Scheme']) {
        assert.equal(strip[name], '', `${name}: an empty value makes Traefik delete it`);
      }
      // Identity headers of the gateways goldpath replaces: an API moved behind it may still trust them.
      for (const name of ['X-Forwarded-User', 'X-Forwarded-Email', 'X-Forwarded-Groups', 'X-Auth-Request-User', 'X-Auth-Request-Email',
        'X-Auth-Request-Groups', 'Remote-User', 'Remote-Groups', 'Remote-Email', 'Remote-Name']) {
        assert.equal(strip[name], '', `${name}: a client must not set another gateway's identity header`);
      }
      for (const [name, value] of Object.entries(strip)) assert.equal(value, '', `${name} is set, not removed`);
      // Traefik's own list goes at the entry point anyway (X-Forwarded-Prefix too, since v3.2.1; it
      // stays in strip-forwarding for an entry point that trusts a load balancer).
      assert.ok(!Object.keys(strip).some((n) => TRAEFIK_X_HEADERS.has(n.toLowerCase()) && n !== 'X-Forwarded-Prefix'));
      // The development edge applies the same entry point (npm start and test/edge/edge.test.ts).
      const ep = loadEntryPoint(TRAEFIK_STATIC, 'web');
      assert.deepEqual(ep.middlewares, ['strip-forwarding']);
      assert.equal(ep.underscoreHeadersStrategy, 'delete');
      // The routers of the dynamic file listen on web only (checked above), so this covers them all.
    });

    it('no entry point trusts anyone\'s X-Forwarded-* (Traefik removes the clients\' and writes its own)', () => {
      // Nothing stands in front of Traefik in the trial; trusting the containers would let a
      // compromised upstream set X-Forwarded-Host/-Proto for the others, and `insecure` everyone.
      for (const [name, ep] of Object.entries(staticConfig.entryPoints as Record<string, { forwardedHeaders?: Obj }>)) {
        assert.equal(ep.forwardedHeaders, undefined, `entryPoints.${name}.forwardedHeaders`);
      }
    });

    it('each healthcheck asks the port its service listens on', () => {
      let checked = 0;
      for (const [name, s] of Object.entries(compose.services)) {
        const t = s.healthcheck?.test;
        const text = Array.isArray(t) ? t.join(' ') : t ?? '';
        for (const m of text.matchAll(/127\.0\.0\.1:(\d+)/g)) {
          assert.equal(Number(m[1]), listenPort(name), `${name}: healthcheck ${text}`);
          checked++;
        }
      }
      assert.ok(checked >= 2, 'the bff and verify healthchecks');
    });

    it('Traefik is pinned to a patch release that knows every option the bundled config uses (v3.6.22 or later)', () => {
      // Traefik refuses an option it does not know: in traefik.yml it does not start, in the dynamic
      // file it drops the whole file (every route 404). A floating tag (traefik:v3.6) may be an older
      // cached patch. First 3.6 patch with each (Traefik's docs/content/migrate/v3.md):
      // encodedCharacters 3.6.4 (allowed by default from 3.6.7), forwardAuth maxResponseBodySize 3.6.9,
      // trustForwardHeader as an explicit *bool 3.6.14, entry point underscoreHeadersStrategy 3.6.20;
      // and at least the patched releases of GHSA-x677-9fxg-v5c5 (underscore aliases of the headers
      // ForwardAuth sets), 3.6.22 and 3.7.6: 3.6.20 and 3.6.21 are in its affected range.
      // Another minor: check its release notes, then add it here.
      const minimumPatch: Record<number, number> = { 6: 22, 7: 6 };
      const image = compose.services.traefik!.image!;
      const m = /^traefik:v3\.(\d+)\.(\d+)$/.exec(image);
      assert.ok(m, `${image}: pin a patch release (traefik:v3.6.N), not a floating tag`);
      const [minor, patch] = [Number(m[1]), Number(m[2])];
      assert.ok(minor in minimumPatch, `${image}: no known minimum patch for v3.${minor}`);
      assert.ok(patch >= minimumPatch[minor]!, `${image}: needs v3.${minor}.${minimumPatch[minor]} or later`);
      const web = ((staticConfig.entryPoints as Obj).web as Obj).http as Obj;
      assert.ok('underscoreHeadersStrategy' in web && 'encodedCharacters' in web, 'the options this minimum is for');
    });

    it('the Dockerfile is multi-stage, builds with npm ci and tsc, and runs as uid 1000 on node:20 slim', () => {
      const df = readFileSync(join(COMPOSE_DIR, 'Dockerfile'), 'utf8');
      assert.ok((df.match(/^FROM /gm) ?? []).length >= 2);
      assert.match(df, /npm ci/);
      assert.match(df, /tsc -p/);
      assert.match(df, /^FROM node:20\.\d+\.\d+-slim AS runtime$/m);
      assert.match(df, /^USER 1000:1000$/m);
      assert.match(df, /COPY src\/dev\/spa/);
      assert.ok(existsSync(join(ROOT, 'src', 'dev', 'spa', 'index.html')));
      assert.ok(dirname(COMPOSE) === COMPOSE_DIR);
    });

    it("Dockerfile.deno gives Deno the sidecar's V8 tuning on its command line, which Deno accepts", () => {
      // Deno ignores V8 flags set at run time, where src/verify/process-tuning.ts sets them for Node.
      const v8 = denoImageV8Flags();
      const tuning = [...readFileSync(join(ROOT, 'src', 'verify', 'process-tuning.ts'), 'utf8').matchAll(/^flag\('([^']+)'/gm)].map((m) => m[1]!);
      assert.ok(tuning.length >= 5, `process-tuning.ts flags found: ${tuning.join(' ')}`);
      for (const f of tuning) assert.ok(v8.includes(f), `Dockerfile.deno lacks ${f}`);
      const nursery = (flags: readonly string[]) => flags.find((f) => f.startsWith('--max-semi-space-size='));
      assert.equal(nursery(v8), nursery(compose.services.verify!.command!), 'the same nursery as the Node sidecar');
      const deno = join(ROOT, 'node_modules', '.bin', 'deno');
      const ok = spawnSync(deno, ['eval', `--v8-flags=${v8.join(',')}`, ''], { encoding: 'utf8' });
      assert.equal(ok.status, 0, `deno --v8-flags=${v8.join(',')}: ${ok.stderr}`);
      const bad = spawnSync(deno, ['eval', '--v8-flags=--liftof-only', ''], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0, 'deno refuses a misspelt V8 flag: the check above can fail');
    });
  });

  describe('hardening (what users deploy from compose/)', () => {
    const services = () => Object.entries(compose.services);
    const netsOf = (name: string): string[] => {
      const n = compose.services[name]!.networks;
      return n === undefined ? ['default'] : Array.isArray(n) ? n : Object.keys(n);
    };
    /** Bytes of a compose size: 256m, 1g, 512k, 1024. */
    const bytes = (v: string | undefined): number => {
      const m = /^(\d+)([bkmg]?)b?$/i.exec(String(v ?? ''));
      assert.ok(m, `not a size: ${v}`);
      return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
    };
    const dockerfiles = ['Dockerfile', 'Dockerfile.deno'];
    /** The stages of a Dockerfile: name, base image, and their lines (continuations joined). */
    const stages = (file: string) => {
      const lines = readFileSync(join(COMPOSE_DIR, file), 'utf8').replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      const out: { base: string; name?: string; lines: string[] }[] = [];
      for (const l of lines) {
        const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
        if (from) out.push({ base: from[1]!, name: from[2], lines: [] });
        else out.at(-1)!.lines.push(l);
      }
      return out;
    };

    it('every container runs as a numeric non-root user, with a read-only root, no capabilities, no privilege escalation', () => {
      for (const [name, s] of services()) {
        const user = /^(\d+)(?::(\d+))?$/.exec(String(s.user ?? ''));
        assert.ok(user, `${name}: user must be a number (uid:gid), got ${s.user}`);
        assert.notEqual(Number(user[1]), 0, `${name} runs as root`);
        assert.equal(s.read_only, true, `${name}: read_only`);
        assert.deepEqual(s.cap_drop, ['ALL'], `${name}: cap_drop`);
        assert.equal(s.cap_add, undefined, `${name}: cap_add`);
        assert.ok(s.security_opt?.includes('no-new-privileges:true'), `${name}: no-new-privileges`);
      }
      // The goldpath image: the same user in the Dockerfile, for runs outside this file.
      assert.equal(compose.services.bff!.user, '1000:1000');
    });

    it('no container is privileged or shares the host\'s namespaces, devices or Docker socket', () => {
      for (const [name, s] of services()) {
        assert.notEqual(s.privileged, true, `${name}: privileged`);
        for (const k of ['network_mode', 'pid', 'ipc', 'userns_mode', 'uts', 'devices', 'cgroup']) assert.equal(s[k], undefined, `${name}: ${k}`);
        for (const v of s.volumes ?? []) assert.doesNotMatch(v, /docker\.sock|^\/(?::|$)|^\/(proc|sys|etc|var\/run)\b/, `${name}: volume ${v}`);
        for (const v of s.volumes ?? []) if (!/traefik\.yml|dynamic/.test(v)) assert.match(v, /:ro$/, `${name}: volume ${v} must be read-only`);
      }
    });

    it('every container has a restart policy, a memory and a pids limit; the sidecar\'s fits README "Memory"', () => {
      for (const [name, s] of services()) {
        assert.ok(['unless-stopped', 'always', 'on-failure'].includes(s.restart ?? ''), `${name}: restart ${s.restart}`);
        assert.ok(bytes(s.mem_limit) >= 64 * 1024 ** 2, `${name}: mem_limit ${s.mem_limit}`);
        assert.ok(Number.isInteger(s.pids_limit) && s.pids_limit! > 0, `${name}: pids_limit`);
      }
      // Idle RSS (72-74 MiB) with its garbage, plus the session cache at its bound (src/session/cache.ts):
      // a limit under that kills a sidecar that is only doing its job.
      assert.ok(bytes(compose.services.verify!.mem_limit) >= 128 * 1024 ** 2 + DEFAULT_SESSION_CACHE_BYTES, 'verify mem_limit');
      // Redis stops taking writes (noeviction) before the kernel kills it with every session.
      const maxmemory = /^maxmemory (\S+)$/m.exec(redisScript());
      assert.ok(maxmemory, 'redis: maxmemory');
      assert.ok(bytes(maxmemory[1]!.replace(/b$/, '')) < bytes(compose.services.redis!.mem_limit), 'redis: maxmemory under mem_limit');
      assert.match(redisScript(), /^maxmemory-policy noeviction$/m, 'sessions are never evicted to make room');
    });

    it('SIGTERM reaches each process: init for goldpath, exec-form commands, exec in the only shell', () => {
      for (const [name, s] of services()) {
        if (s.command !== undefined) assert.ok(Array.isArray(s.command), `${name}: command must be exec form`);
        if (s.command?.[0] === 'node') assert.equal(s.init, true, `${name}: init (docker-init passes SIGTERM on and reaps)`);
        if (s.command?.[0] === 'sh') assert.match(s.command.at(-1)!, /^exec /, `${name}: the shell must exec the server`);
      }
      for (const f of dockerfiles) {
        for (const st of stages(f)) for (const l of st.lines) if (/^(CMD|ENTRYPOINT)\b/.test(l)) assert.match(l, /^(CMD|ENTRYPOINT) \[/, `${f}: ${l}`);
      }
    });

    it('healthchecks ask /healthz or /readyz with what the image has (no curl or wget)', () => {
      for (const name of ['bff', 'verify']) {
        const t = compose.services[name]!.healthcheck?.test;
        assert.ok(Array.isArray(t) && t[0] === 'CMD' && t[1] === 'node', `${name}: ${t}`);
        assert.match(t.join(' '), /fetch\('http:\/\/127\.0\.0\.1:\d+\/(healthz|readyz)'\)/, name);
      }
      // The examples (api, spa, dev-idp) have no health endpoint and nothing waits on them.
      for (const name of ['traefik', 'redis', 'bff', 'verify']) {
        const t = compose.services[name]!.healthcheck?.test;
        assert.ok(t, `${name}: no healthcheck`);
        assert.doesNotMatch([t].flat().join(' '), /\b(curl|wget)\b/, name);
      }
    });

    /** The redis service's sh -c script, as compose hands it to sh ($$ is a literal $). */
    function redisScript(): string {
      const cmd = compose.services.redis!.command!;
      assert.deepEqual(cmd.slice(0, 2), ['sh', '-c']);
      assert.ok(!cmd[2]!.replace(/\$\$/g, '').includes('$'), 'compose would interpolate a single $: write $$');
      return cmd[2]!.replace(/\$\$/g, '$');
    }

    it('Redis: internal network only, out of Traefik\'s reach, a password required and on no command line', () => {
      const redis = compose.services.redis!;
      assert.equal(redis.ports, undefined);
      for (const n of netsOf('redis')) assert.equal(compose.networks[n]?.internal, true, `redis network ${n} must be internal`);
      for (const n of netsOf('traefik')) assert.ok(!netsOf('redis').includes(n), `traefik shares ${n} with redis`);
      assert.match(redis.environment!.REDIS_PASSWORD!, /^\$\{REDIS_PASSWORD:\?/, 'required, non-empty');
      assert.match(redis.environment!.REDISCLI_AUTH!, /^\$\{REDIS_PASSWORD:\?/, 'the healthcheck authenticates');
      const script = redisScript();
      assert.match(script, /^exec redis-server - <<EOF$/m, 'configuration on stdin');
      assert.match(script, /^requirepass \$REDIS_PASSWORD$/m);
      assert.match(script, /^protected-mode yes$/m);
      assert.doesNotMatch(JSON.stringify(redis.command) + JSON.stringify(redis.healthcheck), /--requirepass|-a |--pass/);
      for (const name of ['bff', 'verify']) assert.match(compose.services[name]!.environment!.REDIS_URL!, /:\$\{REDIS_PASSWORD\}@redis:/, name);
    });

    it('the session keys and the Redis password reach the BFF and the sidecar only, never the dev IdP or an upstream', () => {
      const secret = /GOLDPATH_SESSION_KEYS|REDIS_PASSWORD|REDIS_URL/;
      for (const [name, s] of services()) {
        const holds = Object.entries(s.environment ?? {}).filter(([k, v]) => secret.test(k) || secret.test(String(v))).map(([k]) => k);
        if (name === 'bff' || name === 'verify') assert.ok(holds.includes('GOLDPATH_SESSION_KEYS') && holds.includes('REDIS_URL'), name);
        else if (name !== 'redis') assert.deepEqual(holds, [], `${name} gets ${holds.join(', ')}, which it never reads`);
      }
    });

    it('Redis, started by that very script through sh, is the exec\'d process and refuses clients without the password', async function () {
      const redisServer = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
      const redisCli = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).stdout.trim();
      if (!redisServer || !redisCli) return this.skip();
      this.timeout(10_000);
      const port = await new Promise<number>((res) => { const srv = createServer().listen(0, '127.0.0.1', () => { const p = (srv.address() as { port: number }).port; srv.close(() => res(p)); }); });
      // redis-server and redis-cli as the container has them, on a free loopback port.
      const bin = mkdtempSync(join(tmpdir(), 'goldpath-redis-'));
      writeFileSync(join(bin, 'redis-server'), `#!/bin/sh\nexec ${redisServer} "$@" --port ${port} --bind 127.0.0.1\n`);
      writeFileSync(join(bin, 'redis-cli'), `#!/bin/sh\nexec ${redisCli} -p ${port} "$@"\n`);
      for (const f of ['redis-server', 'redis-cli']) chmodSync(join(bin, f), 0o755);
      const password = 'S3cr3t-' + process.pid + '-' + Date.now();
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, REDIS_PASSWORD: password };
      const child = spawn('sh', ['-c', redisScript()], { env, cwd: bin, stdio: 'ignore' });
      const health = (auth?: string) => spawnSync('sh', ['-c', [compose.services.redis!.healthcheck!.test!].flat().slice(1).join(' ')],
        { env: { ...env, REDISCLI_AUTH: auth ?? '' }, encoding: 'utf8' }).status;
      try {
        for (let i = 0; i < 100 && health(password) !== 0; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(health(password), 0, 'the healthcheck passes with the password');
        assert.notEqual(health(), 0, 'and fails without');
        const noAuth = spawnSync(redisCli, ['-p', String(port), 'GET', 'x'], { encoding: 'utf8' });
        assert.match(noAuth.stdout + noAuth.stderr, /NOAUTH/);
        const get = (key: string) => spawnSync(redisCli, ['-p', String(port), '--no-auth-warning', '-a', password, 'CONFIG', 'GET', key], { encoding: 'utf8' }).stdout;
        assert.match(get('maxmemory-policy'), /noeviction/);
        assert.match(get('protected-mode'), /yes/);
        // sh exec'd the server: the same pid, so SIGTERM goes to Redis. (Redis rewrites its argv
        // into a process title once it runs, so a password given there would not show here: the
        // static check above is what keeps it off the command line.)
        const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
        assert.match(argv, /redis-server/);
        assert.ok(!argv.includes(password));
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        rmSync(bin, { recursive: true, force: true });
      }
    });

    it('Traefik: no API or dashboard, no Docker provider, an access log that keeps no credential', () => {
      const api = (staticConfig.api ?? {}) as Obj;
      assert.notEqual(api.insecure, true, 'api.insecure publishes the API on :8080');
      assert.equal(api.dashboard, false);
      for (const r of Object.values(dynamic.http.routers as Record<string, { service: string }>)) assert.doesNotMatch(r.service, /@internal$/);
      const providers = staticConfig.providers as Obj;
      assert.deepEqual(Object.keys(providers), ['file'], 'no docker provider: no exposedByDefault, no socket');
      for (const [, s] of services()) for (const v of s.volumes ?? []) assert.doesNotMatch(v, /docker\.sock/);
      const fields = (staticConfig.accessLog as Obj).fields as { names: Record<string, string>; headers: { defaultMode: string; names: Record<string, string> } };
      assert.equal(fields.names.RequestPath, 'drop', 'the callback\'s ?code= stays out of the log');
      assert.equal(fields.headers.defaultMode, 'drop', 'headers by allow-list');
      for (const h of ['Authorization', 'Cookie', 'Set-Cookie', 'DPoP', 'X-CSRF-Token', 'Proxy-Authorization']) {
        assert.notEqual(fields.headers.names[h] ?? fields.headers.defaultMode, 'keep', `${h} is logged`);
      }
      for (const [h, mode] of Object.entries(fields.headers.names)) {
        if (mode === 'keep') assert.ok(['user-agent', 'content-type', 'x-request-id', 'sec-fetch-mode', 'sec-fetch-site', 'origin'].includes(h.toLowerCase()), `${h} kept`);
      }
    });

    it('.env.example ships no secret: compose refuses to start until each is generated', () => {
      const example = readFileSync(join(COMPOSE_DIR, '.env.example'), 'utf8');
      const text = readFileSync(COMPOSE, 'utf8');
      for (const v of ['GOLDPATH_SESSION_KEYS', 'GOLDPATH_CLIENT_SECRET', 'REDIS_PASSWORD']) {
        assert.match(example, new RegExp(`^${v}=$`, 'm'), `${v} must be empty in .env.example`);
        assert.match(text, new RegExp(`\\$\\{${v}:\\?`), `compose.yaml must require ${v}`);
      }
      // Nothing that looks like a key anywhere in it (a long base64/hex run on a value line).
      for (const line of example.split('\n').filter((l) => /^[A-Z0-9_]+=/.test(l))) assert.doesNotMatch(line.slice(line.indexOf('=')), /[A-Za-z0-9_\-+/]{20,}/, line);
      assert.match(readFileSync(join(ROOT, '.gitignore'), 'utf8'), /^\.env$/m);
    });

    it('base images are pinned to a release, never a floating major or latest (a digest, when present, is whole)', () => {
      const refs = [...services().map(([, s]) => s.image).filter((i): i is string => !!i && i !== 'goldpath:local'),
        ...dockerfiles.flatMap((f) => stages(f).map((st) => st.base))];
      assert.ok(refs.length >= 4);
      for (const ref of refs) {
        const m = /^([a-z0-9./-]+):([\w.-]+)(@sha256:[0-9a-f]{64})?$/.exec(ref);
        assert.ok(m, `${ref}: name:tag[@sha256:<64 hex>]`);
        assert.match(m[2]!, /^v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$/, `${ref}: a release tag (major.minor at least)`);
      }
      // Both Dockerfiles build from the same Node.
      const nodes = new Set(dockerfiles.flatMap((f) => stages(f).map((st) => st.base).filter((b) => b.startsWith('node:'))));
      assert.equal(nodes.size, 1, [...nodes].join(' '));
    });

    it('the images run as a numeric non-root user, bake in no secret, and hold production code only', () => {
      for (const f of dockerfiles) {
        const all = stages(f);
        const final = all.at(-1)!;
        const user = final.lines.filter((l) => /^USER /.test(l)).at(-1);
        assert.match(user ?? '', /^USER [1-9]\d*:\d+$/, `${f}: the final stage's USER`);
        for (const st of all) {
          for (const l of st.lines) {
            assert.doesNotMatch(l, /^(ENV|ARG)\s+\S*(SECRET|PASSWORD|KEYS?|TOKEN)\b/i, `${f}: ${l}`);
            assert.doesNotMatch(l, /^ADD\s/, `${f}: ${l} (COPY only: no remote or auto-extracted sources)`);
          }
        }
        // What reaches the final stage: no test/bench code, not the whole dist (dist/test is there).
        for (const l of final.lines.filter((x) => /^COPY /.test(x))) {
          const srcs = l.split(/\s+/).slice(1, -1).filter((a) => !a.startsWith('--'));
          for (const src of srcs) {
            assert.doesNotMatch(src, /(^|\/)(test|bench|\.env|\.git)(\/|$)|^\.$/, `${f}: ${l}`);
            assert.doesNotMatch(src, /(^|\/)dist\/?$/, `${f}: ${l} copies dist/test too`);
          }
        }
        assert.ok(!final.lines.some((l) => /npm (ci|install|i)\b/.test(l)), `${f}: no install in the final stage`);
        // node_modules comes from a stage whose last npm command leaves out devDependencies.
        for (const l of final.lines.filter((x) => /^COPY --from=\S+ \S*node_modules/.test(x))) {
          const from = /--from=(\S+)/.exec(l)![1];
          const st = all.find((s) => s.name === from)!;
          const npm = st.lines.flatMap((x) => x.split('&&')).filter((x) => /npm (ci|prune|install)/.test(x)).at(-1);
          assert.match(npm ?? '', /--omit=dev/, `${f}: stage ${from} keeps devDependencies`);
        }
      }
    });

    it('every package src/ imports at run time is a production dependency (the pruned image has it)', () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Obj };
      const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []);
      let checked = 0;
      for (const file of walk(join(ROOT, 'src'))) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^']+)'|import\('([^']+)'\)/gm)) {
          const spec = m[1] ?? m[2]!;
          if (spec.startsWith('.') || spec.startsWith('node:')) continue;
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          assert.ok(name in pkg.dependencies, `${file}: ${spec} is not in dependencies`);
          checked++;
        }
      }
      assert.ok(checked >= 10, `imports found: ${checked}`);
    });

    it('the build context is an allow-list: no .env, key, heap snapshot, .git, test/ or host node_modules reaches a build', () => {
      const tracked = spawnSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const f of dockerfiles) {
        const excluded = dockerignore(readFileSync(join(COMPOSE_DIR, `${f}.dockerignore`), 'utf8'));
        for (const p of ['.env', 'compose/.env', '.git/HEAD', '.ci/run', 'node_modules/koa/package.json', 'dist/src/cli.js',
          'test/compose/static.test.ts', 'test/bench/run.ts', 'test-results/x.png', 'compose/config/keys/client.jwk.json',
          'compose/config/tls/client.key', 'core.heapsnapshot', 'x.cpuprofile', 'README.md', 'src/.env', 'src/.env.local',
          'src/keys/client.jwk.json', 'src/tls/client.key', 'src/x.pem', 'src/dev/node_modules/x/index.js', 'src/y.heapsnapshot']) {
          assert.ok(excluded(p), `${f}.dockerignore lets ${p} into the build`);
        }
        // Every COPY from the context is let in, and nothing tracked beyond what they copy.
        const sources = stages(f).flatMap((st) => st.lines).filter((l) => /^COPY /.test(l) && !/--from=/.test(l))
          .flatMap((l) => l.split(/\s+/).slice(1, -1).filter((a) => !a.startsWith('--')));
        assert.ok(sources.length >= 3);
        for (const src of sources) {
          assert.ok(existsSync(join(ROOT, src)), `${f}: COPY ${src}`);
          assert.ok(!excluded(src), `${f}: COPY ${src} is excluded`);
        }
        assert.ok(!excluded('src/dev/spa/index.html') && !excluded('src/cli.ts'));
        for (const t of tracked) {
          if (!excluded(t)) assert.ok(sources.some((s) => t === s || t.startsWith(s.replace(/\/?$/, '/'))), `${f}: ${t} reaches the build but no COPY takes it`);
        }
      }
    });
  });
});
