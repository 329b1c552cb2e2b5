// A sidecar that is told to stop (SIGTERM: docker compose down, a rolling update) lets
// the requests it has already accepted finish, under Node and Deno, instead of cutting them off
// (Traefik turns a cut forwardAuth connection into a 500 for the user).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisServer, adminClient, freePort } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Runtime } from '../helpers/process.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';

function get(port: number, headers: Record<string, string>): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/auth/verify', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode! }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

for (const runtime of ['node', 'deno'] as Runtime[]) {
  describe(`verify under ${runtime} drains accepted requests on SIGTERM`, function () {
    this.timeout(60_000);
    let redis: RedisServer;
    let dir: string;

    before(async () => {
      redis = await RedisServer.start();
      dir = mkdtempSync(join(tmpdir(), 'goldpath-revc-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      const idps = join(dir, 'idps.yaml');
      writeFileSync(idps, readFileSync(idps, 'utf8').replace('issuer: https://idp.example.test', `issuer: http://127.0.0.1:${await freePort()}\n    dangerously_allow_insecure_http: true`));
    });
    after(async () => {
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('a request in flight when SIGTERM arrives still gets its answer', async () => {
      const port = await freePort();
      const env = {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
        GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 's3cret', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      };
      const store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
      const { cookieValue } = await store.create(newSession({ sub: 'drain' }));
      await store.close();
      const child = runCli(runtime, ['verify'], env);
      try {
        await waitHealthy(`http://127.0.0.1:${port}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
        // Redis holds every command for 250 ms (under the store's 500 ms command timeout), so the
        // session lookup is in flight when the process is told to stop.
        const admin = adminClient(redis.url);
        await admin.call('CLIENT', 'PAUSE', '250', 'ALL');
        admin.disconnect();
        const pending = get(port, {
          'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/orders/1', 'x-forwarded-host': 'localhost:8080',
          'x-forwarded-proto': 'http', cookie: `goldpath=${cookieValue}`,
        });
        await new Promise((r) => setTimeout(r, 100));
        child.proc.kill('SIGTERM');
        const answer = await pending;
        assert.deepEqual(answer, { status: 200 }, `the in-flight request was cut off (${child.output().slice(-500)})`);
        await new Promise<void>((r) => (child.proc.exitCode !== null ? r() : child.proc.once('exit', () => r())));
        assert.equal(child.proc.exitCode, 0);
      } finally {
        await child.stop();
      }
    });
  });
}
