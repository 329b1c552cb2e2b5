// `goldpath dev-idp` wiring: clients come from idps.yaml (same id, secret and auth method) for the
// IdPs whose issuer is the dev IdP; plain http needs the explicit dangerous opt-in.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { startDevIdpFromConfig } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../helpers/redis.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { browserLogin } from '../helpers/login.ts';

describe('dev IdP from idps.yaml (goldpath dev-idp)', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'goldpath-devidp-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function writeIdps(issuer: string, insecure: boolean): void {
    writeFileSync(join(dir, 'idps.yaml'), `default: dev
idps:
  dev:
    issuer: ${issuer}
    client_id: goldpath
    client_secret: \${TEST_CLIENT_SECRET}
    client_auth: client_secret_post
${insecure ? '    dangerously_allow_insecure_http: true\n' : ''}    audiences:
      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }
  other:
    issuer: https://elsewhere.example.test
    client_id: someone-else
    client_secret: x
    audiences:
      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }
`);
  }

  it('sends back-channel logouts to GOLDPATH_DEV_IDP_BACKCHANNEL_URL when set (compose: the BFF on the internal network)', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    writeIdps(issuer, true);
    const idp = await startDevIdpFromConfig({
      log: silentLogger,
      env: {
        GOLDPATH_CONFIG_DIR: dir, GOLDPATH_IDP_ISSUER: issuer, PORT: String(port), HOST: '127.0.0.1', GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
        TEST_CLIENT_SECRET: 'sekret-sekret', GOLDPATH_DEV_IDP_BACKCHANNEL_URL: 'http://bff:3001',
      },
    });
    try {
      const client = await (idp.provider as unknown as { Client: { find(id: string): Promise<Record<string, unknown>> } }).Client.find('goldpath');
      assert.equal(client['backchannelLogoutUri'] ?? client['backchannel_logout_uri'], 'http://bff:3001/auth/backchannel-logout');
      assert.deepEqual(client['redirectUris'] ?? client['redirect_uris'], ['http://localhost:8080/auth/callback']);
    } finally {
      await idp.close();
    }
  });

  it('registers the client of idps.yaml and serves discovery, login and the audiences', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    writeIdps(issuer, true);
    const idp = await startDevIdpFromConfig({
      log: silentLogger,
      env: { GOLDPATH_CONFIG_DIR: dir, GOLDPATH_IDP_ISSUER: issuer, PORT: String(port), HOST: '127.0.0.1', GOLDPATH_PUBLIC_URL: 'http://localhost:8080', TEST_CLIENT_SECRET: 'sekret-sekret' },
    });
    try {
      assert.equal(idp.issuer, issuer);
      const config = await oidc.discovery(new URL(issuer), 'goldpath', 'sekret-sekret', oidc.ClientSecretPost('sekret-sekret'), { execute: [oidc.allowInsecureRequests] });
      assert.ok(config.serverMetadata().pushed_authorization_request_endpoint);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: 'http://localhost:8080/auth/callback', scope: 'openid reports.read', state: 's',
        resource: 'https://api.example.test/reports', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      const r = await browserLogin({ start: url.href, user: 'admin', stopBefore: (u) => u.origin === 'http://localhost:8080' });
      const cb = new URL(r.hops.at(-1)!.location!);
      assert.ok(cb.searchParams.get('code'), `no code: ${cb}`);
      const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedState: 's', idTokenExpected: true });
      assert.equal(tokens.claims()?.sub, 'admin');
      await assert.rejects(oidc.discovery(new URL(issuer), 'someone-else', 'x', undefined, { execute: [oidc.allowInsecureRequests] })
        .then((c) => oidc.refreshTokenGrant(c, 'x')), 'IdPs with another issuer get no client');
    } finally {
      await idp.close();
    }
  });

  it('listens on loopback only unless HOST says otherwise (it signs anyone in, admin included)', async () => {
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    writeIdps(issuer, true);
    const idp = await startDevIdpFromConfig({
      log: silentLogger,
      env: { GOLDPATH_CONFIG_DIR: dir, GOLDPATH_IDP_ISSUER: issuer, PORT: String(port), GOLDPATH_PUBLIC_URL: 'http://localhost:8080', TEST_CLIENT_SECRET: 'x' },
    });
    try {
      // The kernel's own list of listening sockets: local address 127.0.0.1 (0100007F), not 0.0.0.0.
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      const listening = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
        .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A').map((f) => f[1]!.split(':')[0]);
      assert.deepEqual(listening, ['0100007F']);
    } finally {
      await idp.close();
    }
  });

  it('refuses a plain-http issuer without dangerously_allow_insecure_http', async () => {
    const port = await freePort();
    writeIdps(`http://127.0.0.1:${port}`, false);
    await assert.rejects(startDevIdpFromConfig({
      log: silentLogger,
      env: { GOLDPATH_CONFIG_DIR: dir, GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${port}`, PORT: String(port), HOST: '127.0.0.1', TEST_CLIENT_SECRET: 'x' },
    }), /dangerously_allow_insecure_http|https/);
  });

  it('refuses to start when no IdP of idps.yaml has its issuer', async () => {
    writeIdps('http://127.0.0.1:1', true);
    await assert.rejects(startDevIdpFromConfig({
      log: silentLogger,
      env: { GOLDPATH_CONFIG_DIR: dir, GOLDPATH_IDP_ISSUER: 'http://127.0.0.1:2', PORT: '0', HOST: '127.0.0.1', TEST_CLIENT_SECRET: 'x' },
    }), /no IdP/);
  });
});
