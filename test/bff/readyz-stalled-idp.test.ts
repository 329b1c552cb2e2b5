// /readyz answers within about a second, whatever an IdP does: a readiness probe (Kubernetes'
// timeoutSeconds defaults to 1) that times out takes the BFF out of rotation. README: an IdP other
// than the default that cannot be reached is named in the 200 body (`idps_unavailable`) "rather
// than taking every BFF out of rotation". An IdP that accepts connections and never answers (a
// black-holed load balancer, a hung IdP) held every /readyz for the IdP timeout (5 s) instead.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createBffApp } from '../../src/bff/app.ts';
import { listen, type Listening } from '../../src/http/serve.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { startIdpBff, testIdpConfig, testSettings, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

describe('BFF /readyz with an IdP that accepts connections and never answers', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let stalled: Server;
  const sockets = new Set<Socket>();
  let stalledIssuer: string;

  before(async () => {
    redis = await RedisServer.start();
    env = await startIdpBff({ redis });
    stalled = createServer((s) => { sockets.add(s); s.on('error', () => {}); });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', () => resolve()));
    stalledIssuer = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => stalled.close(() => resolve()));
    await env?.close();
    await redis?.stop();
  });

  async function timedReadyz(idps: Record<string, ReturnType<typeof testIdpConfig>>, def: string): Promise<{ status: number; body: string; ms: number }> {
    const settings = testSettings(env.url, redis.url);
    const store = createSessionStore({ url: redis.url, settings, log: silentLogger });
    const bff = await createBffApp({ settings, config: { ...env.config, idps: { default: def, idps } }, store, log: silentLogger });
    let server: Listening | undefined;
    try {
      server = await listen(bff.app.callback(), 0, '127.0.0.1');
      const start = Date.now();
      const r = await httpCall(`${server.url}/readyz`);
      return { status: r.status, body: r.body, ms: Date.now() - start };
    } finally {
      await server?.close();
      await store.close();
    }
  }

  it('another IdP hung: 200 naming it, within about a second', async () => {
    const r = await timedReadyz({ dev: env.config.idps.idps['dev']!, corp: testIdpConfig('corp', stalledIssuer) }, 'dev');
    assert.ok(r.ms < 1_500, `/readyz took ${r.ms} ms (${r.status} ${r.body})`);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { status: 'ready', idps_unavailable: ['corp'] });
  });

  it('the default IdP and another hung: 503, within about a second (not a wait per IdP)', async () => {
    const r = await timedReadyz({ corp: testIdpConfig('corp', stalledIssuer), other: testIdpConfig('other', `${stalledIssuer}/other`) }, 'corp');
    assert.ok(r.ms < 1_500, `/readyz took ${r.ms} ms (${r.status} ${r.body})`);
    assert.equal(r.status, 503, r.body);
  });

  it('the default IdP hung: 503, within about a second', async () => {
    const r = await timedReadyz({ corp: testIdpConfig('corp', stalledIssuer) }, 'corp');
    assert.ok(r.ms < 1_500, `/readyz took ${r.ms} ms (${r.status} ${r.body})`);
    assert.equal(r.status, 503, r.body);
  });
});
