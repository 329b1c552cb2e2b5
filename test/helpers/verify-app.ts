// The real /auth/verify chain (real config loader, real Oso PDP, sessions from a real store) on a
// real node:http server on port 0, for fault, scale-out and hostile-input tests. The fixture
// config is test/verify/fixtures/config (routes orders, reports, public, boom).
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadSettings } from '../../src/config/env.ts';
import type { GoldpathConfig } from '../../src/config/types.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Settings } from '../../src/config/types.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import type { TokenProvider } from '../../src/oidc/types.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { createVerifyApp } from '../../src/verify/app.ts';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';
import { buildVerifyPolicy } from '../../src/verify/policy.ts';
import { newSession, TEST_KEYS } from './sessions.ts';
import { StoredTokens } from './stored-tokens.ts';
import { FORWARD_AUTH_MAX_HEADER_BYTES } from '../../src/http/serve.ts';
import { RedisServer } from './redis.ts';
import { closeServer } from './close-server.ts';

export const VERIFY_CONFIG_DIR = fileURLToPath(new URL('../../../test/verify/fixtures/config', import.meta.url));
export const PUBLIC_URL = 'http://localhost:8080';

export function verifyEnv(redisUrl: string): Record<string, string> {
  return {
    GOLDPATH_CONFIG_DIR: VERIFY_CONFIG_DIR, REDIS_URL: redisUrl, GOLDPATH_PUBLIC_URL: PUBLIC_URL,
    GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 'test-secret',
  };
}

export interface VerifyResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Milliseconds from sending to the end of the response. */
  ms: number;
}

export interface RunningVerify {
  readonly url: string;
  readonly port: number;
  readonly settings: Settings;
  readonly cookieName: string;
  readonly tokens: StoredTokens;
  /** Creates a session in the store; returns the Cookie header value that carries it. */
  login(o?: Parameters<typeof newSession>[0]): Promise<{ cookie: string; id: string }>;
  /** A ForwardAuth call as Traefik makes it (GET /auth/verify with X-Forwarded-*). */
  verify(method: string, uri: string, headers?: Record<string, string>): Promise<VerifyResponse>;
  /** A raw GET (health endpoints). */
  get(path: string): Promise<VerifyResponse>;
  close(): Promise<void>;
}

/** Sends one request; `headers` may be an array of raw [name, value] pairs (duplicates, latin1). */
export function send(port: number, path: string, headers: http.OutgoingHttpHeaders | [string, string][], timeoutMs = 5000): Promise<VerifyResponse> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Pairs go out as separate header lines (duplicates kept), in order, as rawHeaders-style array.
    // Node adds Host itself only for object headers, and its server refuses a request without one.
    const flat = Array.isArray(headers)
      ? [...(headers.some(([k]) => k.toLowerCase() === 'host') ? [] : ['Host', `127.0.0.1:${port}`]), ...headers.flat()]
      : headers;
    // The sidecar echoes the upstream Cookie header: allow big responses (Traefik allows far more).
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: flat as http.OutgoingHttpHeaders, agent: false, maxHeaderSize: 1024 * 1024 });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
    });
    req.end();
  });
}

/**
 * The verify app over `store`; tokens come from the store as stored (StoredTokens) unless
 * `opts.tokens` (e.g. the real provider), with `opts.idps` the idps.yaml it was made for: the chain
 * checks that a session's user signed in at the issuer its IdP has there.
 */
export async function startVerifyApp(store: SessionStore, redisUrl: string, opts: { log?: Logger; maxHeaderSize?: number; tokens?: TokenProvider; idps?: GoldpathConfig['idps'] } = {}): Promise<RunningVerify> {
  const env = verifyEnv(redisUrl);
  const settings = loadSettings(env);
  const log = opts.log ?? silentLogger;
  const fixture = await loadConfig(VERIFY_CONFIG_DIR, env);
  const config = opts.idps ? { ...fixture, idps: opts.idps } : fixture;
  const tokens = new StoredTokens(store);
  const policy = await buildVerifyPolicy(config, settings, log, opts.tokens ?? tokens);
  const app = createVerifyApp({ settings, store, log, metrics: createVerifyMetrics(), policy: () => policy });
  // The same server limits as the real process (src/http/serve.ts).
  const server = http.createServer({ maxHeaderSize: opts.maxHeaderSize ?? FORWARD_AUTH_MAX_HEADER_BYTES }, app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  const cookieName = settings.cookieName;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    settings,
    cookieName,
    tokens,
    async login(o = {}) {
      const { cookieValue, session } = await store.create(newSession(o));
      return { cookie: `${cookieName}=${cookieValue}`, id: session.id };
    },
    verify(method, uri, headers = {}) {
      return send(port, '/auth/verify', {
        'X-Forwarded-Method': method, 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'localhost:8080',
        'X-Forwarded-Uri': uri, 'X-Forwarded-For': '127.0.0.1', ...headers,
      });
    },
    get: (path) => send(port, path, {}),
    close: () => {
      const closed = closeServer(server);
      policy.pdp.close();
      return closed;
    },
  };
}

/**
 * A redis-server of its own, a store on it and the verify app over that store. stop() closes what
 * started, app first; a start that fails stops the rest before the error goes on.
 */
export async function startVerifyOnRedis(): Promise<{ redis: RedisServer; store: KvSessionStore; sidecar: RunningVerify; stop(): Promise<void> }> {
  const redis = await RedisServer.start();
  let store: KvSessionStore | undefined;
  let sidecar: RunningVerify | undefined;
  const stop = async () => {
    await sidecar?.close();
    await store?.close();
    await redis.stop();
  };
  try {
    store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
    sidecar = await startVerifyApp(store, redis.url);
  } catch (err) {
    await stop();
    throw err;
  }
  return { redis, store, sidecar, stop };
}
