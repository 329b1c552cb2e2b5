// Client authentication methods and PAR: each completes a full browser login through the BFF.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { capturingLogger, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { makeTestPki, type TestPki } from '../helpers/idp-tls.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

describe('BFF client authentication and PAR', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  /** Token-endpoint authentications seen by the IdP of the current test. */
  let authMethods: string[] = [];

  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.stop());

  function watch(env: IdpBff): void {
    authMethods = [];
    env.idp.provider.on('grant.success', (ctx: { oidc: { client: { clientAuthMethod: string } } }) => {
      authMethods.push(ctx.oidc.client.clientAuthMethod);
    });
  }

  async function loginAndRefresh(env: IdpBff, user: string): Promise<void> {
    const r = await env.login(user);
    assert.equal(r.status, 302, `callback answered ${r.status}: ${r.last.body.slice(0, 300)}`);
    const info = await httpCall(`${env.url}/auth/session`, { jar: r.jar });
    assert.equal(JSON.parse(info.body).user.sub, user);
    // The refresh grant authenticates the same way.
    const s = (await env.store.get(r.sessionCookie!))!;
    const t = s.secrets.tokens['']!;
    await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1 } } });
    const creds = await env.bff.tokens.credentials((await env.store.getById(s.id))!, '', 'GET', 'https://api.example.test/');
    assert.ok(creds && creds.authorization !== `Bearer ${t.value}`);
  }

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    it(method, async () => {
      const env = await startIdpBff({ redis, idps: [{ config: { clientAuth: method } }] });
      try {
        watch(env);
        await loginAndRefresh(env, 'alice');
        assert.deepEqual(authMethods, [method, method]);
      } finally {
        await env.close();
      }
    });
  }

  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    it(`a secret the IdP does not accept (${method}, no PAR): the callback is a 503 and an error line for operators, not a 400 blaming the sign-in`, async () => {
      const cap = capturingLogger();
      const env = await startIdpBff({
        redis, log: cap.log,
        idps: [{ config: { clientAuth: method, par: 'never' }, client: { client_secret: 'the-idp-has-another-secret-0123456789xx' } }],
      });
      try {
        const refused: string[] = [];
        env.idp.provider.on('grant.error', (_ctx: unknown, err: { error?: string }) => refused.push(String(err.error)));
        const r = await env.login('erin');
        assert.deepEqual(refused, ['invalid_client'], 'the IdP refused the client at its token endpoint');
        assert.equal(r.status, 503, r.last.body.slice(0, 300));
        assert.equal(r.sessionCookie, undefined);
        const line = cap.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).find((l) => /client authentication/.test(l.msg));
        assert.ok(line && line.level === 'error', `an error-level line: ${JSON.stringify(line)}`);
        assert.match(await (await fetch(`${env.url}/metrics`)).text(), /^goldpath_logins_total\{outcome="unavailable"\} 1$/m);
      } finally {
        await env.close();
      }
    });
  }

  it('an IdP that does not allow the client the code grant (unauthorized_client): the callback is a 503 and an error line for operators, not a 400 blaming the sign-in', async () => {
    const cap = capturingLogger();
    // oidc-provider answers invalid_request for a grant the client may not use; other IdPs answer
    // as RFC 6749 5.2 says. The code is not redeemed.
    const env = await startIdpBff({
      redis, log: cap.log,
      fetch: async (url, init) => (String(init.body ?? '').includes('grant_type=authorization_code')
        ? Response.json({ error: 'unauthorized_client', error_description: 'the client may not use this grant' }, { status: 400, headers: { 'cache-control': 'no-store' } })
        : globalThis.fetch(url, init as RequestInit)),
    });
    try {
      const r = await env.login('erin');
      assert.equal(r.status, 503, r.last.body.slice(0, 300));
      assert.equal(r.sessionCookie, undefined);
      const line = cap.lines.map((l) => JSON.parse(l) as { level: string; msg: string; err?: { error?: string } }).find((l) => /client authentication/.test(l.msg));
      assert.ok(line && line.level === 'error' && line.err?.error === 'unauthorized_client', `an error-level line: ${JSON.stringify(line)}`);
    } finally {
      await env.close();
    }
  });

  it('private_key_jwt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-pkjwt-'));
    try {
      const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
      const priv = { ...(await exportJWK(privateKey)), kid: 'client-key-1', alg: 'ES256' };
      const pub = { ...(await exportJWK(publicKey)), kid: 'client-key-1', alg: 'ES256', use: 'sig' };
      const keyFile = join(dir, 'client.jwk.json');
      writeFileSync(keyFile, JSON.stringify(priv));
      const env = await startIdpBff({
        redis,
        idps: [{ config: { clientAuth: 'private_key_jwt', clientSecret: undefined, privateKey: keyFile }, client: { jwks: { keys: [pub] } } }],
      });
      try {
        watch(env);
        await loginAndRefresh(env, 'bob');
        assert.deepEqual(authMethods, ['private_key_jwt', 'private_key_jwt']);
      } finally {
        await env.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('tls_client_auth (mTLS)', () => {
    let pki: TestPki;
    before(() => {
      pki = makeTestPki();
    });
    after(() => pki?.cleanup());
    /** The dev IdP over TLS, the BFF authenticating with the test client certificate; the IdP
     *  registers the client under `subjectDn`. */
    const startMtls = (subjectDn: string) => startIdpBff({
      redis,
      browserCa: pki.caCert,
      idps: [{
        devIdp: { tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert } },
        config: {
          clientAuth: 'tls_client_auth', clientSecret: undefined,
          mtls: { cert: pki.clientCertPath, key: pki.clientKeyPath, ca: pki.caCertPath },
        },
        client: { tls_client_auth_subject_dn: subjectDn },
      }],
    });

    it('logs in and refreshes with the client certificate', async () => {
      const env = await startMtls(pki.clientSubject);
      try {
        assert.ok(env.idp.issuer.startsWith('https://'));
        watch(env);
        await loginAndRefresh(env, 'carol');
        assert.deepEqual(authMethods, ['tls_client_auth', 'tls_client_auth']);
      } finally {
        await env.close();
      }
    });

    it('fails closed (503 page at /auth/login, no session) when the certificate does not match the registration', async () => {
      const env = await startMtls('CN=someone-else');
      try {
        const refused: string[] = [];
        env.idp.provider.on('pushed_authorization_request.error', (_ctx: unknown, err: { error?: string }) => refused.push(String(err.error)));
        const r = await env.login('dave');
        assert.equal(r.status, 503);
        assert.equal(r.hops.length, 1, 'the browser never left the BFF');
        assert.deepEqual(refused, ['invalid_client'], 'the IdP refused the certificate');
        assert.equal(r.sessionCookie, undefined);
      } finally {
        await env.close();
      }
    });
  });

  for (const par of ['auto', 'never', 'always'] as const) {
    it(`an IdP that requires PAR works (par: ${par})`, async () => {
      const env = await startIdpBff({ redis, idps: [{ devIdp: { requirePar: true }, config: { par } }] });
      try {
        const r = await env.login('erin');
        assert.equal(r.status, 302, r.last.body.slice(0, 200));
        const authorize = new URL(r.hops[0]!.location!);
        assert.ok(authorize.searchParams.get('request_uri'), 'the browser only carried a request_uri');
        assert.equal(authorize.searchParams.get('nonce'), null);
      } finally {
        await env.close();
      }
    });
  }

  it('par: never against an IdP that offers (but does not require) PAR sends the request in the URL', async () => {
    const env = await startIdpBff({ redis, idps: [{ config: { par: 'never' } }] });
    try {
      const r = await env.login('frank');
      assert.equal(r.status, 302);
      const authorize = new URL(r.hops[0]!.location!);
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(authorize.searchParams.get('code_challenge'));
      assert.ok(authorize.searchParams.get('state'));
      assert.ok(authorize.searchParams.get('nonce'));
      assert.equal(authorize.searchParams.get('request_uri'), null);
    } finally {
      await env.close();
    }
  });
});
