// TokenProvider against a real oidc-provider and a real redis-server: single-flight refresh across
// "processes" (separate store connections and providers), rotation, rejection, audience tokens.
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { adminClient } from '../helpers/redis.ts';
import { Unavailable } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider, type OidcTokenProvider, type RefreshOutcome } from '../../src/oidc/token-provider.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { Session, SessionStore } from '../../src/session/types.ts';
import { editingIdpJson, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { startVerifyApp } from '../helpers/verify-app.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { refreshAnswers } from '../helpers/refresh-race.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const ORDERS = 'https://api.example.test/orders';
/** An audience the IdP stops knowing (as when an admin removes it): its grants are refused (invalid_target). */
const UNKNOWN = 'https://api.example.test/unknown';
/** The dev IdP's resource servers: the very object it looks resources up in. */
const IDP_AUDIENCES: Record<string, { scopes: string[] }> = { [ORDERS]: { scopes: ['orders.read'] }, [UNKNOWN]: { scopes: [] } };

describe('TokenProvider (refresh, single-flight, audiences)', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let refreshGrants = 0;
  let refreshErrors = 0;
  /** Extra "processes": each with its own store connection and provider. */
  const processes: Array<{ store: SessionStore; tokens: OidcTokenProvider; outcomes: RefreshOutcome[] }> = [];

  before(async () => {
    env = await startIdpBff({
      idps: [{
        config: { audiences: { orders: { resource: ORDERS, scopes: ['orders.read'] }, unknown: { resource: UNKNOWN, scopes: [] } } },
        devIdp: { accessTokenTtl: 120, audiences: IDP_AUDIENCES },
      }],
    });
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') refreshGrants++;
    });
    env.idp.provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') refreshErrors++;
    });
    for (let i = 0; i < 3; i++) {
      const store = createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger });
      const outcomes: RefreshOutcome[] = [];
      const idps = new IdpRegistry(env.config.idps, { log: silentLogger });
      processes.push({ store, outcomes, tokens: createTokenProvider({ idps, store, log: silentLogger, onRefresh: (o) => outcomes.push(o) }) });
    }
  });
  after(async () => {
    for (const p of processes) await p.store.close();
    await env?.close();
  });
  beforeEach(() => {
    refreshGrants = 0;
    refreshErrors = 0;
    for (const p of processes) p.outcomes.length = 0;
  });

  async function loginSession(user: string): Promise<Session> {
    const r = await env.login(user);
    assert.equal(r.status, 302);
    return (await env.store.get(r.sessionCookie!))!;
  }

  /** Marks the session's token for `audience` as expired (as if time had passed). */
  async function expire(s: Session, audience = ''): Promise<Session> {
    const t = s.secrets.tokens[audience]!;
    assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { ...s.secrets.tokens, [audience]: { ...t, expiresAt: Date.now() - 1000 } } }));
    return (await env.store.getById(s.id))!;
  }

  /** Revokes a refresh token at the IdP, as an admin would. */
  async function revoke(refreshToken: string): Promise<void> {
    const config = await oidc.discovery(new URL(env.idp.issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
    await oidc.tokenRevocation(config, refreshToken);
  }

  it('10 concurrent calls on an expired token in 3 processes: exactly one refresh grant, all get the new token', async () => {
    const s = await expire(await loginSession('alice'));
    const old = s.secrets.tokens['']!.value;
    const oldRt = s.secrets.refreshToken;
    // Each "process" loads the session itself, as the sidecars do per request.
    const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const p = processes[i % processes.length]!;
      const mine = (await p.store.getById(s.id))!;
      return p.tokens.credentials(mine, '', 'GET', 'https://api.example.test/orders/1');
    }));
    assert.equal(refreshGrants, 1, 'one refresh_token grant at the IdP');
    assert.equal(refreshErrors, 0);
    const auths = new Set(results.map((r) => r?.authorization));
    assert.equal(auths.size, 1, 'everyone got the same token');
    const [auth] = [...auths];
    assert.match(auth!, /^Bearer /);
    assert.notEqual(auth, `Bearer ${old}`);
    const stored = (await env.store.getById(s.id))!;
    assert.equal(`Bearer ${stored.secrets.tokens['']!.value}`, auth);
    assert.notEqual(stored.secrets.refreshToken, oldRt, 'the rotated refresh token was stored');
    assert.ok(stored.secrets.tokens['']!.expiresAt! > Date.now() + 60_000);
    const all = processes.flatMap((p) => p.outcomes);
    assert.equal(all.filter((o) => o === 'success').length, 1);

    // Rotation is safe: the next refresh, from another process, uses the rotated refresh token.
    const again = await expire(stored);
    const r2 = await processes[2]!.tokens.credentials(again, '', 'GET', 'https://api.example.test/x');
    assert.ok(r2 && r2.authorization !== auth);
    assert.equal(refreshGrants, 2);
    assert.equal(refreshErrors, 0, 'no refresh token was ever reused');
  });

  it('a fresh token is returned without any refresh', async () => {
    const s = await loginSession('bob');
    const r = await processes[0]!.tokens.credentials(s, '', 'GET', 'https://api.example.test/');
    assert.equal(r?.authorization, `Bearer ${s.secrets.tokens['']!.value}`);
    assert.equal(r?.dpop, undefined);
    assert.equal(refreshGrants, 0);
  });

  it('a token within 30 s of expiry is refreshed ahead of time', async () => {
    const s = await loginSession('bob');
    const t = s.secrets.tokens['']!;
    await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() + 20_000 } } });
    // A wait long enough for any machine: the point is the refresh, not how long a request waits
    // for it (150 ms by default, then the valid token: test/verify/slow-store.test.ts).
    const patient = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger }), store: env.store, log: silentLogger, aheadWaitMs: 5_000 });
    const r = await patient.credentials((await env.store.getById(s.id))!, '', 'GET', 'https://api.example.test/');
    assert.notEqual(r?.authorization, `Bearer ${t.value}`);
    assert.equal(refreshGrants, 1);
  });

  it('a refresh the IdP rejects resolves null for every caller and deletes the session', async () => {
    const s = await expire(await loginSession('carol'));
    // The IdP no longer knows the refresh token (revoked by an admin, expired, ...).
    await revoke(s.secrets.refreshToken!);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) =>
      processes[i % 3]!.tokens.credentials(s, '', 'GET', 'https://api.example.test/')));
    assert.deepEqual(results, [null, null, null, null, null]);
    assert.equal(refreshErrors, 1, 'one rejected grant, not five');
    assert.equal(await env.store.getById(s.id), null, 'session deleted');
    assert.ok(processes.flatMap((p) => p.outcomes).includes('rejected'));
  });

  it('through /auth/verify: a rejected refresh goes on anonymously on a public route, 401 on a session route', async () => {
    const verify = await startVerifyApp(env.store, env.redis.url, { tokens: processes[0]!.tokens, idps: env.config.idps });
    try {
      for (const [uri, status] of [['/api/public/x', 200], ['/api/orders/1', 401]] as const) {
        const r = await env.login(`gone-${status}`);
        const s = await expire((await env.store.get(r.sessionCookie!))!);
        await revoke(s.secrets.refreshToken!);
        const res = await verify.verify('GET', uri, { Cookie: `goldpath=${r.sessionCookie}` });
        assert.equal(res.status, status, res.body);
        assert.equal(res.headers['authorization'], undefined);
        assert.equal(res.headers['x-auth-user'], undefined);
        assert.equal(await env.store.getById(s.id), null, 'session deleted');
      }
      assert.equal(refreshErrors, 2);
    } finally {
      await verify.close();
    }
  });

  it('waits at most waitMs for a refresh held by another (stuck) process, then 503', async () => {
    const s = await expire(await loginSession('dave'));
    const lock = await env.store.tryLock(`refresh:${s.id}`, 10_000);
    assert.ok(lock);
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger });
    const impatient = createTokenProvider({ idps, store: env.store, log: silentLogger, waitMs: 300 });
    const t0 = Date.now();
    await assert.rejects(impatient.credentials(s, '', 'GET', 'https://api.example.test/'), Unavailable);
    assert.ok(Date.now() - t0 < 1500);
    await env.store.unlock(`refresh:${s.id}`, lock);
    assert.equal(refreshGrants, 0);
  });

  it('obtains an audience token with a refresh grant carrying resource + scopes (RFC 8707), then reuses it', async () => {
    const s = await loginSession('erin');
    assert.equal(s.secrets.tokens['orders'], undefined, 'audience tokens are fetched on demand');
    const r = await processes[0]!.tokens.credentials(s, 'orders', 'GET', `${ORDERS}/1`);
    assert.ok(r);
    const claims = decodeJwt(r.authorization.replace(/^Bearer /, ''));
    assert.equal(claims.aud, ORDERS);
    assert.equal(claims['scope'], 'orders.read');
    assert.equal(claims.sub, 'erin');
    assert.equal(refreshGrants, 1);
    const stored = (await env.store.getById(s.id))!;
    assert.ok(stored.secrets.tokens['orders']);
    assert.equal(stored.secrets.tokens['']!.value, s.secrets.tokens['']!.value, 'the login token is untouched');
    const again = await processes[1]!.tokens.credentials(stored, 'orders', 'GET', `${ORDERS}/2`);
    assert.equal(again?.authorization, r.authorization);
    assert.equal(refreshGrants, 1, 'cached');
  });

  it('without a refresh token, an audience token cannot be had: 503, and the session stays (a new login would not help)', async () => {
    const s = await loginSession('noel');
    const { refreshToken: _, ...rest } = s.secrets;
    assert.ok(await env.store.updateSecrets(s.id, rest as typeof s.secrets), 'as if the IdP had issued none');
    const without = (await env.store.getById(s.id))!;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(processes[0]!.tokens.credentials(without, 'orders', 'GET', `${ORDERS}/1`), (err: Error) => err instanceof Unavailable);
    }
    assert.ok(await env.store.getById(s.id), 'the session is kept');
    assert.ok(await processes[0]!.tokens.credentials(without, '', 'GET', `${ORDERS}/1`), 'and its login token still serves');
    assert.equal(refreshGrants, 0);
  });

  /** A process whose IdP client times out after 1 s and whose refresh answers arrive `lateMs` late. */
  function processWith(store: SessionStore, lockTtlMs: number, lateMs: number, onAnswered?: () => void) {
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init as RequestInit);
      if (String(init.body ?? '').includes('grant_type=refresh_token')) {
        onAnswered?.();
        await sleep(lateMs);
      }
      return res;
    };
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch, timeoutSeconds: 1 });
    return createTokenProvider({ idps, store, log: silentLogger, lockTtlMs });
  }

  it('a holder whose lock would expire before the IdP must answer sends nothing: no refresh token is spent twice', async () => {
    const s = await expire(await loginSession('heidi'));
    // Process A reads slowly under its lock (3 s of its 3.5 s), and its IdP answers arrive 0.9 s
    // late. Were it to send the grant, its lock would expire while the answer is on its way, and
    // B would send the same refresh token: the dev IdP rotates them, so one grant would fail and
    // the session would end.
    let lockedAt = 0;
    const slow = new Proxy(env.store, {
      get(target, p) {
        if (p === 'getById') {
          return async (id: string) => {
            lockedAt ||= Date.now();
            await sleep(3000);
            return target.getById(id);
          };
        }
        const v = Reflect.get(target, p, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const a = processWith(slow, 3500, 900).credentials(s, '', 'GET', 'https://api.example.test/');
    const aFailed = assert.rejects(a, Unavailable);
    while (lockedAt === 0) await sleep(10);
    await sleep(lockedAt + 3600 - Date.now());
    const b = await processes[1]!.tokens.credentials((await env.store.getById(s.id))!, '', 'GET', 'https://api.example.test/');
    await aFailed;
    assert.ok(b, 'B refreshed');
    assert.equal(refreshErrors, 0, 'no refresh token was sent twice');
    assert.equal(refreshGrants, 1);
    assert.ok(await env.store.getById(s.id), 'the session lives on');
  });

  it('the key set of a refreshed ID token slow to come: 503 while the refresh lock holds, and nothing is saved after it expired', async () => {
    const s = await expire(await loginSession('kim'));
    // The key set fetched before the lock lacks the key the ID token names (as when the IdP has
    // just rotated its keys); the grant is answered at once, and the key set fetched again to
    // find that key takes 4 s.
    let jwksFetches = 0;
    const fetch: FetchLike = async (url, init) => {
      if (new URL(url).pathname === '/jwks' && jwksFetches++ === 0) {
        const set = await (await globalThis.fetch(url, init as RequestInit)).json() as { keys: Array<{ kid?: string }> };
        for (const k of set.keys) k.kid = `retired-${k.kid}`;
        return Response.json(set);
      }
      if (new URL(url).pathname === '/jwks') await sleep(4_000);
      return globalThis.fetch(url, init as RequestInit);
    };
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch, timeoutSeconds: 10, refreshTimeoutSeconds: 1 });
    // A 3 s lock: the 1 s grant and the 1 s write fit, the key set does not.
    const tokens = createTokenProvider({ idps, store: env.store, log: silentLogger, lockTtlMs: 3_000, waitMs: 10_000 });
    const t0 = Date.now();
    await assert.rejects(tokens.credentials(s, '', 'GET', 'https://api.example.test/'), Unavailable);
    assert.ok(Date.now() - t0 < 3_000, `answered after ${Date.now() - t0} ms: past the refresh lock`);
    await sleep(3_000 - (Date.now() - t0) + 1_500);
    const stored = (await env.store.getById(s.id))!;
    assert.equal(stored.secrets.tokens['']!.value, s.secrets.tokens['']!.value, 'nothing was written once the lock had expired');
    assert.equal(stored.secrets.refreshToken, s.secrets.refreshToken);
  });

  it('a key set that cannot be fetched: 503 before the refresh token is spent, and the session refreshes once the keys are back', async () => {
    const s = await expire(await loginSession('kira'));
    // The IdP's JWKS endpoint fails for a while; its token endpoint (which rotates refresh tokens) works.
    let keysDown = true;
    const fetch: FetchLike = async (url, init) => {
      if (keysDown && new URL(url).pathname === '/jwks') return new Response('busy', { status: 503 });
      return globalThis.fetch(url, init as RequestInit);
    };
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch });
    const tokens = createTokenProvider({ idps, store: env.store, log: silentLogger });
    await assert.rejects(tokens.credentials(s, '', 'GET', 'https://api.example.test/'), Unavailable);
    assert.equal(refreshGrants, 0, 'no refresh grant sent while its ID token could not be checked (the IdP would rotate the refresh token away)');
    keysDown = false;
    const creds = await tokens.credentials(s, '', 'GET', 'https://api.example.test/');
    assert.ok(creds, 'the session refreshes once the keys are back: its refresh token was not spent');
    assert.equal(refreshErrors, 0);
  });

  it('an IdP that sends no ID token on refresh: once it has answered one so, a key set that cannot be fetched does not stop its refreshes (and an answer with one makes it needed again)', async () => {
    const s = await loginSession('kurt');
    let keysDown = false;
    let withIdToken = false;
    // The IdP's refresh answers carry no ID token (as many IdPs' do), until withIdToken.
    const answers = refreshAnswers((body) => { if (!withIdToken) delete body['id_token']; });
    const fetch: FetchLike = async (url, init) => {
      if (keysDown && new URL(url).pathname === '/jwks') return new Response('busy', { status: 503 });
      return answers(url, init);
    };
    // A key set is fresh for 1 s: the outage below finds it stale, as one past 10 minutes would.
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch, jwksMaxAgeSeconds: 1 });
    const tokens = createTokenProvider({ idps, store: env.store, log: silentLogger });
    const refreshed = async () => {
      const before = (await env.store.getById(s.id))!;
      const creds = await tokens.credentials(await expire(before), '', 'GET', 'https://api.example.test/');
      assert.ok(creds);
      assert.notEqual(creds.authorization, `Bearer ${before.secrets.tokens['']!.value}`, 'a new token');
    };
    await refreshed(); // the key set is fetched first: nothing is known of the IdP's answers yet
    assert.equal(refreshGrants, 1);
    await sleep(1_100);
    keysDown = true;
    await refreshed();
    assert.equal(refreshGrants, 2, 'refreshed while the key set is away');
    // The IdP sends an ID token again (the keys are back for it): the next grant needs the key set first.
    keysDown = false;
    withIdToken = true;
    await refreshed();
    assert.equal(refreshGrants, 3);
    await sleep(1_100);
    keysDown = true;
    await assert.rejects(tokens.credentials(await expire((await env.store.getById(s.id))!), '', 'GET', 'https://api.example.test/'), Unavailable);
    assert.equal(refreshGrants, 3, 'no grant sent while its ID token could not be checked');
    assert.equal(refreshErrors, 0);
  });

  it('a store that stalls after the IdP answered: 503 within 1 s (the lock is released in the background)', async () => {
    const s = await expire(await loginSession('ivan'));
    const store = createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger });
    try {
      const tokens = processWith(store, 15_000, 0, () => env.redis.pause());
      const t0 = Date.now();
      await assert.rejects(tokens.credentials(s, '', 'GET', 'https://api.example.test/'), Unavailable);
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `503 after ${ms} ms`);
    } finally {
      env.redis.resume();
      await store.close();
    }
  });

  it('a grant the IdP refuses (invalid_target) is not sent again at every request: 503 from the second without asking', async () => {
    const s = await loginSession('olga');
    const known = IDP_AUDIENCES[UNKNOWN]!;
    delete IDP_AUDIENCES[UNKNOWN];
    try {
      for (let i = 0; i < 3; i++) {
        await assert.rejects(processes[0]!.tokens.credentials(s, 'unknown', 'GET', `${UNKNOWN}/1`), Unavailable);
      }
    } finally {
      IDP_AUDIENCES[UNKNOWN] = known;
    }
    assert.equal(refreshErrors, 1, 'one refused grant, not three');
    assert.ok(await env.store.getById(s.id), 'the session stays (a configuration problem, not the user\'s)');
    assert.ok(await processes[0]!.tokens.credentials(s, '', 'GET', 'https://api.example.test/'), 'and its login token still serves');
  });

  it('a refresh ahead of time that fails serves the token it would have replaced while that one is unexpired', async () => {
    const s = await loginSession('paula');
    const t = s.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() + 10_000 } } }));
    const soon = (await env.store.getById(s.id))!;
    const down: FetchLike = async (url, init) => {
      if (String(init.body ?? '').includes('grant_type=refresh_token')) throw new TypeError('fetch failed');
      return globalThis.fetch(url, init as RequestInit);
    };
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch: down });
    const tokens = createTokenProvider({ idps, store: env.store, log: silentLogger });
    const r = await tokens.credentials(soon, '', 'GET', 'https://api.example.test/');
    assert.equal(r?.authorization, `Bearer ${t.value}`, 'the unexpired token, not a 503');
    // Expired, it is a 503: an expired token is never sent upstream.
    await assert.rejects(tokens.credentials(await expire(soon), '', 'GET', 'https://api.example.test/'), Unavailable);
    assert.equal(refreshGrants, 0);
  });

  it('a refresh the IdP rejects never serves the unexpired token, even when the session cannot be deleted', async () => {
    const s = await loginSession('sven');
    const t = s.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() + 10_000 } } }));
    const soon = (await env.store.getById(s.id))!;
    await revoke(soon.secrets.refreshToken!);
    // The store stalls once the IdP has rejected the refresh: the session cannot be deleted.
    const store = createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger });
    try {
      const tokens = processWith(store, 15_000, 0, () => env.redis.pause());
      const r = await tokens.credentials(soon, '', 'GET', 'https://api.example.test/').then((c) => c, (err: unknown) => err);
      assert.notEqual((r as { authorization?: string } | null)?.authorization, `Bearer ${t.value}`, 'the token of a session the IdP ended is never sent upstream');
      assert.equal(r, null, 'the session is over: 401 (login again), as for any rejected refresh');
    } finally {
      env.redis.resume();
      await store.close();
    }
    assert.equal(refreshErrors, 1);
  });

  it('an IdP that leaves expires_in out: a JWT access token\'s exp says when it is refreshed', async () => {
    const s = await loginSession('quinn');
    const fetch = editingIdpJson('/token', (body) => { delete body['expires_in']; });
    const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger, fetch }), store: env.store, log: silentLogger });
    const r = await tokens.credentials(s, 'orders', 'GET', `${ORDERS}/1`);
    const exp = decodeJwt(r!.authorization.replace(/^Bearer /, '')).exp!;
    const stored = (await env.store.getById(s.id))!.secrets.tokens['orders']!;
    assert.equal(stored.expiresAt, exp * 1000);
  });

  it('an IdP that answers expires_in 0: not a refresh at every request, the JWT\'s exp decides', async () => {
    for (const expiresIn of [0]) {
      const s = await loginSession(`zero-${-expiresIn}`);
      let grants = 0;
      const edit = editingIdpJson('/token', (body) => { body['expires_in'] = expiresIn; });
      const fetch: FetchLike = async (url, init) => {
        if (String(init.body ?? '').includes('grant_type=refresh_token')) grants++;
        return edit(url, init);
      };
      const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger, fetch }), store: env.store, log: silentLogger });
      for (let i = 0; i < 4; i++) {
        const current = (await env.store.getById(s.id))!;
        assert.ok(await tokens.credentials(current, 'orders', 'GET', `${ORDERS}/1`));
      }
      assert.equal(grants, 1, `expires_in ${expiresIn}: ${grants} refresh grants for 4 requests`);
      const stored = (await env.store.getById(s.id))!.secrets.tokens['orders']!;
      assert.ok(stored.expiresAt! > Date.now() + 60_000, `expires_in ${expiresIn}: kept until ${stored.expiresAt}`);
    }
  });

  it('refreshed tokens the store could not take are saved once it is back (the rotated refresh token is not lost)', async () => {
    const s = await expire(await loginSession('rosa'));
    const oldRt = s.secrets.refreshToken;
    // The store refuses writes (out of memory, as a failing-over primary refuses them) from the
    // moment the IdP has answered: a paused redis-server would not do, as the write it had been
    // sent would land when it resumes.
    const admin = adminClient(env.redis.url);
    const fetch: FetchLike = async (url, init) => {
      const res = await globalThis.fetch(url, init as RequestInit);
      if (String(init.body ?? '').includes('grant_type=refresh_token')) await admin.config('SET', 'maxmemory', '1');
      return res;
    };
    try {
      const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger, fetch }), store: env.store, log: silentLogger });
      await assert.rejects(tokens.credentials(s, '', 'GET', 'https://api.example.test/'), Unavailable);
      await sleep(1500); // a failover's worth of store outage
      await admin.config('SET', 'maxmemory', '0');
      let saved: Session | null = null;
      for (let i = 0; i < 100 && !(saved && saved.secrets.refreshToken !== oldRt); i++) {
        await sleep(100);
        saved = await env.store.getById(s.id);
      }
      assert.ok(saved, 'the session lives on');
      assert.notEqual(saved.secrets.refreshToken, oldRt, 'the refresh token the IdP rotated to is in the store');
      assert.notEqual(saved.secrets.tokens['']!.value, s.secrets.tokens['']!.value);
      // And it works: the next refresh is granted, not refused as a reuse.
      const r = await processes[0]!.tokens.credentials(await expire(saved), '', 'GET', 'https://api.example.test/');
      assert.ok(r);
      assert.equal(refreshErrors, 0);
      assert.equal(refreshGrants, 2);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
    }
  });

  it('an audience idps.yaml does not define is a programming error, not a 401', async () => {
    const s = await loginSession('frank');
    await assert.rejects(processes[0]!.tokens.credentials(s, 'nope', 'GET', 'https://x.test/'), /not configured/);
  });

  it('a session deleted meanwhile resolves null and is not resurrected', async () => {
    const s = await expire(await loginSession('grace'));
    await env.store.delete(s.id);
    assert.equal(await processes[0]!.tokens.credentials(s, '', 'GET', 'https://api.example.test/'), null);
    assert.equal(await env.store.getById(s.id), null);
  });
});

describe('TokenProvider with real access-token expiry', function () {
  this.timeout(30_000);
  let env: IdpBff;
  before(async () => {
    // 2 s, not 1: exp has whole seconds, so a token lives TTL − 1 to TTL seconds; with 1 s the
    // refreshed token could already be expired when the test asks about it.
    env = await startIdpBff({ idps: [{ devIdp: { accessTokenTtl: 2 } }] });
  });
  after(() => env?.close());

  it('an access token the IdP considers expired is replaced by one it accepts', async () => {
    const r = await env.login('heidi');
    const s = (await env.store.get(r.sessionCookie!))!;
    const config = await oidc.discovery(new URL(env.idp.issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
    await new Promise((res) => setTimeout(res, 2100));
    assert.equal((await oidc.tokenIntrospection(config, s.secrets.tokens['']!.value)).active, false, 'really expired at the IdP');
    const creds = await env.bff.tokens.credentials(s, '', 'GET', 'https://api.example.test/');
    const fresh = creds!.authorization.replace(/^Bearer /, '');
    assert.equal((await oidc.tokenIntrospection(config, fresh)).active, true);
  });
});
