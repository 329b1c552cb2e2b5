// /auth/verify on a store that is up but SLOW: a real redis-server behind a proxy that holds every
// chunk (test/helpers/tcp-proxy.ts), so each command takes about twice the delay yet stays under
// its own timeout. SPEC 5: an answer (or a 503) within 1 s, never an allow on error. Each Redis call
// is bounded alone; these prove the bounds on the whole: the session load (session-load.ts) and a token
// refresh (oidc/token-provider.ts), with the real sidecar chain, real oidc-provider where a refresh
// is involved, and the request id on the refresh's and the PDP's log lines.
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider } from '../../src/oidc/token-provider.ts';
import { createSessionStore, storeKeys, type KvSessionStore } from '../../src/session/index.ts';
import { capturingLogger, loginExpiringAt, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { startVerifyApp, verifyEnv, type RunningVerify } from '../helpers/verify-app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** SPEC 5. */
const CONTRACT_MS = 1000;
/**
 * For an answer that comes at one of the deadlines (a load's 800 ms, a refresh's 850 ms): room for
 * a loaded machine beyond them, and still below what the code without them took (each test says).
 */
const AT_DEADLINE_MS = 1300;

/** Polls `check` every 50 ms until it holds (or fails after `ms`). */
async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

describe('/auth/verify on a slow store: the session load', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let proxy: TcpProxy;
  let direct: KvSessionStore;
  const settings = () => loadSettings(verifyEnv(redis.url));

  before(async () => {
    redis = await RedisServer.start();
    proxy = await TcpProxy.start(redis.port);
    direct = createSessionStore({ url: redis.url, settings: settings(), log: silentLogger });
  });
  after(async () => {
    await direct?.close();
    await proxy?.close();
    await redis?.stop();
  });
  afterEach(() => {
    proxy.delayMs = 0;
  });

  /** The sidecar over the proxy (no session cache: every request loads), connected before the delay. */
  async function sidecar(opts: { commandTimeoutMs?: number; touchIntervalMs?: number } = {}): Promise<{ verify: RunningVerify; store: KvSessionStore }> {
    const store = createSessionStore({ url: proxy.url, settings: settings(), log: silentLogger, ...opts });
    await store.ping();
    return { store, verify: await startVerifyApp(store, proxy.url) };
  }

  it('a read whose idle touch is due, each command ~600 ms (under its 1 s timeout): 200 from the read within 1 s', async () => {
    // Read then touch, each alone within its bound, were 1.2 s together: the load's deadline ends it.
    const { store, verify } = await sidecar({ commandTimeoutMs: 1000, touchIntervalMs: 1 });
    try {
      const { cookieValue, session } = await direct.create(newSession({ sub: 'touchy' }));
      await sleep(5); // lastSeen older than the touch interval
      proxy.delayMs = 300;
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: `goldpath=${cookieValue}` });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['authorization'], `Bearer ${session.secrets.tokens['']!.value}`);
      // At the 800 ms deadline; read and touch together took 1.2 s and more.
      assert.ok(res.ms < 1100, `answered after ${Math.round(res.ms)} ms`);
      // The touch went on in the background and landed: sliding expiry is kept.
      await eventually('the touch landed', async () => Number((await direct.getById(session.id))?.idleExpiresAt) > session.idleExpiresAt);
    } finally {
      await verify.close();
      await store.close();
    }
  });

  it('a deletion the touch reports within the deadline is honoured: 401, never the session just read', async () => {
    // ~150 ms each way: the read runs at ~150 ms, its answer is back at ~300 ms, the touch runs at
    // ~450 ms and answers at ~600 ms, within the deadline. The session is deleted in between.
    const { store, verify } = await sidecar({ touchIntervalMs: 1 });
    try {
      const { cookieValue, session } = await direct.create(newSession({ sub: 'racer' }));
      await sleep(5);
      proxy.delayMs = 150;
      const answer = verify.verify('GET', '/api/orders/1', { Cookie: `goldpath=${cookieValue}` });
      await sleep(300);
      const raw = redis.client();
      try {
        assert.equal(await raw.del(storeKeys.session(session.id)), 1);
      } finally {
        raw.disconnect();
      }
      const res = await answer;
      assert.equal(res.status, 401, res.body);
      assert.ok(res.ms < CONTRACT_MS, `answered after ${Math.round(res.ms)} ms`);
    } finally {
      await verify.close();
      await store.close();
    }
  });

  it('an idle-expired session, each command ~480 ms (the default 500 ms timeout): 401 within 1 s, its removal not waited for', async () => {
    // The read, then the removal of the expired session (delete and its broadcast) were 1.4 s.
    const { store, verify } = await sidecar();
    try {
      const { cookieValue, session } = await direct.create(newSession({ sub: 'idle' }));
      const raw = redis.client();
      try {
        await raw.hset(storeKeys.session(session.id), 'lastSeen', String(Date.now() - 31 * 60_000)); // past GOLDPATH_SESSION_IDLE (30 min)
      } finally {
        raw.disconnect();
      }
      proxy.delayMs = 240;
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: `goldpath=${cookieValue}` });
      assert.equal(res.status, 401, res.body);
      // ~0.8 s; waiting for the removal too took 1.4–1.9 s.
      assert.ok(res.ms < AT_DEADLINE_MS, `answered after ${Math.round(res.ms)} ms`);
      proxy.delayMs = 0;
      const check = redis.client();
      try {
        await eventually('the expired session removed', async () => (await check.exists(storeKeys.session(session.id))) === 0);
      } finally {
        check.disconnect();
      }
    } finally {
      await verify.close();
      await store.close();
    }
  });
});

