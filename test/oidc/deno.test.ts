// The token provider is used by the verify sidecar, which must run unchanged under Deno 2: a real
// refresh through Deno, with tls_client_auth (client certificate via node:https) and DPoP.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { makeTestPki, type TestPki } from '../helpers/idp-tls.ts';
import { runDenoScript } from '../helpers/process.ts';


describe('TokenProvider under Deno (mTLS + DPoP refresh)', function () {
  this.timeout(60_000);
  let pki: TestPki;
  let env: IdpBff;
  const methods: string[] = [];

  before(async () => {
    pki = makeTestPki();
    env = await startIdpBff({
      browserCa: pki.caCert,
      idps: [{
        devIdp: { tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert } },
        config: {
          clientAuth: 'tls_client_auth', clientSecret: undefined, dpop: true,
          mtls: { cert: pki.clientCertPath, key: pki.clientKeyPath, ca: pki.caCertPath },
        },
        client: { tls_client_auth_subject_dn: pki.clientSubject },
      }],
    });
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string }; client: { clientAuthMethod: string } } }) => {
      methods.push(`${ctx.oidc.params.grant_type}/${ctx.oidc.client.clientAuthMethod}`);
    });
  });
  after(async () => {
    await env?.close();
    pki?.cleanup();
  });

  it('refreshes an expired token from Deno and returns DPoP credentials', async () => {
    const r = await env.login('alice');
    assert.equal(r.status, 302);
    const s = (await env.store.get(r.sessionCookie!))!;
    const t = s.secrets.tokens['']!;
    await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1 } } });
    const upstream = 'https://api.example.test/orders/7';
    const res = await runDenoScript('test/oidc/fixtures/deno-refresh.ts', {
      GP_INPUT: JSON.stringify({
        redisUrl: env.redis.url,
        sessionKey: Buffer.from(env.settings.sessionKeys[0]!).toString('base64url'),
        sessionId: s.id,
        idp: env.config.idps.idps['dev'],
        upstream,
      }),
    });
    assert.equal(res.code, 0, `deno failed:\n${res.err}\n${res.out}`);
    const { runtime, creds } = JSON.parse(res.out.trim().split('\n').at(-1)!);
    assert.equal(runtime, 'deno');
    assert.match(creds.authorization, /^DPoP /);
    const token = creds.authorization.slice(5);
    assert.notEqual(token, t.value, 'refreshed');
    const proof = decodeJwt(creds.dpop);
    assert.equal(proof['htu'], upstream);
    assert.equal(proof['ath'], createHash('sha256').update(token).digest('base64url'));
    assert.deepEqual(methods, ['authorization_code/tls_client_auth', 'refresh_token/tls_client_auth']);
    const stored = (await env.store.getById(s.id))!;
    assert.equal(stored.secrets.tokens['']!.value, token, 'Deno wrote the new secrets to the shared store');
  });
});
