// A back-channel logout that arrives while the IdP's key set cannot be had (its jwks_uri answers a
// 5xx, an HTML maintenance page, or JSON that is no key set) is the BFF's outage, not a bad token:
// 503, the session kept, and the IdP's retry with the same token ends it. A 400 said "invalid
// token" (logged and counted so) and the session outlived the IdP's logout. The key set is fetched
// again whenever the cached one is older than 10 minutes, so this is any logout after a quiet spell.
// goldpath_logouts_total counts it as outcome "unavailable".
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';

/** What the IdP's jwks_uri answers while it is "down". */
const BROKEN: Record<string, () => Response> = {
  '503': () => new Response('upstream unavailable', { status: 503 }),
  'an HTML page': () => new Response('<html>maintenance</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
  'JSON that is no key set': () => new Response('{"error":"maintenance"}', { status: 200, headers: { 'content-type': 'application/json' } }),
};

describe('BFF back-channel logout while the IdP key set cannot be fetched', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let key: JWK;
  let broken: (() => Response) | undefined;
  const fetch: FetchLike = async (url, init) => {
    if (broken && String(url).includes('/jwks')) return broken();
    return globalThis.fetch(url, init as RequestInit);
  };

  before(async () => {
    redis = await RedisServer.start();
    key = await generateSigningKey();
  });
  after(() => redis?.stop());
  // A BFF of its own per case: one that has not fetched the key set yet (a replica that verified
  // nothing so far; or any, once its copy is 10 minutes old).
  beforeEach(async () => {
    env = await startIdpBff({ redis, fetch, idps: [{ devIdp: { keys: [key] } }] });
  });
  afterEach(() => env?.close());

  const post = (token: string) => httpCall(`${env.url}/auth/backchannel-logout`, {
    method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });

  for (const [what, answer] of Object.entries(BROKEN)) {
    it(`jwks_uri answers ${what}: 503, the session kept; the IdP's retry ends it`, async () => {
      const { session } = await env.store.create(newSession({ sub: `bcl-${what}`, sid: `sid-${what}` }));
      const token = await logoutToken(env.idp.issuer, key, { sid: session.sid });
      broken = answer;
      try {
        const first = await post(token);
        assert.equal(first.status, 503, first.body);
        assert.ok(await env.store.getById(session.id), 'not deleted: the token was never checked');
        // Counted as a logout that did not happen, not as an invalid token, nor missed.
        const metrics = (await httpCall(`${env.url}/metrics`)).body;
        assert.match(metrics, /^goldpath_logouts_total\{kind="backchannel",outcome="unavailable"\} 1$/m);
        assert.match(metrics, /^goldpath_logouts_total\{kind="backchannel",outcome="invalid"\} 0$/m);
      } finally {
        broken = undefined;
      }
      const retry = await post(token);
      assert.equal(retry.status, 200, retry.body);
      assert.equal(await env.store.getById(session.id), null);
    });
  }
});
