// SPEC 9 / README "Operations": while a dependency is away, its failures are logged one line a
// second (with `alsoFailed`), not one a request. The session store's 503s are (error-handler.ts);
// an IdP that is away, met by every request whose access token needs a refresh, must be too: each
// such request used to log its own `IdP discovery failed` or `token refresh failed` warning, so a
// burst of users with expiring tokens during an IdP outage flooded the log pipeline.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { devIdpsYaml } from '../helpers/idp-bff.ts';
import { verifyEnv } from '../helpers/verify-app.ts';
import { spawnVerify, type VerifyChild } from '../helpers/verify-process.ts';
import { closeServer } from '../helpers/close-server.ts';

interface Line { level: string; msg: string; idp?: string; alsoFailed?: number }

for (const runtime of ['node', 'deno'] as const) {
  describe(`verify process under ${runtime}: an IdP outage is logged one line a second, not one a request`, function () {
    this.timeout(90_000);
    let redis: RedisServer;
    let store: SessionStore;
    let dir: string;
    let idp: Server | undefined;
    let tokenCalls = 0;
    let sidecar: VerifyChild | undefined;

    before(async () => {
      redis = await RedisServer.start();
      store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
    });
    afterEach(async () => {
      await sidecar?.stop();
      if (idp) await closeServer(idp);
      sidecar = idp = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    after(async () => {
      await store?.close();
      await redis?.stop();
    });

    async function startWithIssuer(issuer: string): Promise<VerifyChild> {
      dir = mkdtempSync(join(tmpdir(), 'goldpath-outage-logs-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(issuer));
      return spawnVerify(runtime, redis.url, { GOLDPATH_CONFIG_DIR: dir, LOG_LEVEL: 'info' });
    }

    /** `n` users whose login token expired, each asking once, as fast as they can. */
    async function burst(s: VerifyChild, n: number): Promise<{ lines: Line[]; seconds: number }> {
      const cookies = [];
      for (let i = 0; i < n; i++) {
        const { cookieValue } = await store.create(newSession({ sub: `u${i}`, tokens: { '': { value: `at-${i}`, type: 'Bearer', expiresAt: Date.now() - 1000, scope: 'openid' } } }));
        cookies.push(cookieValue);
      }
      const from = s.child.output().length;
      const start = Date.now();
      for (const c of cookies) { const r = await s.verify(c); assert.equal(r.status, 503, `the IdP is away: 503 (${r.body}) ${s.child.output().slice(-1500)}`); }
      const seconds = (Date.now() - start) / 1000;
      await new Promise((r) => setTimeout(r, 1_500)); // the last second's summary, and pino's asynchronous writes
      const lines = s.child.output().slice(from).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
      return { lines, seconds };
    }

    function assertFewLines(lines: Line[], seconds: number, n: number): void {
      const loud = lines.filter((l) => l.level === 'warn' || l.level === 'error');
      // Per message: one line per started second of the burst, plus one.
      const bound = Math.ceil(seconds) + 1;
      const byMsg = new Map<string, number>();
      for (const l of loud) byMsg.set(l.msg, (byMsg.get(l.msg) ?? 0) + 1);
      for (const [msg, count] of byMsg) {
        assert.ok(count <= bound, `${n} requests in ${seconds.toFixed(2)} s logged ${count} lines ${JSON.stringify(msg)} (at most ${bound} expected):\n${loud.map((l) => JSON.stringify(l)).join('\n')}`);
      }
      assert.ok(loud.length > 0, 'the outage is logged at all');
      // And nothing is lost: each line stands for itself and `alsoFailed` more, n in all.
      for (const msg of byMsg.keys()) {
        const total = loud.filter((l) => l.msg === msg).reduce((t, l) => t + 1 + (l.alsoFailed ?? 0), 0);
        assert.equal(total, n, `${JSON.stringify(msg)} accounts for every one of the ${n} failures`);
      }
      assert.ok(loud.some((l) => l.idp === 'dev' || /"dev"/.test(l.msg) || JSON.stringify(l).includes('IdP \\"dev\\"')), 'a line names the IdP');
    }

    it('an IdP that cannot be reached for discovery', async () => {
      const closed = await freePort();
      sidecar = await startWithIssuer(`http://127.0.0.1:${closed}`);
      const { lines, seconds } = await burst(sidecar, 40);
      assertFewLines(lines, seconds, 40);
    });

    it('an IdP whose token endpoint fails', async () => {
      // Discovery answers; the token endpoint is down behind its load balancer (503).
      let issuer = '';
      idp = createServer((req, res) => {
        if (req.url === '/.well-known/openid-configuration') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'] }));
          return;
        }
        if (req.url === '/token') tokenCalls++;
        res.statusCode = 503;
        res.setHeader('content-type', 'text/html');
        res.end('<h1>Service Unavailable</h1>');
      });
      await new Promise<void>((resolve) => idp!.listen(0, '127.0.0.1', () => resolve()));
      issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
      sidecar = await startWithIssuer(issuer);
      const { lines, seconds } = await burst(sidecar, 40);
      assert.ok(tokenCalls > 0, 'the refreshes reached the token endpoint');
      assertFewLines(lines, seconds, 40);
    });
  });
}
