// A slow IdP at the token endpoint, through the real verify chain, a real redis-server and a real
// oidc-provider (which rotates refresh tokens and treats a reused one as theft: the grant is
// revoked, so a reuse ends the session):
//   - a grant that takes longer than a request may wait is not cut off: the request gets its 503,
//     the grant runs on and its rotated refresh token is saved, and the user stays signed in;
//   - a request whose token expires while it waits for a refresh ahead of time is never answered
//     with that token.
import assert from 'node:assert/strict';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider } from '../../src/oidc/token-provider.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { loginExpiringAt, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { startVerifyApp, type RunningVerify } from '../helpers/verify-app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('token refresh against a slow IdP', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let closeStore: () => Promise<void>;
  let grants = 0;
  let grantErrors: string[] = [];
  /** Delay before the token endpoint is asked, and before its answer is handed over. */
  let askDelay = 0;
  let answerDelay = 0;

  before(async () => {
    env = await startIdpBff();
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') grants++;
    });
    env.idp.provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }, err: { error?: string }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') grantErrors.push(String(err.error));
    });
    const slow: FetchLike = async (url, init) => {
      const token = String(url).endsWith('/token');
      if (token && askDelay > 0) await sleep(askDelay);
      const res = await globalThis.fetch(url, init as RequestInit);
      if (!token || answerDelay === 0) return res;
      // The IdP has answered (and rotated the refresh token); the answer arrives late, unless the
      // client gives up first.
      const body = await res.text();
      const signal = (init as RequestInit | undefined)?.signal;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, answerDelay);
        signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); });
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const store = createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger });
    closeStore = () => store.close();
    const idps = new IdpRegistry(env.config.idps, { log: silentLogger, fetch: slow });
    // Requests wait 2 s at most for a refresh (5 s by default: the helper's client gives up at 5 s).
    const tokens = createTokenProvider({ idps, store, log: silentLogger, waitMs: 2_000 });
    verify = await startVerifyApp(store, env.redis.url, { tokens, idps: env.config.idps });
  });
  after(async () => {
    await verify?.close();
    await closeStore?.();
    await env?.close();
  });
  beforeEach(() => {
    grants = 0;
    grantErrors = [];
    askDelay = 0;
    answerDelay = 0;
  });

  const sessionExpiringAt = (user: string, expiresAt: number) => loginExpiringAt(env, user, expiresAt);

  it('a grant answered after the request gave up is saved: the user stays signed in (it was cut off at 5 s, and the next refresh reused the spent refresh token)', async () => {
    const { cookie, session } = await sessionExpiringAt('slowpoke', Date.now() - 1000);
    answerDelay = 6_000;
    const first = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(first.status, 503, first.body);
    assert.ok(first.ms < 4_000, `answered after ${Math.round(first.ms)} ms: a request does not wait out the slow grant`);
    assert.equal(first.headers['authorization'], undefined);
    answerDelay = 0;
    // The grant completes in the background and is saved under its lock.
    const until = Date.now() + 10_000;
    while ((await env.store.getById(session.id))?.secrets.refreshToken === session.secrets.refreshToken && Date.now() < until) await sleep(100);
    const next = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(next.status, 200, next.body);
    assert.deepEqual(grantErrors, [], 'no refresh token sent twice');
    assert.equal(grants, 1);
    assert.ok(await env.store.getById(session.id), 'the session lives on');
  });

  it('a token that expires while the request waits for its refresh ahead of time is not served: the refreshed one is', async () => {
    const { cookie, session, token } = await sessionExpiringAt('lastsecond', Date.now() + 3_600_000);
    askDelay = 400;
    // 100 ms left when the request comes: it used to wait 150 ms for the refresh, then get this
    // token, expired by then. (Set just before the request: a login takes longer than that.)
    const t = session.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(session.id, { ...session.secrets, tokens: { ...session.secrets.tokens, '': { ...t, expiresAt: Date.now() + 100 } } }));
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 200, res.body);
    assert.notEqual(res.headers['authorization'], `Bearer ${token}`, 'the token about to expire was served after the wait');
    assert.equal(grants, 1);
  });
});
