// A refresh racing a new sign-in of the same browser, with real parts: a real redis-server, the
// real BFF (its callback replaces the browser's previous session), the real /auth/verify chain with
// the real token provider, and an oidc-provider dev IdP as it comes: a second sign-in at the same
// IdP session reuses the grant, and revoking a refresh token revokes its whole grant (as Keycloak
// ends the client session). The replaced session's refresh must not revoke what the new one holds.
import assert from 'node:assert/strict';
import type { SessionStore } from '../../src/session/types.ts';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { type RunningVerify } from '../helpers/verify-app.ts';
import { sleep, gate, grantsRefresh, startRefreshingVerify, watchingFetch } from '../helpers/refresh-race.ts';



describe('a refresh racing a new sign-in of the same browser (an IdP that revokes per grant)', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let store: SessionStore;
  let answered: (() => Promise<void>) | undefined;
  let revocations = 0;

  before(async () => {
    env = await startIdpBff({});
    const fetch = watchingFetch(() => revocations++, () => answered?.());
    ({ store, verify } = await startRefreshingVerify(env, fetch));
  });
  after(async () => {
    await verify?.close();
    await store?.close();
    await env?.close();
  });

  const grants = (rt: string) => grantsRefresh(env.idp.issuer, rt);

  for (const [how, withCookie] of [['the callback, by its cookie', true], ['the store, by the browser\'s previous sign-in', false]] as const) it(`replaced by ${how}: its refresh saves nothing and revokes nothing, the new session's grant lives`, async () => {
    revocations = 0;
    const first = await env.login(`dana-${withCookie}`);
    assert.equal(first.status, 302);
    const old = (await env.store.get(first.sessionCookie!))!;
    const t = old.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(old.id, { ...old.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1000 } } }));
    const arrived = gate();
    const go = gate();
    answered = async () => {
      answered = undefined;
      arrived.open();
      await go.promise;
    };
    const call = verify.verify('GET', '/api/orders/1', { Cookie: `goldpath=${first.sessionCookie}` });
    await arrived.promise;
    // Meanwhile the same browser signs in again (its IdP session, so its grant, is the same).
    if (!withCookie) first.jar.delete('goldpath');
    const second = await env.login(`dana-${withCookie}`, { jar: first.jar });
    assert.equal(second.status, 302);
    assert.notEqual(second.sessionCookie, first.sessionCookie);
    assert.equal(await env.store.getById(old.id), null, 'the sign-in replaced the previous session');
    const now = (await env.store.get(second.sessionCookie!))!;
    go.open();
    assert.equal((await call).status, 401);
    await sleep(1_000); // a background revocation, if any, has been made
    assert.equal(await grants(now.secrets.refreshToken!), true, 'the new session\'s refresh token was revoked with its grant');
    assert.equal(revocations, 0, 'a replaced session is not revoked (its grant may be the new session\'s)');
  });
});

describe('a refresh racing a new sign-in of the same browser at another IdP', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let store: SessionStore;
  let answered: ((rt: string) => Promise<void>) | undefined;
  let revocations = 0;

  before(async () => {
    env = await startIdpBff({ idps: [{ name: 'dev' }, { name: 'other', redirectPaths: ['/auth/callback/other', '/auth/callback'] }] });
    const fetch = watchingFetch(() => revocations++, (rt) => answered?.(rt));
    ({ store, verify } = await startRefreshingVerify(env, fetch));
  });
  after(async () => {
    await verify?.close();
    await store?.close();
    await env?.close();
  });

  it('replaced by a sign-in at another IdP: the refresh token it obtained is revoked (no session holds its grant)', async () => {
    const first = await env.login('ines', { idp: 'dev' });
    assert.equal(first.status, 302, first.last.body.slice(0, 300));
    const old = (await env.store.get(first.sessionCookie!))!;
    assert.equal(old.idp, 'dev');
    const t = old.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(old.id, { ...old.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1000 } } }));
    const arrived = gate();
    const go = gate();
    let obtained = '';
    answered = async (rt) => {
      answered = undefined;
      obtained = rt;
      arrived.open();
      await go.promise;
    };
    revocations = 0;
    const call = verify.verify('GET', '/api/orders/1', { Cookie: `goldpath=${first.sessionCookie}` });
    await arrived.promise;
    // Meanwhile the browser signs in at the other IdP: its callback replaces the session by its cookie.
    const second = await env.login('ines', { idp: 'other', jar: first.jar });
    assert.equal(second.status, 302, second.last.body.slice(0, 300));
    assert.equal(await env.store.getById(old.id), null, 'the sign-in replaced the previous session');
    go.open();
    assert.equal((await call).status, 401);
    for (let i = 0; i < 30 && revocations === 0; i++) await sleep(100);
    assert.equal(revocations, 1, 'the refresh token the replaced session\'s refresh obtained is held by nobody, at an IdP no session uses: revoked');
    assert.ok(obtained && obtained !== old.secrets.refreshToken, 'the IdP rotated the refresh token');
    const live = async () => (await env.idps['dev']!.provider.RefreshToken.find(obtained)) !== undefined;
    for (let i = 0; i < 30 && await live(); i++) await sleep(100);
    assert.equal(await live(), false, 'the refresh token is still live at the IdP');
  });
});
