// A SIGHUP reload must not turn the requests already in the chain into denials: a request takes
// its policy at step 1 and asks it at step 7, after the session lookup and the token step (a
// Redis round trip, maybe an IdP refresh). startVerify's reload freed the old policy engine at
// once, so such a request's decision was an engine "error": 403 for an allowed user.
import assert from 'node:assert/strict';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { send, verifyEnv } from '../helpers/verify-app.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import type { TokenProvider } from '../../src/oidc/types.ts';
import type { SessionStore } from '../../src/session/types.ts';

/** GET `uri` through the sidecar on `port` with the session cookie `cookie`. */
const ask = (port: number, uri: string, cookie: string) => send(port, '/auth/verify', {
  'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Proto': 'http',
  'X-Forwarded-Host': 'localhost:8080', Cookie: `goldpath=${cookie}`,
});

describe('verify: a reload while requests are in the chain', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: SessionStore;
  let verify: VerifyProcess;
  // The token step waits here until the test lets it go.
  let entered: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();

  before(async function () {
    redis = await RedisServer.start();
    const env = { ...verifyEnv(redis.url), PORT: '0', HOST: '127.0.0.1' };
    store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
    const tokens: TokenProvider = {
      async credentials(session, audience) {
        entered();
        await gate;
        const t = session.secrets.tokens[audience]!;
        return { authorization: `Bearer ${t.value}`, dpop: undefined };
      },
    };
    verify = await startVerify({ env, log: silentLogger, tokens: async () => tokens, port: 0, host: '127.0.0.1', sessionCache: false });
  });
  after(async function () {
    await verify?.close();
    await store?.close();
    await redis?.stop();
  });

  it('a request uses the token provider of the config it matched its route in, however a reload falls', async function () {
    // A reload between the route match (step 2) and the token step (6) gave a request the old
    // routes.yaml with the new idps.yaml: a route's audience the new IdP config lacks was a 500.
    // Each provider here is the one a config version built; the lookup is held while a reload lands.
    const used: number[] = [];
    let built = 0;
    let held: Promise<void> | undefined;
    let lookedUp: () => void = () => {};
    const gated = new Proxy(store, {
      get(target, key) {
        const v = Reflect.get(target, key) as unknown;
        if (key !== 'get' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return async (cookie: string) => {
          lookedUp();
          if (held) await held;
          return target.get(cookie);
        };
      },
    });
    const env = { ...verifyEnv(redis.url), PORT: '0', HOST: '127.0.0.1' };
    const proc = await startVerify({
      env, log: silentLogger, port: 0, host: '127.0.0.1', store: gated,
      tokens: async () => {
        const version = ++built;
        return {
          async credentials(session, audience) {
            used.push(version);
            return { authorization: `Bearer ${session.secrets.tokens[audience]!.value}`, dpop: undefined };
          },
        };
      },
    });
    try {
      const { cookieValue } = await store.create(newSession({ sub: 'reload-user-2', roles: ['reader'] }));
      let release!: () => void;
      held = new Promise((r) => (release = r));
      const inLookup = new Promise<void>((r) => (lookedUp = r));
      const pending = ask(proc.port, '/api/orders/1', cookieValue);
      await inLookup; // route matched with config 1's routes.yaml
      assert.equal(await proc.reload(), true); // config 2 (and its token provider) from now on
      release();
      const res = await pending;
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(used, [1], 'the token provider of the config the route was matched in');
      held = undefined;
      const after = await ask(proc.port, '/api/orders/1', cookieValue);
      assert.equal(after.status, 200, after.body);
      assert.deepEqual(used, [1, 2], 'a request after the reload: the new one');
    } finally {
      await proc.close();
    }
  });

  it('a request that started before the reload is answered as the policy says (200), not 403', async function () {
    const { cookieValue } = await store.create(newSession({ sub: 'reload-user', roles: ['reader'] }));
    let release!: () => void;
    gate = new Promise((r) => (release = r));
    const inToken = new Promise<void>((r) => (entered = r));
    const pending = ask(verify.port, '/api/orders/1', cookieValue);
    await inToken; // the request holds the old policy and waits in step 6
    assert.equal(await verify.reload(), true);
    release();
    const res = await pending;
    assert.equal(res.status, 200, res.body);
    // And after the reload, the new policy answers the same.
    gate = Promise.resolve();
    const again = await ask(verify.port, '/api/orders/2', cookieValue);
    assert.equal(again.status, 200, again.body);
  });
});
