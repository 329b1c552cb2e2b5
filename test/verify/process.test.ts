// The sidecar as users run it: `goldpath verify` as a process, under Node and under Deno 2,
// against a real redis-server; plus SIGHUP reload (atomic, broken config rejected).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Runtime } from '../helpers/process.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { verifyRequest } from '../bench/load.ts';
import { createSessions, driveAll } from '../bench/scenarios.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import type { SessionStore } from '../../src/session/types.ts';

for (const runtime of ['node', 'deno'] as Runtime[]) {
  describe(`verify process under ${runtime}`, function () {
    this.timeout(60_000);
    let redis: RedisServer;
    let store: SessionStore;
    let dir: string;
    let port: number;
    let child: ReturnType<typeof runCli>;
    let env: Record<string, string>;

    before(async function () {
      redis = await RedisServer.start();
      dir = mkdtempSync(join(tmpdir(), 'goldpath-verify-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      // An IdP that refuses every connection (a closed local port, no DNS): only a refresh asks it.
      const idps = join(dir, 'idps.yaml');
      writeFileSync(idps, readFileSync(idps, 'utf8').replace('issuer: https://idp.example.test', `issuer: http://127.0.0.1:${await freePort()}\n    dangerously_allow_insecure_http: true`));
      port = await freePort();
      env = {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
        GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 's3cret', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
      };
      // The fixture's store (the BFF's part: it writes the sessions), not the one under test: thousands
      // of creates in flight on a loaded machine outlast the production 500 ms command timeout.
      store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger, commandTimeoutMs: 5_000 });
      child = runCli(runtime, ['verify'], env);
      await waitHealthy(`http://127.0.0.1:${port}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
    });
    after(async function () {
      await child?.stop();
      await store?.close();
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function verify(cookie: string, uri = '/api/orders/1') {
      return fetch(`http://127.0.0.1:${port}/auth/verify`, {
        headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http', Cookie: cookie },
      });
    }

    it('answers /auth/verify: 200 with the token for a session, 401 without, 400 for a confusing URI', async function () {
      const { cookieValue, session } = await store.create(newSession({ sub: `${runtime}-user` }));
      const cookie = `goldpath=${cookieValue}`;
      const ok = await verify(cookie);
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('authorization'), `Bearer ${session.secrets.tokens['']!.value}`);
      assert.equal(ok.headers.get('x-auth-user'), `${runtime}-user`);
      assert.equal((await verify('')).status, 401);
      assert.equal((await verify(cookie, '/api/orders/%2e%2e/x')).status, 400);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    });

    it('an IdP that cannot refresh an expired token is a 503, not counted as a store error; one not yet expired is still sent', async function () {
      const storeErrors = async () => Number(/^goldpath_store_errors_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]);
      const soon = Date.now() + 10_000; // within the 30 s refresh window
      const unexpired = await store.create(newSession({ sub: 'refresh', tokens: { '': { value: 'at-old', type: 'Bearer', expiresAt: soon, scope: 'openid' } } }));
      const before = await storeErrors();
      const kept = await verify(`goldpath=${unexpired.cookieValue}`);
      assert.equal(kept.status, 200);
      assert.equal(kept.headers.get('authorization'), 'Bearer at-old');
      const { cookieValue } = await store.create(newSession({ sub: 'refresh', tokens: { '': { value: 'at-old', type: 'Bearer', expiresAt: Date.now() - 1000, scope: 'openid' } } }));
      const res = await verify(`goldpath=${cookieValue}`);
      assert.equal(res.status, 503);
      assert.equal((await res.json() as { error: string }).error, 'unavailable');
      assert.equal(await storeErrors(), before, 'the IdP\'s failure is not the store\'s');
      assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /^goldpath_token_refreshes_total\{outcome="error"\} [1-9]/m);
    });

    it('reloads policies on SIGHUP, and keeps serving the old ones when the new ones are broken', async function () {
      const { cookieValue } = await store.create(newSession({ sub: 'hup', roles: ['reader'] }));
      const cookie = `goldpath=${cookieValue}`;
      assert.equal((await verify(cookie)).status, 200);
      const policyFile = join(dir, 'policy.polar');
      const original = readFileSync(policyFile, 'utf8');
      // Readers lose read access.
      writeFileSync(policyFile, original.replace('if "reader" in user.roles;\nallow(user: User, "write"', 'if "nobody" in user.roles;\nallow(user: User, "write"'));
      child.proc.kill('SIGHUP');
      await eventually(async () => assert.equal((await verify(cookie)).status, 403));
      // A broken policy is rejected; the previous (denying) one keeps serving.
      writeFileSync(policyFile, 'allow(this is not polar');
      child.proc.kill('SIGHUP');
      await eventually(() => assert.match(child.output(), /reload rejected/));
      assert.equal((await verify(cookie)).status, 403);
      assert.equal(child.proc.exitCode, null);
      writeFileSync(policyFile, original);
      child.proc.kill('SIGHUP');
      await eventually(async () => assert.equal((await verify(cookie)).status, 200));
    });

    it('keeps its young generation at its starting size while it caches thousands of sessions', async function () {
      // src/verify/process-tuning.ts (under Deno, compose/Dockerfile.deno's --v8-flags, which
      // runCli gives it): untuned, V8 grows the nursery to 32 MB under this load
      // (Deno's to 55 MB).
      // At start it is V8's first size, 1 MB a semi-space (2 MB in all), under plain node too: the
      // CLI applies the tuning before it loads the sidecar's modules, whose loading grew it to 4
      // or 8 MB when the tuning came as their first import (8, 8, 4, 4, 4, 4, 8, 4 MB in eight
      // processes on 2026-11-30). Deno's flags cap a semi-space at 2 MB.
      const young = async () => Number(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)/m
        .exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]);
      const started = await young();
      assert.ok(started <= (runtime === 'node' ? 2 : 4) * 2 ** 20, `new space ${started} bytes at start`);
      const cookies = await createSessions(store, 3000, (i) => ({ sub: `young-${i}` }));
      const requests = cookies.map((c) => verifyRequest('/api/orders/1', { Cookie: `goldpath=${c}` }));
      const sent = await driveAll(port, requests, { times: 3, connections: 16, maxRuns: 20 });
      assert.ok(sent >= 3 * requests.length, `every session used at least three times (${sent} requests)`);
      const loaded = await young();
      assert.ok(loaded <= (runtime === 'node' ? 2 : 4) * 2 ** 20, `new space grew under load: ${started} → ${loaded} bytes`);
    });

    it('never logs a cookie value or a token', async function () {
      const { cookieValue, session } = await store.create(newSession({ sub: 'quiet' }));
      await verify(`goldpath=${cookieValue}`);
      await verify(`goldpath=${cookieValue}`, '/api/boom');
      const out = child.output();
      assert.ok(!out.includes(cookieValue));
      assert.ok(!out.includes(session.secrets.tokens['']!.value));
    });
  });
}

async function eventually(fn: () => unknown | Promise<unknown>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
