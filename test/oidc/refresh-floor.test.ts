// The refresh floor (refresh-floor.ts REFRESH_FLOOR_MS): an IdP whose tokens arrive already due
// by our clock (expires_in 1, a JWT whose exp has passed) is asked at most once per floor per
// session and audience in a process, not once per request. Real redis-server, real dev IdP, its
// token answers edited as such IdPs answer; the sidecar over real HTTP.
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { capturingLogger, editingIdpJson, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider, type OidcTokenProvider } from '../../src/oidc/token-provider.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { Session } from '../../src/session/types.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { startVerifyApp } from '../helpers/verify-app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const ORDERS = 'https://api.example.test/orders';
/** Short enough for a test to outlast it (the default is 10 s). */
const FLOOR_MS = 1_500;

/** The IdP's JWT access token as an IdP whose clock is `behindS` seconds behind ours issues it, without expires_in. */
function behind(behindS: number): (body: Record<string, unknown>) => void {
  return (body) => {
    if (typeof body['access_token'] !== 'string') return;
    const [h, p, sig] = body['access_token'].split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, number>;
    claims['iat']! -= behindS;
    claims['exp']! -= behindS;
    if (claims['nbf'] !== undefined) claims['nbf'] -= behindS;
    body['access_token'] = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    delete body['expires_in'];
  };
}

