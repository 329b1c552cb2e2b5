// POST /auth/logout deletes the session before it revokes the refresh token at the IdP: with a real
// BFF, the real dev IdP (whose revocation endpoint is made slow) and a real redis-server, the session
// is gone while the revocation is still under way, and the revocation still happens.
import assert from 'node:assert/strict';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';

describe('BFF logout: the session ends before the IdP\'s revocation answers', function () {
  this.timeout(30_000);
  let env: IdpBff;
  /** Resolved when the revocation request reaches the (slow) endpoint; the test releases it. */
  let revoking: (() => void) | undefined;
  let release: (() => void) | undefined;
  const revoked: string[] = [];

  before(async () => {
    const fetch: FetchLike = async (url, init) => {
      if (String(url).endsWith('/token/revocation')) {
        revoked.push(new URLSearchParams(String(init.body)).get('token') ?? '');
        revoking?.();
        await new Promise<void>((r) => { release = r; });
      }
      return globalThis.fetch(url, init as RequestInit);
    };
    env = await startIdpBff({ fetch });
  });
  after(async () => {
    release?.();
    await env?.close();
  });

  it('while the revocation endpoint has not answered, the session is already gone from the store; then the refresh token is revoked', async () => {
    const r = await env.login('alice');
    const session = (await env.store.get(r.sessionCookie!))!;
    assert.ok(session.secrets.refreshToken, 'the session has a refresh token to revoke');
    const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body);
    const reached = new Promise<void>((res) => { revoking = res; });
    const logout = httpCall(`${env.url}/auth/logout`, {
      method: 'POST', jar: r.jar, headers: { 'x-csrf-token': info.csrf_token, accept: 'application/json', 'sec-fetch-mode': 'cors' },
    });
    await reached;
    assert.equal(await env.store.getById(session.id), null, 'the session is deleted before the IdP answers the revocation');
    release!();
    const res = await logout;
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(revoked, [session.secrets.refreshToken], 'the refresh token was sent for revocation');
    assert.equal(await env.idp.provider.RefreshToken.find(session.secrets.refreshToken!), undefined, 'and the IdP revoked it');
  });
});
