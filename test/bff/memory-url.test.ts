// `goldpath bff` on its own refuses REDIS_URL=memory:// as `goldpath verify` does (SPEC 2:
// memory:// is "only valid when everything runs in one process"). A BFF that stored its sessions in
// its own memory would sign users in that no verify sidecar can ever see: every API call a 401.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, type Runtime } from '../helpers/process.ts';

for (const runtime of ['node'] as Runtime[]) {
  describe(`goldpath bff with REDIS_URL=memory:// under ${runtime}`, function () {
    this.timeout(30_000);

    it('exits non-zero naming REDIS_URL instead of starting', async function () {
      const port = await freePort();
      const child = runCli(runtime, ['bff'], {
        GOLDPATH_CONFIG_DIR: join(REPO_ROOT, 'test/verify/fixtures/config'), REDIS_URL: 'memory://',
        GOLDPATH_PUBLIC_URL: 'http://localhost:8080', GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'),
        TEST_CLIENT_SECRET: 's3cret', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
      });
      try {
        const code = await new Promise<number | null | 'listening'>((resolve) => {
          child.proc.once('exit', (c) => resolve(c));
          const poll = setInterval(async () => {
            const up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
            if (up) {
              clearInterval(poll);
              resolve('listening');
            }
          }, 100);
          child.proc.once('exit', () => clearInterval(poll));
        });
        assert.notEqual(code, 'listening', `goldpath bff started with memory://:\n${child.output()}`);
        assert.equal(code, 1);
        assert.match(child.output(), /REDIS_URL/);
      } finally {
        await child.stop();
      }
    });
  });
}
