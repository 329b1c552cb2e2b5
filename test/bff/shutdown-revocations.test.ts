// `goldpath bff` told to stop (SIGTERM) while it revokes, in the background, the refresh token of a
// sign-in that failed after its code was redeemed: the process waits for the revocation (a slow
// IdP's too) before it exits, so the IdP keeps no live grant nobody holds; one that never answers
// holds the shutdown no longer than its bound, and the line that says so names how many were dropped.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startDevIdp, devIdpClientFor, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { BACKGROUND_DRAIN_MS } from '../../src/oidc/background.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { REPO_ROOT, exitOf, runCli, waitHealthy, type Child, type Runtime } from '../helpers/process.ts';
import { browserLogin } from '../helpers/login.ts';
import { devIdpsYaml, TEST_CLIENT_SECRET } from '../helpers/idp-bff.ts';
import { grantsRefresh, sleep } from '../helpers/refresh-race.ts';
import { closeServer } from '../helpers/close-server.ts';

/**
 * An HTTP proxy in front of the dev IdP (whose issuer is the proxy's URL) that holds revocation
 * requests: `revocationDelayMs` long, then on to the IdP unless the client has gone meanwhile (it
 * never reached the IdP); Infinity holds them for good. It notes the refresh tokens the IdP issues.
 */
class SlowRevocationProxy {
  revocationDelayMs = 0;
  /** Revocations the IdP answered, and the time (performance.now()) the last answer was passed on. */
  revoked = 0;
  revokedAt = 0;
  readonly refreshTokens: string[] = [];
  readonly #server: Server;
  #upstream = 0;

  constructor() {
    this.#server = createServer((req, res) => void this.#forward(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  to(idp: DevIdp): void {
    this.#upstream = Number(new URL(idp.url).port);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const revocation = req.url === '/token/revocation';
    if (revocation) {
      let gone = false;
      req.socket.once('close', () => { gone = true; });
      if (this.revocationDelayMs === Infinity) return;
      await sleep(this.revocationDelayMs);
      if (gone) return; // as a request lost with the process that sent it
    }
    const up = request({ host: '127.0.0.1', port: this.#upstream, method: req.method, path: req.url, headers: req.headers }, (ures) => {
      const body: Buffer[] = [];
      ures.on('data', (c: Buffer) => body.push(c));
      ures.on('end', () => {
        const text = Buffer.concat(body).toString('utf8');
        if (req.url === '/token' && ures.statusCode === 200) {
          const rt = (JSON.parse(text) as Record<string, unknown>)['refresh_token'];
          if (typeof rt === 'string') this.refreshTokens.push(rt);
        }
        res.writeHead(ures.statusCode!, ures.headers);
        res.end(text, () => {
          if (revocation && ures.statusCode === 200) {
            this.revoked++;
            this.revokedAt = performance.now();
          }
        });
      });
    });
    up.on('error', () => res.destroy());
    up.end(Buffer.concat(chunks));
  }
}

for (const runtime of ['node', 'deno'] as Runtime[]) {
  describe(`bff process under ${runtime}: background revocations at shutdown (SIGTERM)`, function () {
    this.timeout(60_000);
    const secret = TEST_CLIENT_SECRET;
    let redis: RedisServer;
    let proxy: SlowRevocationProxy;
    let idp: DevIdp;
    let dir: string;
    let origin: string;
    let child: Child | undefined;

    before(async () => {
      redis = await RedisServer.start();
      origin = `http://127.0.0.1:${await freePort()}`;
      proxy = new SlowRevocationProxy();
      const issuer = await proxy.listen();
      idp = await startDevIdp({
        port: 0, issuer, log: silentLogger, dangerouslyAllowInsecureHttp: true,
        clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: secret, origin })],
        audiences: { 'https://api.example.test/reports': { scopes: ['reports.read'] } },
        // A profile too large to keep: the sign-in fails once the code was redeemed.
        extraClaims: (user) => (user === 'many-roles' ? { roles: Array.from({ length: 1001 }, (_, i) => `role-${i}`) } : undefined),
      });
      proxy.to(idp);
      dir = mkdtempSync(join(tmpdir(), 'goldpath-bff-drain-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(issuer));
    });
    beforeEach(async () => {
      proxy.revoked = 0;
      proxy.refreshTokens.length = 0;
      child = runCli(runtime, ['bff'], {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: origin,
        GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'), TEST_CLIENT_SECRET: secret,
        PORT: new URL(origin).port, HOST: '127.0.0.1', LOG_LEVEL: 'info',
      });
      await waitHealthy(`${origin}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
    });
    afterEach(async () => {
      await child?.stop();
      child = undefined;
    });
    after(async () => {
      await idp?.close();
      await proxy?.close();
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A sign-in that fails after its code was redeemed: its refresh token is revoked in the background. */
    async function failedSignIn(): Promise<string> {
      const r = await browserLogin({ start: `${origin}/auth/login`, user: 'many-roles' });
      assert.equal(r.status, 400, r.last.body.slice(0, 300));
      assert.match(r.last.body, /too large to sign in here/);
      assert.equal(proxy.refreshTokens.length, 1, 'the IdP issued one refresh token');
      return proxy.refreshTokens[0]!;
    }

    it('a revocation the IdP is slow to answer (1 s) is answered before the process exits', async () => {
      proxy.revocationDelayMs = 1_000;
      const rt = await failedSignIn();
      child!.proc.kill('SIGTERM');
      const { code } = await exitOf(child!, 15_000);
      const exitedAt = performance.now();
      const out = child!.output();
      assert.equal(code, 0, out.slice(-1_000));
      assert.equal(proxy.revoked, 1, `the IdP had not answered the revocation when the process exited:\n${out.slice(-1_000)}`);
      assert.ok(proxy.revokedAt < exitedAt, 'the revocation was answered before the process exited');
      assert.equal(await grantsRefresh(idp.issuer, rt), false, 'the refresh token of the failed sign-in is still granted: a live grant nobody holds');
      assert.match(out, /the refresh token it was issued is revoked/);
      assert.ok(!out.includes(rt), 'a refresh token reached the log');
    });

    it('a revocation the IdP never answers holds the shutdown no longer than its bound, and is logged as dropped', async () => {
      proxy.revocationDelayMs = Infinity;
      const rt = await failedSignIn();
      const t0 = performance.now();
      child!.proc.kill('SIGTERM');
      const { code } = await exitOf(child!, 15_000);
      const took = performance.now() - t0;
      const out = child!.output();
      assert.equal(code, 0, out.slice(-1_000));
      assert.ok(took < BACKGROUND_DRAIN_MS + 2_000, `the shutdown took ${Math.round(took)} ms (bound ${BACKGROUND_DRAIN_MS} ms)`);
      const line = out.split('\n').find((l) => l.includes('background token revocations still unanswered are dropped'));
      assert.ok(line, `no warning names the dropped revocations:\n${out.slice(-1_000)}`);
      const logged = JSON.parse(line) as Record<string, unknown>;
      assert.equal(logged['dropped'], 1);
      assert.equal(logged['level'], 'warn');
      assert.ok(!out.includes(rt), 'a refresh token reached the log');
    });
  });
}
