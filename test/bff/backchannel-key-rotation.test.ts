// A back-channel logout signed with a key the IdP rotated in moments after the BFF fetched its key
// set. jose waits 10 s between fetches for an unknown kid: such a logout token was refused as
// invalid (400), an IdP does not retry a 400, and the session outlived the IdP's logout. The BFF
// now fetches the set again for an unknown kid, at most once a second (anyone can post a logout
// token naming any kid: the bound is what forged ones can make us ask of the IdP).
import assert from 'node:assert/strict';
import { exportJWK, importJWK, type JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';

async function publicJwk(key: JWK): Promise<JWK> {
  const pub = await exportJWK(await importJWK({ ...key, d: undefined, p: undefined, q: undefined, dp: undefined, dq: undefined, qi: undefined }, 'RS256'));
  return { ...pub, alg: key.alg, use: 'sig', kid: key.kid };
}

describe('BFF back-channel logout signed with a key rotated in since the key set was fetched', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let oldKey: JWK;
  let newKey: JWK;
  /** What the IdP's jwks_uri publishes once it has rotated (undefined: the dev IdP's own set). */
  let published: JWK[] | undefined;
  let jwksFetches = 0;
  /** The jwks_uri answers 503. */
  let down = false;
  const fetch: FetchLike = async (url, init) => {
    if (String(url).includes('/jwks')) {
      jwksFetches++;
      if (down) return new Response('unavailable', { status: 503 });
      if (published) return Response.json({ keys: published });
    }
    return globalThis.fetch(url, init as RequestInit);
  };

  before(async () => {
    redis = await RedisServer.start();
    [oldKey, newKey] = [await generateSigningKey(), await generateSigningKey()];
  });
  after(() => redis?.stop());
  beforeEach(async () => {
    published = undefined;
    down = false;
    jwksFetches = 0;
    env = await startIdpBff({ redis, fetch, idps: [{ devIdp: { keys: [oldKey] } }] });
  });
  afterEach(() => env?.close());

  const post = (token: string) => httpCall(`${env.url}/auth/backchannel-logout`, {
    method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  const sessionWithSid = async (sid: string) => (await env.store.create(newSession({ sub: `u-${sid}`, sid }))).session;

  it('a token signed with the new key right after a fetch: 200 and the session gone', async () => {
    const first = await sessionWithSid('before-rotation');
    assert.equal((await post(await logoutToken(env.idp.issuer, oldKey, { sid: first.sid }))).status, 200);
    assert.equal(jwksFetches, 1);
    // The IdP rotates at once: the next logout comes well within jose's 10 s cool-down.
    published = [await publicJwk(oldKey), await publicJwk(newKey)];
    const second = await sessionWithSid('after-rotation');
    const res = await post(await logoutToken(env.idp.issuer, newKey, { sid: second.sid }));
    assert.equal(res.status, 200, res.body);
    assert.equal(await env.store.getById(second.id), null, 'the logout ended the session');
    assert.equal(jwksFetches, 2);
  });

  it('tokens naming keys nobody publishes: 400 each, the set fetched at most once a second however many', async () => {
    const victim = await sessionWithSid('victim');
    // A first fetch, so that the cool-downs run.
    assert.equal((await post(await logoutToken(env.idp.issuer, oldKey, { sid: 'nobody' }))).status, 200);
    const forger = await generateSigningKey();
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 20 }, async () =>
      (await post(await logoutToken(env.idp.issuer, forger, { sid: victim.sid }))).status));
    for (let i = 0; i < 10; i++) answers.push((await post(await logoutToken(env.idp.issuer, forger, { sid: victim.sid }))).status);
    const seconds = (performance.now() - started) / 1000;
    assert.deepEqual(new Set(answers), new Set([400]));
    assert.ok(await env.store.getById(victim.id), 'forged tokens end nothing');
    // The first fetch, then at most one per second begun (jose's own, at most once per 10 s, besides).
    assert.ok(jwksFetches <= 1 + Math.ceil(seconds) + 1, `${jwksFetches} key set fetches in ${seconds.toFixed(2)} s`);
  });

  it('the set cannot be fetched when a token names an unknown key: 503 (the IdP retries), the session kept', async () => {
    const victim = await sessionWithSid('outage');
    assert.equal((await post(await logoutToken(env.idp.issuer, oldKey, { sid: 'nobody' }))).status, 200);
    down = true;
    const res = await post(await logoutToken(env.idp.issuer, newKey, { sid: victim.sid }));
    assert.equal(res.status, 503, res.body);
    assert.ok(await env.store.getById(victim.id), 'not deleted: the token was never checked');
  });
});
