// SPEC 5.8: for DPoP the sidecar hands the upstream a proof "for the upstream URL". The token
// step passed the provider the *decoded* canonical path: for a path with an encoded '?', '#' or
// '%' the proof's htu (RFC 9449 4.2: the request URI without query and fragment) named another
// URL than the one the upstream receives, e.g. /api/orders/a for /api/orders/a%3Fb.
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { RedisServer } from '../helpers/redis.ts';
import { startVerifyApp, PUBLIC_URL, type RunningVerify } from '../helpers/verify-app.ts';
import { newDpopJwk, dpopProof } from '../../src/oidc/dpop.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { verifyEnv } from '../helpers/verify-app.ts';
import type { TokenProvider } from '../../src/oidc/types.ts';
import type { SessionStore } from '../../src/session/types.ts';

describe('verify: the DPoP proof is for the URL the upstream receives', function () {
  let redis: RedisServer;
  let store: SessionStore;
  let app: RunningVerify;

  before(async function () {
    redis = await RedisServer.start();
    store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
    const jwk = await newDpopJwk();
    // The provider's DPoP answer, as src/oidc/token-provider.ts makes it, for whatever URL it is given.
    const tokens: TokenProvider = {
      async credentials(session, audience, method, upstreamUrl) {
        const t = session.secrets.tokens[audience]!;
        return { authorization: `DPoP ${t.value}`, dpop: await dpopProof(jwk, method, upstreamUrl, t.value) };
      },
    };
    app = await startVerifyApp(store, redis.url, { tokens });
  });
  after(async function () {
    await app?.close();
    await store?.close();
    await redis?.stop();
  });

  for (const [uri, htu] of [
    ['/api/orders/1?x=1', '/api/orders/1'],
    ['/api/orders/caf%C3%A9', '/api/orders/caf%C3%A9'],
    ['/api/orders/a%3Fb', '/api/orders/a%3Fb'],
    ['/api/orders/a%23b', '/api/orders/a%23b'],
    ['/api/orders/100%25', '/api/orders/100%25'],
  ]) {
    it(`${uri}: htu ${htu}`, async function () {
      const { cookie } = await app.login({ sub: 'dpop-user' });
      const res = await app.verify('GET', uri!, { Cookie: cookie });
      assert.equal(res.status, 200, res.body);
      const proof = res.headers['dpop'] as string;
      assert.equal(decodeJwt(proof)['htu'], `${PUBLIC_URL}${htu}`);
    });
  }
});
