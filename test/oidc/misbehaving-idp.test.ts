// A misbehaving OpenID Provider (test/helpers/fake-idp.ts): every broken ID token ends in a clear
// 400 page at /auth/callback and no session — bad signature, wrong iss or aud, missing or wrong
// nonce, expired, alg none, HS256 keyed with the client secret, unknown kid. A signing-key
// rotation (new kid, new JWKS) between two logins just works.
import assert from 'node:assert/strict';
import type { FakeIdpOptions, IdTokenFault } from '../helpers/fake-idp.ts';
import { startFakeIdpBff, type FakeIdpBff } from '../helpers/fake-idp-bff.ts';
import { browserLogin, type LoginResult } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

type Env = FakeIdpBff;

/** The BFF and the fake IdP, discovered at start, asking for the email scope too. */
const startEnv = (redis: RedisServer, over: Partial<FakeIdpOptions> = {}): Promise<Env> =>
  startFakeIdpBff(redis, { idp: over, client: { scopes: ['openid', 'profile', 'email'] }, discoverEagerly: true });

/** The BFF's last "login failed" log line: why it refused (errCode, and the library's cause). */
function lastFailure(lines: string[]): { reason?: string; err?: { errCode?: string; cause?: string } } {
  return JSON.parse(lines.filter((l) => /"login failed(: the ID token [^"]*)?"/.test(l)).at(-1) ?? '{}');
}

function assert400Page(r: LoginResult, text = /did not pass validation/): void {
  assert.equal(r.status, 400, `expected a 400 page, got ${r.status}: ${r.last.body.slice(0, 300)}`);
  assert.match(String(r.last.headers['content-type']), /text\/html/);
  assert.equal(r.last.headers['cache-control'], 'no-store');
  assert.match(r.last.body, text);
  assert.doesNotMatch(r.last.body, /\bat .+\.js:\d+/, 'no stack trace');
  assert.equal(r.sessionCookie, undefined, 'no session cookie');
}

