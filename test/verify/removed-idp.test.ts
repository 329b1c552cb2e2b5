// An IdP removed from idps.yaml (and a SIGHUP) is no longer trusted: the sessions it signed in are
// refused at once by the sidecar and reported as signed out by the BFF, instead of being served
// until their tokens expire. They are not deleted: the IdP put back brings them back. The same
// for an entry kept under its name but pointed at another issuer.
import assert from 'node:assert/strict';
import request from 'supertest';
import { loadSettings } from '../../src/config/env.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { GoldpathConfig } from '../../src/config/types.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { createVerifyApp } from '../../src/verify/app.ts';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';
import { buildVerifyPolicy } from '../../src/verify/policy.ts';
import type { VerifyPolicy } from '../../src/verify/state.ts';
import { capturingLogger, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';
import { VERIFY_CONFIG_DIR, verifyEnv } from '../helpers/verify-app.ts';

/** `config` with the IdP `dev` renamed `corp`: what is left after removing dev and adding another. */
function withoutDev(config: GoldpathConfig): GoldpathConfig {
  const { dev, ...rest } = config.idps.idps;
  return { ...config, idps: { default: 'corp', idps: { ...rest, corp: { ...dev!, name: 'corp' } } } };
}

/** `config` with the IdP `dev` pointed at another issuer under the same name (README "Swap the IdP"). */
function devElsewhere(config: GoldpathConfig, issuer = 'https://another-idp.example.test'): GoldpathConfig {
  const dev = config.idps.idps['dev']!;
  return { ...config, idps: { ...config.idps, idps: { ...config.idps.idps, dev: { ...dev, issuer } } } };
}

describe('an IdP removed from idps.yaml', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: SessionStore;

  before(async () => {
    redis = await RedisServer.start();
    store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
  });
  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('the sidecar refuses its sessions at the reload (401), and serves them again once it is back', async () => {
    const env = verifyEnv(redis.url);
    const settings = loadSettings(env);
    const config = await loadConfig(VERIFY_CONFIG_DIR, env);
    const withDev = await buildVerifyPolicy(config, settings, silentLogger, new StoredTokens(store));
    const without = await buildVerifyPolicy(withoutDev(config), settings, silentLogger, new StoredTokens(store));
    let policy: VerifyPolicy = withDev;
    const app = createVerifyApp({
      settings, store, log: silentLogger, metrics: createVerifyMetrics(), policy: () => policy,
    }).callback();
    const { cookieValue } = await store.create(newSession({ idp: 'dev', roles: ['reader'] }));
    const verify = () => request(app).get('/auth/verify').set('X-Forwarded-Method', 'GET').set('X-Forwarded-Uri', '/api/orders/1')
      .set('Cookie', `${settings.cookieName}=${cookieValue}`);
    try {
      assert.equal((await verify()).status, 200);
      policy = without;
      const refused = await verify();
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, 'login_required');
      policy = withDev;
      assert.equal((await verify()).status, 200, 'not deleted');
    } finally {
      withDev.pdp.close();
      without.pdp.close();
    }
  });

  it('the same name given another issuer: the sessions of the old issuer are refused (401), its own served; back, they are back', async () => {
    const env = verifyEnv(redis.url);
    const settings = loadSettings(env);
    const config = await loadConfig(VERIFY_CONFIG_DIR, env);
    const issuer = config.idps.idps['dev']!.issuer;
    const before = await buildVerifyPolicy(config, settings, silentLogger, new StoredTokens(store));
    const swapped = await buildVerifyPolicy(devElsewhere(config), settings, silentLogger, new StoredTokens(store));
    let policy: VerifyPolicy = before;
    const app = createVerifyApp({ settings, store, log: silentLogger, metrics: createVerifyMetrics(), policy: () => policy }).callback();
    const old = await store.create(newSession({ idp: 'dev', roles: ['reader'], claims: { iss: `${issuer}/` } }));
    const fresh = await store.create(newSession({ sub: 'bob', idp: 'dev', roles: ['reader'], claims: { iss: 'https://another-idp.example.test' } }));
    const verify = (cookie: string) => request(app).get('/auth/verify').set('X-Forwarded-Method', 'GET').set('X-Forwarded-Uri', '/api/orders/1')
      .set('Cookie', `${settings.cookieName}=${cookie}`);
    try {
      assert.equal((await verify(old.cookieValue)).status, 200, 'its issuer (a trailing slash aside)');
      assert.equal((await verify(fresh.cookieValue)).status, 401, 'another issuer than dev\'s');
      policy = swapped;
      const refused = await verify(old.cookieValue);
      assert.equal(refused.status, 401, 'signed in at the issuer dev named before');
      assert.equal(refused.body.error, 'login_required');
      assert.equal((await verify(fresh.cookieValue)).status, 200, 'signed in at the issuer dev names now');
      policy = before;
      assert.equal((await verify(old.cookieValue)).status, 200, 'not deleted');
    } finally {
      before.pdp.close();
      swapped.pdp.close();
    }
  });

  describe('the BFF', () => {
    let env: IdpBff;
    const captured = capturingLogger();
    before(async () => {
      // `elsewhere` is only the other issuer `dev` is pointed at: a reload discovers it, so it answers.
      env = await startIdpBff({ redis, log: captured.log, idps: [{ name: 'dev' }, { name: 'elsewhere' }] });
    });
    after(() => env?.close());

    it('/auth/session says signed out after the reload', async () => {
      const { jar } = await env.login('alice');
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 200);
      await env.bff.reload(withoutDev(env.config));
      const after = await httpCall(`${env.url}/auth/session`, { jar });
      assert.equal(after.status, 401);
      assert.equal(JSON.parse(after.body).authenticated, false);
    });

    it('/auth/session says signed out when the IdP\'s entry names another issuer', async () => {
      await env.bff.reload(env.config);
      const { jar } = await env.login('alice');
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 200);
      await env.bff.reload(devElsewhere(env.config, env.idps['elsewhere']!.issuer));
      const after = await httpCall(`${env.url}/auth/session`, { jar });
      assert.equal(after.status, 401);
      await env.bff.reload(env.config);
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 200, 'back with its issuer');
    });

    it('a logout of a session of the issuer the entry named before sends nothing to the one it names now', async () => {
      await env.bff.reload(env.config);
      const { jar } = await env.login('alice');
      const csrf = (JSON.parse((await httpCall(`${env.url}/auth/session`, { jar })).body) as { csrf_token: string }).csrf_token;
      await env.bff.reload(devElsewhere(env.config, env.idps['elsewhere']!.issuer));
      const before = captured.lines.length;
      const out = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar, headers: { 'x-csrf-token': csrf, accept: 'application/json' } });
      assert.equal(out.status, 200, out.body);
      const url = (JSON.parse(out.body) as { logout_url: string }).logout_url;
      assert.ok(!url.startsWith(env.idps['elsewhere']!.issuer), `no end-session URL at the other IdP: ${url}`);
      assert.doesNotMatch(url, /id_token_hint/, 'no ID token in it');
      const lines = captured.lines.slice(before).join('\n');
      assert.doesNotMatch(lines, /revocation/, 'the refresh token was not sent to the other IdP');
      assert.match(lines, /"msg":"logout"/, 'the session was ended');
      await env.bff.reload(env.config);
      assert.equal((await httpCall(`${env.url}/auth/session`, { jar })).status, 401, 'deleted');
    });
  });
});