describe('/auth/verify on a slow store: token refresh (real IdP)', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let proxy: TcpProxy;
  let refreshGrants = 0;
  let refreshErrors = 0;

  before(async () => {
    env = await startIdpBff({ idps: [{ devIdp: { accessTokenTtl: 120 } }] });
    proxy = await TcpProxy.start(env.redis.port);
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') refreshGrants++;
    });
    env.idp.provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshErrors++;
    });
  });
  after(async () => {
    await proxy?.close();
    await env?.close();
  });
  beforeEach(() => {
    refreshGrants = 0;
    refreshErrors = 0;
  });
  afterEach(() => {
    proxy.delayMs = 0;
  });

  const sessionExpiringAt = (user: string, expiresAt: number) => loginExpiringAt(env, user, expiresAt);

  /** The sidecar over the proxy with the real TokenProvider, its IdP metadata loaded, connected before the delay. */
  async function sidecar(log = silentLogger): Promise<{ verify: RunningVerify; close(): Promise<void> }> {
    const store = createSessionStore({ url: proxy.url, settings: env.settings, log });
    await store.ping();
    const idps = new IdpRegistry(env.config.idps, { log });
    await idps.get('dev')!.configuration();
    const tokens = createTokenProvider({ idps, store, log });
    const verify = await startVerifyApp(store, proxy.url, { tokens, log, idps: env.config.idps });
    return { verify, close: async () => { await verify.close(); await store.close(); } };
  }

  /** The login token the store holds for a session now. */
  async function storedToken(id: string): Promise<string | undefined> {
    return (await env.store.getById(id))?.secrets.tokens['']?.value;
  }

  it('ahead of time (token valid, within 30 s): 200 with the valid token within 1 s; the refresh lands in the background, once', async () => {
    const { cookie, session, token } = await sessionExpiringAt('ahead', Date.now() + 20_000);
    const { verify, close } = await sidecar();
    try {
      // Each command ~400 ms: the refresh alone is 4 of them. (Not slower: on a loaded machine a
      // command of ~480 ms went past its 1 s bound now and then, and the refresh that lands in the
      // background below never did.)
      proxy.delayMs = 200;
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      // ~0.55 s; waiting for the whole refresh (read, lock, read under it, grant, save) took ≥ 1.6 s here.
      assert.ok(res.ms < AT_DEADLINE_MS, `${res.status} after ${Math.round(res.ms)} ms`);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['authorization'], `Bearer ${token}`, 'the still-valid token');
      await eventually('the refresh saved', async () => (await storedToken(session.id)) !== token);
      assert.equal(refreshGrants, 1);
      assert.equal(refreshErrors, 0, 'no refresh token sent twice');
      const next = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(next.status, 200, next.body);
      assert.equal(next.headers['authorization'], `Bearer ${await storedToken(session.id)}`, 'the next request has the new token');
    } finally {
      await close();
    }
  });

  it('expired: 503 within 1 s rather than waiting on the store; the refresh completes under its lock, the next request has its token', async () => {
    const { cookie, session, token } = await sessionExpiringAt('expired', Date.now() - 1000);
    const { verify, close } = await sidecar();
    try {
      proxy.delayMs = 200; // as above
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      // At the 850 ms store budget; waiting for the refresh took ≥ 1.6 s.
      assert.ok(res.ms < AT_DEADLINE_MS, `${res.status} after ${Math.round(res.ms)} ms`);
      assert.equal(res.status, 503, res.body);
      assert.equal(JSON.parse(res.body).error, 'unavailable');
      assert.equal(res.headers['authorization'], undefined, 'never allowed on error');
      await eventually('the refresh saved', async () => (await storedToken(session.id)) !== token);
      assert.equal(refreshGrants, 1);
      assert.equal(refreshErrors, 0, 'no refresh token sent twice');
      const next = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(next.status, 200, next.body);
      assert.equal(next.headers['authorization'], `Bearer ${await storedToken(session.id)}`);
      assert.ok(next.ms < CONTRACT_MS, `answered after ${Math.round(next.ms)} ms`);
    } finally {
      await close();
    }
  });

  it('log lines of a refresh carry the request\'s id (reqId): "token refreshed", and a refresh the IdP rejects', async () => {
    const { log, lines } = capturingLogger('debug');
    const { verify, close } = await sidecar(log);
    try {
      const a = await sessionExpiringAt('logged', Date.now() - 1000);
      const ok = await verify.verify('GET', '/api/orders/1', { Cookie: a.cookie, 'X-Request-Id': 'req-refresh-ok' });
      assert.equal(ok.status, 200, ok.body);
      const lineWith = (msg: string) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === msg);
      const refreshed = lineWith('token refreshed');
      assert.ok(refreshed, `a "token refreshed" line among:\n${lines.join('\n')}`);
      assert.equal(refreshed.reqId, 'req-refresh-ok');

      // The IdP no longer honours the refresh token (revoked by an admin): rejected, session deleted.
      const b = await sessionExpiringAt('revoked', Date.now() - 1000);
      const config = await oidc.discovery(new URL(env.idp.issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
      await oidc.tokenRevocation(config, b.session.secrets.refreshToken!);
      const gone = await verify.verify('GET', '/api/orders/1', { Cookie: b.cookie, 'X-Request-Id': 'req-refresh-rejected' });
      assert.equal(gone.status, 401, gone.body);
      const rejected = lineWith('refresh rejected by the IdP: session deleted');
      assert.ok(rejected, `a rejection line among:\n${lines.join('\n')}`);
      assert.equal(rejected.reqId, 'req-refresh-rejected');
    } finally {
      await close();
    }
  });

  it('the PDP\'s policy-error line carries the request\'s id (reqId)', async () => {
    const { log, lines } = capturingLogger('info');
    const { verify, close } = await sidecar(log);
    try {
      const { cookie } = await sessionExpiringAt('boom', Date.now() + 3600_000);
      const res = await verify.verify('GET', '/api/boom', { Cookie: cookie, 'X-Request-Id': 'req-policy-error' });
      assert.equal(res.status, 403, res.body);
      const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => typeof l.msg === 'string' && l.msg.startsWith('pdp: policy error, request denied'));
      assert.ok(line, `a policy-error line among:\n${lines.join('\n')}`);
      assert.equal(line.reqId, 'req-policy-error');
    } finally {
      await close();
    }
  });
});