describe('a misbehaving IdP', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let env: Env;
  const login = () => browserLogin({ start: `${env.url}/auth/login?return_to=/home` });

  before(async () => {
    redis = await RedisServer.start();
    env = await startEnv(redis);
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });
  afterEach(() => {
    env.op.fault = 'none';
    env.op.tokenEndpointStatus = undefined;
    env.op.jwksStatus = undefined;
  });

  it('a well-behaved login through the fake IdP works (the baseline the faults depart from)', async () => {
    const r = await login();
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    assert.equal(r.location, `${env.url}/home`);
    const s = await env.store.get(r.sessionCookie!);
    assert.equal(s?.sub, 'mallory');
  });

  const faults: Array<[IdTokenFault, string, (f: ReturnType<typeof lastFailure>) => void]> = [
    ['bad-signature', 'an ID token with a bad signature', (f) => assert.equal(f.err?.errCode, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')],
    ['wrong-iss', 'an ID token from another issuer', (f) => assert.match(f.err?.cause ?? '', /"iss"/)],
    ['wrong-aud', 'an ID token for another audience', (f) => assert.match(f.err?.cause ?? '', /"aud"/)],
    ['no-nonce', 'an ID token without the nonce', (f) => assert.match(f.err?.cause ?? '', /"nonce" .*missing/)],
    ['wrong-nonce', 'an ID token with another nonce', (f) => assert.match(f.err?.cause ?? '', /"nonce"/)],
    // An hour past its exp: the IdP's clock is that far behind ours, or ours ahead (idp-clock-skew.test.ts).
    ['expired', 'an expired ID token', (f) => assert.match(f.err?.cause ?? '', /"exp"/)],
    ['alg-none', 'an unsecured ID token (alg: none)', (f) => assert.match(f.err?.cause ?? '', /"alg"/)],
    ['hs256-secret', 'an HS256 ID token keyed with the client secret', (f) => assert.match(f.err?.cause ?? '', /"alg"/)],
    ['unknown-kid', 'an ID token signed by a key the JWKS does not publish', (f) => assert.equal(f.err?.errCode, 'ERR_JWKS_NO_MATCHING_KEY')],
    ['no-id-token', 'a token response without an ID token', (f) => assert.match(f.err?.cause ?? '', /id_token/)],
    ['empty-sub', 'an ID token whose sub is the empty string', (f) => assert.match(f.err?.cause ?? '', /"sub"/)],
    // Valid JSON, not valid text: the session's indexes by sub and sid could not be written (503).
    ['lone-surrogate-sub', 'an ID token whose sub holds a lone surrogate', (f) => assert.match(f.err?.cause ?? '', /"sub" or "sid" is not valid text/)],
    ['lone-surrogate-sid', 'an ID token whose sid holds a lone surrogate', (f) => assert.match(f.err?.cause ?? '', /"sub" or "sid" is not valid text/)],
    ['non-ascii-access-token', 'an access token a header cannot carry', (f) => assert.match(f.err?.cause ?? '', /access token is not printable ASCII/)],
    ['spaced-access-token', 'an access token with a space (no Authorization header carries it as issued)', (f) => assert.match(f.err?.cause ?? '', /holds a space/)],
  ];
  for (const [fault, title, why] of faults) {
    it(`${title} is a 400 page, never a 500, and no session`, async () => {
      env.op.fault = fault;
      const r = await login();
      const clock = fault === 'expired';
      assert400Page(r, fault === 'no-id-token' ? /did not pass validation|no ID token/ : clock ? /the clocks of this server and of the identity provider disagree \(by about 72\d\d s\)/ : undefined);
      const f = lastFailure(env.lines);
      assert.equal(f.reason, clock ? 'clock' : 'validation', JSON.stringify(f));
      why(f);
    });
  }

  it('the 400 page\'s "Sign in again" starts the same sign-in again: to the page it was for', async () => {
    env.op.fault = 'wrong-nonce';
    const r = await login();
    assert400Page(r);
    assert.match(r.last.body, /<a href="\/auth\/login\?return_to=%2Fhome">Sign in again<\/a>/);
  });

  it('an ID token whose sid is the empty string signs in as one without a sid (nothing indexed under an empty sid)', async () => {
    env.op.fault = 'empty-sid';
    const r = await login();
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    const s = await env.store.get(r.sessionCookie!);
    assert.equal(s?.sub, 'mallory');
    assert.equal(s?.sid, undefined, 'no sid recorded');
    const client = redis.client();
    try {
      assert.deepEqual(await client.keys('gp:sid:*'), [], 'no index by sid');
    } finally {
      client.disconnect();
    }
  });

  it('a token endpoint that answers 500 with HTML is a 503 page (try again), not a 500', async () => {
    env.op.tokenEndpointStatus = 500;
    const r = await login();
    assert.equal(r.status, 503, r.last.body.slice(0, 200));
    assert.match(String(r.last.headers['content-type']), /text\/html/);
    assert.equal(r.sessionCookie, undefined);
  });

  it('a JWKS that cannot be fetched (after a key rotation) is a 503 page (try again), not a 400 or a 500', async () => {
    await env.op.rotateKey();
    env.op.jwksStatus = 500;
    const r = await login();
    assert.equal(r.status, 503, r.last.body.slice(0, 200));
    assert.match(String(r.last.headers['content-type']), /text\/html/);
    assert.match(r.last.body, /temporarily unavailable/);
    assert.equal(r.sessionCookie, undefined);
    env.op.jwksStatus = undefined;
    const again = await login();
    assert.equal(again.status, 302, 'works again once the JWKS is back');
  });

  it('signing-key rotation: a new kid and a new JWKS between two logins, the next login just works', async () => {
    const first = await login();
    assert.equal(first.status, 302, first.last.body.slice(0, 300));
    const oldKid = env.op.kid;
    const fetched = env.op.hits['/jwks'] ?? 0;
    await env.op.rotateKey();
    assert.notEqual(env.op.kid, oldKid);
    // Right after the previous fetch (well inside any JWKS cool-down): the new kid must be fetched.
    const second = await login();
    assert.equal(second.status, 302, second.last.body.slice(0, 300));
    assert.ok((env.op.hits['/jwks'] ?? 0) > fetched, 'the JWKS was fetched again for the new kid');
    const third = await login();
    assert.equal(third.status, 302);
  });
});

describe('a misbehaving IdP that advertises HS256 and none', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let env: Env;

  before(async () => {
    redis = await RedisServer.start();
    env = await startEnv(redis, { advertisedAlgs: ['RS256', 'HS256', 'none'] });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });

  // OIDC Core 10.1 allows HS256 ID tokens keyed with the client secret when the client registered
  // id_token_signed_response_alg=HS256. goldpath never does (the registration default is RS256), and
  // a token anyone holding the secret can mint is no proof from the IdP: only asymmetric
  // algorithms verified against the IdP's JWKS are accepted, whatever the discovery document says.
  for (const fault of ['alg-none', 'hs256-secret'] as const) {
    it(`${fault}: refused even though the discovery document lists it`, async () => {
      env.op.fault = fault;
      const r = await browserLogin({ start: `${env.url}/auth/login` });
      assert400Page(r);
      const f = lastFailure(env.lines);
      assert.equal(f.reason, 'validation');
      // Past openid-client's alg check (the IdP lists the alg): refused by our own allow-list.
      assert.equal(f.err?.errCode, 'ERR_JOSE_ALG_NOT_ALLOWED', JSON.stringify(f));
    });
  }

  it('an RS256 token from the same IdP is still accepted', async () => {
    env.op.fault = 'none';
    const r = await browserLogin({ start: `${env.url}/auth/login` });
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
  });
});
