// A real golden-path back end for tests: redis-server (test/helpers/redis.ts), one or more dev IdPs
// (oidc-provider) and the BFF, all on port 0. Settings and idps.yaml entries are built directly.
//
//   const env = await startIdpBff();              // one IdP "dev", client_secret_basic
//   const r = await env.login('admin', '/orders');  // browser-like login (test/helpers/login.ts)
//   ... await env.close();
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import { SignJWT, importJWK, type JWK } from 'jose';
import { Registry } from 'prom-client';
import { createBffApp, type BffApp } from '../../src/bff/app.ts';
import { callbackPath } from '../../src/bff/callback-path.ts';
import type { GoldpathConfig, IdpConfig, Settings } from '../../src/config/types.ts';
import { startDevIdp, devIdpClientFor, type DevIdp, type DevIdpOptions } from '../../src/dev/idp.ts';
import { createLogger, silentLogger, type Logger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { Session, SessionStore } from '../../src/session/types.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { RedisServer } from './redis.ts';
import { browserLogin, type LoginOptions, type LoginResult } from './login.ts';
import { closeServer } from './close-server.ts';
import { startShiftedDevIdp, type ShiftedDevIdp } from './shifted-idp.ts';

export const TEST_CLIENT_SECRET = 'goldpath-test-client-secret-0123456789';

export interface TestIdpSpec {
  /** Key under idps: (default 'dev'). */
  name?: string;
  /** Options for this IdP's startDevIdp (port, log and clients are filled in). */
  devIdp?: Partial<DevIdpOptions>;
  /** Overrides of the idps.yaml entry (issuer, client id and secret are filled in). */
  config?: Partial<IdpConfig>;
  /** Extra client metadata at the dev IdP (e.g. jwks for private_key_jwt). */
  client?: Record<string, unknown>;
  /**
   * Redirect URI paths the dev IdP accepts for goldpath. Default: this IdP's own only
   * (src/bff/callback-path.ts), as an operator registers it.
   */
  redirectPaths?: string[];
  /**
   * The IdP's clock off by this many ms from goldpath's (negative: behind): it then runs in a child
   * process (test/helpers/shifted-idp.ts), and its `provider` cannot be reached from the test.
   */
  clockOffsetMs?: number;
}

export interface IdpBffOptions {
  idps?: TestIdpSpec[];
  /** Settings overrides (e.g. secureCookies + cookieName). */
  settings?: Partial<Settings>;
  /** Use this redis-server instead of starting one (it is then not stopped by close()). */
  redis?: RedisServer;
  log?: Logger;
  /** Log for the dev IdPs (default silent). */
  idpLog?: Logger;
  fetch?: FetchLike;
  metricsRegistry?: Registry;
  /** CA the test browser trusts (https dev IdPs with test certificates). */
  browserCa?: string;
}

export interface IdpBff {
  readonly url: string;
  readonly redis: RedisServer;
  readonly store: SessionStore;
  readonly settings: Settings;
  readonly config: GoldpathConfig;
  readonly bff: BffApp;
  /** The dev IdPs by idps.yaml name. */
  readonly idps: Record<string, DevIdp>;
  /** The first (default) dev IdP. */
  readonly idp: DevIdp;
  /** The dev IdPs on a clock of their own (TestIdpSpec.clockOffsetMs), by idps.yaml name. */
  readonly shiftedIdps: Record<string, ShiftedDevIdp>;
  /** Browser-like login through the BFF; `returnTo` goes in the query, `idp` picks the IdP. */
  login(user?: string, opts?: { returnTo?: string; idp?: string } & Partial<LoginOptions>): Promise<LoginResult>;
  close(): Promise<void>;
}

export function testSettings(publicOrigin: string, redisUrl: string, over: Partial<Settings> = {}): Settings {
  return {
    configDir: '/nonexistent',
    redisUrl,
    publicOrigin,
    secureCookies: false,
    cookieName: 'goldpath',
    sessionKeys: [new Uint8Array(randomBytes(32))],
    sessionIdleMs: 30 * 60_000,
    sessionMaxMs: 12 * 3600_000,
    loginsPerMinute: 6000,
    port: undefined,
    host: '127.0.0.1',
    logLevel: 'info',
    ...over,
  };
}

export function testIdpConfig(name: string, issuer: string, over: Partial<IdpConfig> = {}): IdpConfig {
  return {
    name,
    issuer,
    clientId: 'goldpath',
    clientSecret: TEST_CLIENT_SECRET,
    clientAuth: 'client_secret_basic',
    privateKey: undefined,
    mtls: undefined,
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    par: 'auto',
    dpop: false,
    audiences: {},
    claims: { roles: 'roles', groups: 'groups' },
    dangerouslyAllowInsecureHttp: issuer.startsWith('http:'),
    dangerouslyTrustUnverifiedEmail: false,
    ...over,
  };
}

/** A dev IdP on a shifted clock, in its own process: `provider` is not reachable from here. */
async function shiftedAsDevIdp(offsetMs: number, { log: _log, configure, extraClaims, ...opts }: DevIdpOptions, shifted: (idp: ShiftedDevIdp) => void): Promise<DevIdp> {
  if (configure || extraClaims) throw new Error('a dev IdP on a shifted clock runs in another process: configure and extraClaims cannot reach it');
  const idp = await startShiftedDevIdp(offsetMs, opts);
  shifted(idp);
  return {
    issuer: idp.issuer, url: idp.url, close: idp.close,
    get provider(): never { throw new Error('the dev IdP on a shifted clock runs in another process'); },
  };
}

/** Listens on port 0 first, so the origin is known before the app that needs it exists. */
async function lateBoundServer(): Promise<{ server: Server; origin: string; attach(h: (req: IncomingMessage, res: ServerResponse) => void): void }> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}`, attach: (h) => { handler = h; } };
}

export async function startIdpBff(o: IdpBffOptions = {}): Promise<IdpBff> {
  const redis = o.redis ?? await RedisServer.start();
  const log = o.log ?? silentLogger;
  const front = await lateBoundServer();
  const settings = testSettings(front.origin, redis.url, o.settings);
  const specs = o.idps ?? [{}];
  const idps: Record<string, DevIdp> = {};
  const shiftedIdps: Record<string, ShiftedDevIdp> = {};
  const entries: Record<string, IdpConfig> = {};
  try {
    for (const spec of specs) {
      const name = spec.name ?? 'dev';
      const authMethod = spec.config?.clientAuth ?? 'client_secret_basic';
      const audiences = spec.config?.audiences ?? {};
      const devAudiences = Object.fromEntries(Object.values(audiences).map((a) => [a.resource, { scopes: a.scopes }]));
      const devOptions: DevIdpOptions = {
        port: 0, log: o.idpLog ?? silentLogger, dangerouslyAllowInsecureHttp: !spec.devIdp?.tls, audiences: devAudiences,
        ...spec.devIdp,
        clients: [devIdpClientFor({
          clientId: spec.config?.clientId ?? 'goldpath',
          clientSecret: authMethod.startsWith('client_secret') ? (spec.config?.clientSecret ?? TEST_CLIENT_SECRET) : undefined,
          origin: front.origin, redirectPath: callbackPath(name, specs[0]?.name ?? 'dev'), tokenEndpointAuthMethod: authMethod,
          extra: { ...(spec.redirectPaths ? { redirect_uris: spec.redirectPaths.map((p) => `${front.origin}${p}`) } : {}), ...spec.client },
        })],
      };
      idps[name] = spec.clockOffsetMs === undefined ? await startDevIdp(devOptions) : await shiftedAsDevIdp(spec.clockOffsetMs, devOptions, (i) => { shiftedIdps[name] = i; });
      const idp = idps[name]!;
      entries[name] = testIdpConfig(name, idp.issuer, spec.config);
    }
  } catch (err) {
    await Promise.all(Object.values(idps).map((i) => i.close()));
    front.server.close();
    if (!o.redis) await redis.stop();
    throw err;
  }
  const config: GoldpathConfig = {
    routes: { routes: [], cors: { allowedOrigins: [] } },
    pdp: { policies: [], rules: [] },
    idps: { default: specs[0]?.name ?? 'dev', idps: entries },
  };
  const store = createSessionStore({ url: redis.url, settings, log });
  const bff = await createBffApp({ settings, config, store, log, fetch: o.fetch, metricsRegistry: o.metricsRegistry });
  front.attach(bff.app.callback());

  return {
    url: front.origin, redis, store, settings, config, bff, idps, idp: Object.values(idps)[0]!, shiftedIdps,
    login(user = 'alice', lo = {}) {
      const q = new URLSearchParams();
      if (lo.returnTo !== undefined) q.set('return_to', lo.returnTo);
      if (lo.idp !== undefined) q.set('idp', lo.idp);
      const qs = q.toString();
      return browserLogin({ cookieName: settings.cookieName, ca: o.browserCa, ...lo, user, start: `${front.origin}/auth/login${qs ? `?${qs}` : ''}` });
    },
    async close() {
      await closeServer(front.server);
      await bff.close();
      await store.close();
      await Promise.all(Object.values(idps).map((i) => i.close()));
      if (!o.redis) await redis.stop();
    },
  };
}

/**
 * A fetch for the BFF's IdP calls that answers with the real IdP's JSON, edited by `edit`, for the
 * URLs that end with `suffix` (e.g. '/token', '/.well-known/openid-configuration'): an IdP that
 * leaves a member out, as some real ones do.
 */
export function editingIdpJson(suffix: string, edit: (body: Record<string, unknown>) => void): FetchLike {
  return async (url, init) => {
    const res = await globalThis.fetch(url, init as RequestInit);
    if (!String(url).endsWith(suffix)) return res;
    const body = await res.json() as Record<string, unknown>;
    edit(body);
    return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
  };
}

/**
 * An OIDC back-channel logout token from `issuer` for the client `goldpath`, signed with `key`
 * (one of the dev IdP's `keys`): a fresh jti, iat now, the logout event; `claims` add or override
 * (undefined removes). `typ: null` leaves typ out.
 */
export async function logoutToken(issuer: string, key: JWK, claims: Record<string, unknown>, opts: { typ?: string | null; kid?: string } = {}): Promise<string> {
  const header: Record<string, unknown> = { alg: 'RS256', kid: opts.kid ?? key.kid };
  if (opts.typ !== null) header['typ'] = opts.typ ?? 'logout+jwt';
  return new SignJWT({
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    jti: randomBytes(12).toString('base64url'),
    iss: issuer,
    aud: 'goldpath',
    iat: Math.floor(Date.now() / 1000),
    ...claims,
  })
    .setProtectedHeader(header as { alg: string })
    .sign(await importJWK(key, 'RS256'));
}

/** A pino logger whose every line is kept (for "no secret in any log line" assertions). */
export function capturingLogger(level = 'debug'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ level, destination }), lines };
}

/**
 * idps.yaml for the verify fixture config pointed at a dev IdP on plain http (tests only); its
 * `reports` audience at `resource` with `scopes` (YAML flow list items).
 */
export function devIdpsYaml(issuer: string, resource = 'https://api.example.test/reports', scopes = 'reports.read'): string {
  return `default: dev
idps:
  dev:
    issuer: ${issuer}
    client_id: goldpath
    client_secret: \${TEST_CLIENT_SECRET}
    dangerously_allow_insecure_http: true
    audiences:
      reports: { resource: "${resource}", scopes: [${scopes}] }
`;
}

/** A session from a real login whose login token expires at `expiresAt` (refresh tests). */
export async function loginExpiringAt(env: IdpBff, user: string, expiresAt: number): Promise<{ cookie: string; session: Session; token: string }> {
  const r = await env.login(user);
  assert.equal(r.status, 302);
  const s = (await env.store.get(r.sessionCookie!))!;
  const t = s.secrets.tokens['']!;
  assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { ...s.secrets.tokens, '': { ...t, expiresAt } } }));
  return { cookie: `goldpath=${r.sessionCookie}`, session: (await env.store.getById(s.id))!, token: t.value };
}