describe('TokenProvider refresh floor (tokens that arrive already due)', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let grants = 0;
  let rejections = 0;

  before(async () => {
    env = await startIdpBff({
      idps: [{ config: { audiences: { orders: { resource: ORDERS, scopes: ['orders.read'] } } }, devIdp: { accessTokenTtl: 120 } }],
    });
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') grants++;
    });
    env.idp.provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') rejections++;
    });
  });
  after(async () => { await env?.close(); });
  beforeEach(() => { grants = 0; rejections = 0; });

  async function loginSession(user: string): Promise<Session> {
    const r = await env.login(user);
    assert.equal(r.status, 302);
    return (await env.store.get(r.sessionCookie!))!;
  }

  function provider(edit: (body: Record<string, unknown>) => void, log: Logger = silentLogger, store = env.store): OidcTokenProvider {
    const fetch: FetchLike = editingIdpJson('/token', edit);
    return createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger, fetch }), store, log, refreshFloorMs: FLOOR_MS });
  }

  /** `n` sequential requests, each loading the session as the sidecar does; the authorizations served. */
  async function requests(tokens: OidcTokenProvider, id: string, audience: string, n: number): Promise<Array<string | undefined>> {
    const out: Array<string | undefined> = [];
    for (let i = 0; i < n; i++) {
      const s = await env.store.getById(id);
      out.push(s ? (await tokens.credentials(s, audience, 'GET', `${ORDERS}/1`))?.authorization : undefined);
    }
    return out;
  }

  it('expires_in 1: 20 requests make one refresh grant, not 20; after the floor one more; a rejected one still ends the session', async () => {
    const s = await loginSession('tiny');
    const tokens = provider((b) => { b['expires_in'] = 1; });
    const served = await requests(tokens, s.id, 'orders', 20);
    assert.ok(grants <= 2, `${grants} refresh grants for 20 requests`);
    assert.equal(new Set(served).size, 1, 'the token the refresh returned is served as it is');
    assert.ok(served[0]?.startsWith('Bearer '));

    await sleep(FLOOR_MS + 100);
    const before = grants;
    const [next] = await requests(tokens, s.id, 'orders', 1);
    assert.equal(grants, before + 1, 'once the floor has passed, the due token is refreshed');
    assert.notEqual(next, served[0]);

    await sleep(FLOOR_MS + 100);
    const config = await oidc.discovery(new URL(env.idp.issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
    await oidc.tokenRevocation(config, (await env.store.getById(s.id))!.secrets.refreshToken!);
    assert.deepEqual(await requests(tokens, s.id, 'orders', 1), [undefined], 'a rejected refresh ends the session');
    assert.equal(await env.store.getById(s.id), null);
    assert.equal(rejections, 1);
  });

  it('a JWT whose exp has passed by our clock (the IdP\'s clock 300 s behind): one grant for 20 requests, logged once without the token', async () => {
    const s = await loginSession('skewed');
    const { log, lines } = capturingLogger('info');
    const tokens = provider(behind(300), log);
    const served = await requests(tokens, s.id, 'orders', 20);
    assert.ok(grants <= 2, `${grants} refresh grants for 20 requests`);
    assert.equal(new Set(served).size, 1);
    const due = lines.filter((l) => l.includes('already due'));
    assert.equal(due.length, 1, lines.join('\n'));
    const line = JSON.parse(due[0]!) as Record<string, unknown>;
    assert.equal(line['idp'], 'dev');
    assert.ok(typeof line['expiresInMs'] === 'number' && line['expiresInMs'] < -100_000, due[0]);
    assert.ok(typeof line['idpClockMs'] === 'number' && Math.abs(line['idpClockMs'] + 300_000) < 5_000, due[0]);
    const token = served[0]!.slice('Bearer '.length);
    for (const l of lines) assert.ok(!l.includes(token) && !l.includes(token.split('.')[2]!), 'no token in any log line');
  });

  it('a due token is refreshed once the floor has passed, and a token that arrived fresh is refreshed first when it falls due', async () => {
    // An IdP that answers the first refresh with a due token, then normally.
    let first = true;
    const s = await loginSession('normal');
    const tokens = provider((b) => { if (first) b['expires_in'] = 1; first = false; });
    await requests(tokens, s.id, 'orders', 5);
    assert.ok(grants <= 1, `${grants} grants while the floor holds`);
    await sleep(FLOOR_MS + 100);
    await requests(tokens, s.id, 'orders', 5);
    assert.equal(grants, 2, 'the due token refreshed after the floor, the fresh one kept');
    // Its normal expiry comes (as if time had passed) right after: refreshed at once, no floor.
    const cur = (await env.store.getById(s.id))!;
    const t = cur.secrets.tokens['orders']!;
    assert.ok(t.expiresAt! > Date.now() + 60_000);
    assert.ok(await env.store.updateSecrets(s.id, { ...cur.secrets, tokens: { ...cur.secrets.tokens, orders: { ...t, expiresAt: Date.now() + 10_000 } } }));
    const [after] = await requests(tokens, s.id, 'orders', 1);
    assert.equal(grants, 3, 'a token due for a normal reason is refreshed first');
    assert.notEqual(after, `Bearer ${t.value}`);
  });

  it('two processes on one store, 10 concurrent calls: one grant; then 20 requests taking turns: at most one more (not one each)', async () => {
    const stores = [env.store, createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger })];
    try {
      const procs = stores.map((st) => ({ store: st, tokens: provider((b) => { b['expires_in'] = 1; }, silentLogger, st) }));
      const s = await loginSession('pair');
      const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const p = procs[i % 2]!;
        return (await p.tokens.credentials((await p.store.getById(s.id))!, 'orders', 'GET', `${ORDERS}/1`))?.authorization;
      }));
      assert.equal(grants, 1, 'one grant for concurrent calls in two processes');
      assert.equal(new Set(results).size, 1);
      assert.equal(rejections, 0, 'no refresh token reused');
      // Taking turns: at most one grant per process within the floor (not one each, in turn).
      for (let i = 0; i < 20; i++) await requests(procs[i % 2]!.tokens, s.id, 'orders', 1);
      assert.ok(grants <= 2, `${grants} grants for 30 requests in two processes`);
      assert.equal(rejections, 0);
    } finally {
      await stores[1]!.close();
    }
  });

  it('through /auth/verify (real HTTP): 20 requests of a session whose IdP answers expires_in 1 make one grant; a logout within the floor still wins', async () => {
    const tokens = provider((b) => { b['expires_in'] = 1; });
    const verify = await startVerifyApp(env.store, env.redis.url, { tokens, idps: env.config.idps });
    try {
      const r = await env.login('sidecar');
      const cookie = `goldpath=${r.sessionCookie}`;
      const s = (await env.store.get(r.sessionCookie!))!;
      const t = s.secrets.tokens['']!;
      assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { ...s.secrets.tokens, '': { ...t, expiresAt: Date.now() - 1000 } } }));
      const auths = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
        assert.equal(res.status, 200, res.body);
        auths.add(String(res.headers['authorization']));
      }
      assert.ok(grants <= 2, `${grants} refresh grants for 20 requests`);
      assert.equal(auths.size, 1);
      assert.notEqual([...auths][0], `Bearer ${t.value}`);
      await env.store.delete(s.id); // a logout
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 401, res.body);
    } finally {
      await verify.close();
    }
  });
});
