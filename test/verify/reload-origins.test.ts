// cors.allowed_origins is part of what a SIGHUP reload swaps at once: the CSRF check (step 5) and
// the preflight (step 3) trust the new list from the reload on, and a broken list is refused with
// the rest of the files, the old one serving on.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';
import { send, verifyEnv, VERIFY_CONFIG_DIR } from '../helpers/verify-app.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import type { SessionStore } from '../../src/session/types.ts';

describe('verify: a reload of cors.allowed_origins', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: SessionStore;
  let verify: VerifyProcess;
  let dir: string;

  before(async function () {
    redis = await RedisServer.start();
    dir = mkdtempSync(join(tmpdir(), 'goldpath-reload-origins-'));
    cpSync(VERIFY_CONFIG_DIR, dir, { recursive: true });
    const env = { ...verifyEnv(redis.url), GOLDPATH_CONFIG_DIR: dir, PORT: '0', HOST: '127.0.0.1' };
    store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
    verify = await startVerify({ env, log: silentLogger, tokens: async () => new StoredTokens(store), port: 0, host: '127.0.0.1', sessionCache: false });
  });
  after(async function () {
    await verify?.close();
    await store?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('trusts the new list from the reload on; a broken one is refused and the old list serves on', async function () {
    const { cookieValue } = await store.create(newSession({ sub: 'ro', roles: ['admin', 'reader'], csrf: 'tok' }));
    const SPA = 'http://localhost:5174';
    const write = () => send(verify.port, '/auth/verify', {
      'X-Forwarded-Method': 'POST', 'X-Forwarded-Uri': '/api/orders/1', Cookie: `goldpath=${cookieValue}`,
      'X-CSRF-Token': 'tok', Origin: SPA, 'Sec-Fetch-Site': 'same-site',
    });
    const preflight = () => send(verify.port, '/auth/verify', {
      'X-Forwarded-Method': 'OPTIONS', 'X-Forwarded-Uri': '/api/orders/1', Origin: SPA, 'Access-Control-Request-Method': 'POST',
    });
    const routes = join(dir, 'routes.yaml');
    const original = readFileSync(routes, 'utf8');
    assert.equal((await write()).status, 403);
    assert.equal((await preflight()).status, 403);

    writeFileSync(routes, original.replace('allowed_origins: [http://localhost:5173]', `allowed_origins: [http://localhost:5173, '${SPA}/']`));
    assert.equal(await verify.reload(), true);
    assert.equal((await write()).status, 200, 'allowed once reloaded (written with a trailing /, compared as the origin)');
    assert.equal((await preflight()).status, 200);

    // A broken list (a wildcard) keeps the previous one, which allows the SPA.
    writeFileSync(routes, original.replace('allowed_origins: [http://localhost:5173]', 'allowed_origins: ["http://*.localhost"]'));
    assert.equal(await verify.reload(), false);
    assert.equal((await write()).status, 200);

    writeFileSync(routes, original);
    assert.equal(await verify.reload(), true);
    assert.equal((await write()).status, 403, 'refused again once the origin is gone');
    assert.equal((await preflight()).status, 403);
  });
});
