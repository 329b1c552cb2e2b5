// SPEC 9: latency histograms. An /auth/verify answer that waits on the IdP (a refresh, up to the
// token provider's 5 s wait) takes seconds; the histogram must still place it: with 1 s as the
// last finite bucket every such answer was only in +Inf, and histogram_quantile() reported 1 s for
// an IdP that made every refreshing request take 3.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { devIdpsYaml } from '../helpers/idp-bff.ts';
import { verifyEnv } from '../helpers/verify-app.ts';
import { spawnVerify } from '../helpers/verify-process.ts';
import { closeServer } from '../helpers/close-server.ts';

describe('verify process: the latency histogram places answers that take seconds', function () {
  this.timeout(60_000);

  it('a refresh the IdP answers after ~2 s is counted in a finite bucket above 1 s, not only in +Inf', async () => {
    const redis = await RedisServer.start();
    const store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
    let issuer = '';
    // Discovery answers at once; the token endpoint takes 2 s, then fails.
    const idp: Server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'] }));
        return;
      }
      setTimeout(() => {
        res.statusCode = 503;
        res.end();
      }, 2_000);
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', () => resolve()));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-slow-metrics-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
    writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(issuer));
    const sidecar = await spawnVerify('node', redis.url, { GOLDPATH_CONFIG_DIR: dir });
    try {
      const { cookieValue } = await store.create(newSession({ tokens: { '': { value: 'at-old', type: 'Bearer', expiresAt: Date.now() - 1000, scope: 'openid' } } }));
      const res = await sidecar.verify(cookieValue);
      assert.equal(res.status, 503);
      assert.ok(res.ms > 1_500, `the answer waited on the IdP (${res.ms} ms)`);
      const text = (await sidecar.get('/metrics')).body;
      const buckets = [...text.matchAll(/^goldpath_verify_duration_seconds_bucket\{le="([^"]+)",outcome="unavailable"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
      assert.ok(buckets.length > 0, text);
      const finite = buckets.filter(([le]) => le !== '+Inf');
      const placed = finite.find(([le, n]) => Number(le) * 1000 >= res.ms && n === 1);
      assert.ok(placed, `a ${Math.round(res.ms)} ms answer is in no finite bucket: ${JSON.stringify(buckets)}`);
      assert.equal(finite.find(([le]) => le === '1')?.[1], 0, 'and not under 1 s');
    } finally {
      await sidecar.stop();
      await closeServer(idp);
      await store.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
