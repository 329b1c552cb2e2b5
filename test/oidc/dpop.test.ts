// DPoP (RFC 9449) end to end: a key per session, DPoP-bound tokens (token_type DPoP, cnf.jkt),
// nonce retries, and upstream credentials whose proof verifies for the upstream URL.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { EmbeddedJWK, calculateJwkThumbprint, decodeJwt, jwtVerify } from 'jose';
import { dpopThumbprint } from '../../src/oidc/dpop.ts';
import { startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { PUBLIC_URL, startVerifyApp } from '../helpers/verify-app.ts';

const ORDERS = 'https://api.example.test/orders';

describe('DPoP-bound sessions', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let config: oidc.Configuration;

  before(async () => {
    env = await startIdpBff({
      idps: [{
        config: { dpop: true, audiences: { orders: { resource: ORDERS, scopes: ['orders.read'] } } },
        // The IdP insists on DPoP nonces, so every DPoP call first meets use_dpop_nonce.
        devIdp: { requireDpopNonce: true },
        client: { dpop_bound_access_tokens: true },
      }],
    });
    config = await oidc.discovery(new URL(env.idp.issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => env?.close());

  it('login yields DPoP-bound tokens tied to the session key', async () => {
    const r = await env.login('alice');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = (await env.store.get(r.sessionCookie!))!;
    assert.ok(s.secrets.dpopJwk, 'a DPoP key per session');
    assert.ok(s.secrets.dpopJwk['d'], 'the private key is kept (encrypted) in the session');
    const at = s.secrets.tokens['']!;
    assert.equal(at.type, 'DPoP');
    const jkt = await dpopThumbprint(s.secrets.dpopJwk);
    const intro = await oidc.tokenIntrospection(config, at.value);
    assert.equal(intro.active, true);
    assert.equal(intro.token_type, 'DPoP');
    assert.equal((intro['cnf'] as { jkt: string }).jkt, jkt);
    // userinfo (merged at login) worked with the bound token.
    assert.deepEqual(s.secrets.user.roles, ['reader']);
    // Another login gets another key.
    const r2 = await env.login('alice');
    const s2 = (await env.store.get(r2.sessionCookie!))!;
    assert.notEqual(await dpopThumbprint(s2.secrets.dpopJwk!), jkt);
  });

  it('credentials() gives "DPoP <token>" and a proof that verifies for the upstream URL', async () => {
    const r = await env.login('bob');
    const s = (await env.store.get(r.sessionCookie!))!;
    const upstream = 'https://api.example.test/orders/42?expand=lines';
    const creds = (await env.bff.tokens.credentials(s, '', 'POST', upstream))!;
    const token = s.secrets.tokens['']!.value;
    assert.equal(creds.authorization, `DPoP ${token}`);
    const { payload, protectedHeader } = await jwtVerify(creds.dpop!, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] });
    assert.equal(payload['htm'], 'POST');
    assert.equal(payload['htu'], 'https://api.example.test/orders/42', 'htu without query');
    assert.equal(payload['ath'], createHash('sha256').update(token).digest('base64url'));
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16);
    assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 5);
    assert.equal(await calculateJwkThumbprint(protectedHeader.jwk!), await dpopThumbprint(s.secrets.dpopJwk!));
    assert.equal((protectedHeader.jwk as Record<string, unknown>)['d'], undefined, 'no private key material in the proof');
    const again = (await env.bff.tokens.credentials(s, '', 'POST', upstream))!;
    assert.notEqual(decodeJwt(again.dpop!).jti, payload.jti, 'a fresh jti per proof');
  });

  it('a bearer token in a DPoP-bound session (a refresh the IdP answered without DPoP) is never sent: 503', async () => {
    const r = await env.login('dave');
    const s = (await env.store.get(r.sessionCookie!))!;
    const t = s.secrets.tokens['']!;
    assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, type: 'Bearer' } } }));
    const downgraded = (await env.store.get(r.sessionCookie!))!;
    await assert.rejects(env.bff.tokens.credentials(downgraded, '', 'GET', 'https://api.example.test/orders/1'), (err: Error) => {
      assert.equal((err as { status?: number }).status, 503);
      assert.match(err.message, /bearer token to a DPoP-bound session/);
      return true;
    });
  });

  it('through /auth/verify, the proof is for the path the upstream receives: as sent, without its query', async () => {
    // The decoded path would read differently once it holds a decoded '?', '#' or '%'.
    const verify = await startVerifyApp(env.store, env.redis.url, { tokens: env.bff.tokens, idps: env.config.idps });
    try {
      const r = await env.login('dora');
      for (const [uri, htu] of [
        ['/api/orders/1?x=1', '/api/orders/1'],
        ['/api/orders/caf%C3%A9', '/api/orders/caf%C3%A9'],
        ['/api/orders/a%3Fb', '/api/orders/a%3Fb'],
        ['/api/orders/a%23b', '/api/orders/a%23b'],
        ['/api/orders/100%25', '/api/orders/100%25'],
      ] as const) {
        const res = await verify.verify('GET', uri, { Cookie: `goldpath=${r.sessionCookie}` });
        assert.equal(res.status, 200, `${uri}: ${res.body}`);
        assert.match(String(res.headers['authorization']), /^DPoP /);
        assert.equal(decodeJwt(String(res.headers['dpop']))['htu'], `${PUBLIC_URL}${htu}`, uri);
      }
    } finally {
      await verify.close();
    }
  });

  it('refreshes and audience tokens stay bound to the same key (through nonce retries)', async () => {
    const r = await env.login('carol');
    let s = (await env.store.get(r.sessionCookie!))!;
    const jkt = await dpopThumbprint(s.secrets.dpopJwk!);
    const t = s.secrets.tokens['']!;
    await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1 } } });
    s = (await env.store.getById(s.id))!;
    const creds = (await env.bff.tokens.credentials(s, '', 'GET', 'https://api.example.test/'))!;
    assert.match(creds.authorization, /^DPoP /);
    const refreshed = creds.authorization.slice(5);
    assert.notEqual(refreshed, t.value);
    assert.equal(((await oidc.tokenIntrospection(config, refreshed))['cnf'] as { jkt: string }).jkt, jkt);

    const aud = (await env.bff.tokens.credentials((await env.store.getById(s.id))!, 'orders', 'GET', `${ORDERS}/1`))!;
    const claims = decodeJwt(aud.authorization.slice(5));
    assert.equal(claims.aud, ORDERS);
    assert.equal((claims['cnf'] as { jkt: string }).jkt, jkt);
    const proof = decodeJwt(aud.dpop!);
    assert.equal(proof['htu'], `${ORDERS}/1`);
  });
});
