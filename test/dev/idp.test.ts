// The dev IdP on its own, driven by openid-client and the browser-like login helper.
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startDevIdp, devIdpClientFor, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { browserLogin, CookieJar, httpCall, parseForms } from '../helpers/login.ts';

const ORIGIN = 'http://127.0.0.1:9'; // never contacted: the helper stops before the redirect URI
const SECRET = 'dev-idp-test-secret-0123456789abcdef';

async function authorize(idp: DevIdp, user: string, extra: Record<string, string> = {}, opts: { par?: boolean } = {}) {
  const config = await oidc.discovery(new URL(idp.issuer), 'rp', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const state = oidc.randomState();
  const params = {
    redirect_uri: `${ORIGIN}/auth/callback`, scope: 'openid profile email offline_access', nonce, state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  };
  const url = opts.par ? await oidc.buildAuthorizationUrlWithPAR(config, params) : oidc.buildAuthorizationUrl(config, params);
  const r = await browserLogin({ start: url.href, user, stopBefore: (u) => u.origin === ORIGIN });
  const cb = r.hops.at(-1)?.location ?? '';
  assert.ok(cb.startsWith(`${ORIGIN}/auth/callback`), `expected a redirect to the callback, got ${cb} (${r.status})`);
  return { config, cb: new URL(cb), verifier, nonce, state };
}

/** An authorization URL of client rp (the login form's tests, which never reach the callback). */
async function authorizeUrl(idp: DevIdp): Promise<URL> {
  const config = await oidc.discovery(new URL(idp.issuer), 'rp', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  return oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${ORIGIN}/auth/callback`, scope: 'openid', nonce: oidc.randomNonce(), state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
}

describe('dev IdP (oidc-provider)', function () {
  this.timeout(20_000);
  let idp: DevIdp;
  let grants: string[] = [];

  before(async () => {
    idp = await startDevIdp({
      port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true, accessTokenTtl: 60,
      clients: [devIdpClientFor({ clientId: 'rp', clientSecret: SECRET, origin: ORIGIN })],
      audiences: { 'https://api.example.test/orders': { scopes: ['orders.read', 'orders.write'] } },
    });
    idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => grants.push(ctx.oidc.params.grant_type));
  });
  after(() => idp?.close());
  beforeEach(() => { grants = []; });

  it('refuses plain http unless explicitly allowed', async () => {
    await assert.rejects(startDevIdp({ port: 0, log: silentLogger, clients: [] }), /dangerouslyAllowInsecureHttp/);
  });

  it('logs in any user name with login + consent; admin gets admin and reader roles', async () => {
    const { config, cb, verifier, nonce, state } = await authorize(idp, 'admin');
    assert.equal(cb.searchParams.get('iss'), idp.issuer);
    const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.ok(tokens.refresh_token, 'a refresh token is issued');
    assert.equal(tokens.claims()?.sub, 'admin');
    const info = await oidc.fetchUserInfo(config, tokens.access_token, 'admin');
    assert.deepEqual(info['roles'], ['admin', 'reader']);
    assert.equal(info.email, 'admin@example.test');
    assert.equal(info.name, 'Admin');
    assert.deepEqual(grants, ['authorization_code']);
  });

  it('signs in an e-mail address as the user name (what most people type into "any user name")', async () => {
    // The login form refused "@" (its pattern, and the server's check): a person who typed an
    // e-mail address saw the browser's bare "match the requested format" and could not sign in.
    const { config, cb, verifier, nonce, state } = await authorize(idp, 'carol.x+demo@example.com');
    const tokens = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.equal(tokens.claims()?.sub, 'carol.x+demo@example.com');
    const info = await oidc.fetchUserInfo(config, tokens.access_token, 'carol.x+demo@example.com');
    assert.equal(info.email, 'carol.x+demo@example.com', 'an e-mail address is its own e-mail');
    assert.deepEqual(info['roles'], ['reader']);
    // The browser checks the form's pattern first, as HTML does: anchored, with the v flag.
    const jar = new CookieJar();
    let r = await httpCall(await authorizeUrl(idp), { jar });
    while (r.status === 302 || r.status === 303) r = await httpCall(new URL(String(r.headers.location), idp.issuer), { jar });
    const pattern = /pattern="([^"]+)"/.exec(r.body)?.[1];
    assert.ok(pattern, 'the login form has a pattern');
    const html = new RegExp(`^(?:${pattern.replaceAll('&quot;', '"').replaceAll('&amp;', '&')})$`, 'v');
    for (const user of ['carol.x+demo@example.com', 'admin', 'bob_1']) assert.ok(html.test(user), user);
    for (const user of ['a b', 'a@b@c', 'x/y']) assert.ok(!html.test(user), user);
  });

  it('still refuses a user name that is not header- and path-safe, with a message naming the rule', async () => {
    for (const user of ['a b', 'jürgen', 'a@b@c', 'x/y', '@example.com']) {
      const r = await browserLogin({ start: (await authorizeUrl(idp)).href, user, stopBefore: (u) => u.origin === ORIGIN });
      assert.equal(r.status, 400, user);
      assert.match(r.last.body, /User names are/, user);
    }
  });

  it('gives every other user the reader role and rotates refresh tokens', async () => {
    const { config, cb, verifier, nonce, state } = await authorize(idp, 'bob');
    const t1 = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    assert.deepEqual((await oidc.fetchUserInfo(config, t1.access_token, 'bob'))['roles'], ['reader']);
    const t2 = await oidc.refreshTokenGrant(config, t1.refresh_token!);
    assert.notEqual(t2.refresh_token, t1.refresh_token, 'rotated');
    await assert.rejects(oidc.refreshTokenGrant(config, t1.refresh_token!), (e: oidc.ResponseBodyError) => e.error === 'invalid_grant');
  });

  it('issues audience tokens for a granted resource through the refresh grant (RFC 8707)', async () => {
    const resource = 'https://api.example.test/orders';
    const { config, cb, verifier, nonce, state } = await authorize(idp, 'carol', { resource, scope: 'openid profile orders.read' });
    const t1 = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
    const t2 = await oidc.refreshTokenGrant(config, t1.refresh_token!, { resource, scope: 'orders.read' });
    const at = decodeJwt(t2.access_token);
    assert.equal(at.aud, resource);
    assert.equal(at['scope'], 'orders.read');
  });

  it('can require PAR', async () => {
    const strict = await startDevIdp({
      port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true, requirePar: true,
      clients: [devIdpClientFor({ clientId: 'rp', clientSecret: SECRET, origin: ORIGIN })],
    });
    try {
      const refused = await authorize(strict, 'dave');
      assert.equal(refused.cb.searchParams.get('error'), 'invalid_request', 'a front-channel request is refused');
      const { config, cb, verifier, nonce, state } = await authorize(strict, 'dave', {}, { par: true });
      assert.equal(config.serverMetadata().require_pushed_authorization_requests, true);
      const t = await oidc.authorizationCodeGrant(config, cb, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state });
      assert.equal(t.claims()?.sub, 'dave');
    } finally {
      await strict.close();
    }
  });

  it('its own pages (sign-in, sign-out, signed out, error) are never framed or sniffed, and send no Referer', async () => {
    const pages: { name: string; headers: Record<string, unknown> }[] = [];
    const config = await oidc.discovery(new URL(idp.issuer), 'rp', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${ORIGIN}/auth/callback`, scope: 'openid', state: 's1',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const jar = new CookieJar();
    const signIn = await httpCall(url, { jar });
    const first = await httpCall(new URL(signIn.headers.location!, idp.issuer), { jar });
    assert.match(first.body, /id="login"/);
    pages.push({ name: 'sign-in', headers: first.headers });
    const r = await browserLogin({ start: url.href, user: 'frank', stopBefore: (u) => u.origin === ORIGIN });
    // The sign-out page (its URL may hold an ID token), then the page after signing out.
    const signOut = await httpCall(`${idp.issuer}/session/end`, { jar: r.jar });
    pages.push({ name: 'sign-out', headers: signOut.headers });
    const form = parseForms(signOut.body)[0]!;
    const done = await httpCall(form.action, {
      jar: r.jar, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.fields, logout: 'yes' }).toString(),
    });
    const success = await httpCall(new URL(done.headers.location!, idp.issuer), { jar: r.jar });
    assert.match(success.body, /signed out/);
    pages.push({ name: 'signed out', headers: success.headers });
    const error = await httpCall(`${idp.issuer}/auth?client_id=nobody&response_type=code&scope=openid`, {});
    assert.equal(error.status, 400);
    pages.push({ name: 'error', headers: error.headers });
    for (const { name, headers } of pages) {
      assert.match(String(headers['content-type']), /^text\/html/, name);
      assert.equal(headers['x-frame-options'], 'DENY', name);
      assert.match(String(headers['content-security-policy']), /frame-ancestors 'none'/, name);
      assert.equal(headers['x-content-type-options'], 'nosniff', name);
      assert.equal(headers['referrer-policy'], 'no-referrer', name);
      assert.equal(headers['cache-control'], 'no-store', name);
    }
  });

  it('cancelling the login answers access_denied to the client', async () => {
    const config = await oidc.discovery(new URL(idp.issuer), 'rp', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${ORIGIN}/auth/callback`, scope: 'openid', state: 's1',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const r = await browserLogin({ start: url.href, cancelLogin: true, stopBefore: (u) => u.origin === ORIGIN });
    const cb = new URL(r.hops.at(-1)!.location!);
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    assert.equal(cb.searchParams.get('state'), 's1');
  });
});
