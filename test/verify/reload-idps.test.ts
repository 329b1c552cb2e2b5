// The sidecar's IdPs across a reload (startVerify's reload, what SIGHUP runs), with real dev IdPs,
// a real BFF for the sign-ins and a real redis-server: what was discovered is handed on (a refresh
// needs no discovery after a SIGHUP), and a reload adding an issuer that cannot be discovered is
// rejected, while an IdP it leaves as it was is asked nothing.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devIdpClientFor, startDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { tokenProviderFactory } from '../../src/oidc/index.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { capturingLogger, devIdpsYaml, loginExpiringAt, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { freePort } from '../helpers/redis.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { TEST_KEYS } from '../helpers/sessions.ts';
import { send } from '../helpers/verify-app.ts';

const CORP_SECRET = 'corp-client-secret-not-for-any-log-0123';

/** idps.yaml with `dev` at `devIssuer` and, when given, `corp` at `corpIssuer`. */
function idpsYaml(devIssuer: string, corpIssuer?: string): string {
  return devIdpsYaml(devIssuer) + (corpIssuer === undefined ? '' : `  corp:
    issuer: ${corpIssuer}
    client_id: goldpath
    client_secret: ${CORP_SECRET}
    dangerously_allow_insecure_http: true
    audiences:
      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }
`);
}

describe('verify reload: the IdPs', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let dir: string;
  let sidecar: VerifyProcess;
  let lines: string[];
  /** Discovery requests the sidecar made (their URLs); dev's are refused while `refuse` holds. */
  let discoveries: string[];
  let refuse: boolean;

  before(async () => {
    // The BFF signs users in with the keys the sidecar reads their cookies with.
    env = await startIdpBff({ settings: { sessionKeys: TEST_KEYS.map((k) => new Uint8Array(Buffer.from(k, 'base64url'))) } });
  });
  after(() => env?.close());

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'goldpath-reload-idps-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
    writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer));
    discoveries = [];
    refuse = false;
    // The IdPs as the network shows them: dev's discovery document can be refused, nothing else.
    const fetch: FetchLike = (url, init) => {
      if (String(url).includes('/.well-known/')) {
        discoveries.push(String(url));
        if (refuse && String(url).startsWith(`${env.idp.issuer}/`)) return Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') }));
      }
      return globalThis.fetch(url, init as RequestInit);
    };
    const captured = capturingLogger('info');
    lines = captured.lines;
    sidecar = await startVerify({
      env: {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: env.redis.url, GOLDPATH_PUBLIC_URL: env.url,
        GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET,
      },
      port: 0, host: '127.0.0.1', log: captured.log, sessionCache: false,
      // The sidecar's own token provider (what it uses without this option), over the fetch above.
      tokens: (args) => tokenProviderFactory({ ...args, fetch }),
    });
  });
  afterEach(async () => {
    await sidecar?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GET `uri` through the sidecar with the session `cookie` (goldpath=...). */
  const verify = (uri: string, cookie: string) => send(sidecar.port, '/auth/verify', {
    'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http', Cookie: cookie,
  });

  /** A sign-in whose token expires in 5 s: the sidecar refreshes it at the next request. */
  async function expiringSession(user: string) {
    return loginExpiringAt(env, user, Date.now() + 5_000);
  }

  /** The request refreshed the token (a 200 carrying another token than `token`). */
  async function assertRefreshed(cookie: string, token: string, what: string) {
    const res = await verify('/api/orders/1', cookie);
    assert.equal(res.status, 200, `${what}: ${res.body}`);
    assert.match(String(res.headers['authorization']), /^Bearer /);
    assert.notEqual(res.headers['authorization'], `Bearer ${token}`, `${what}: the token was refreshed`);
  }

  /** The `reload rejected` line's err. */
  function rejectedLine(): string {
    const line = lines.map((l) => JSON.parse(l) as { msg: string; err?: string }).find((l) => /^reload rejected/.test(l.msg));
    assert.ok(line, lines.join('\n'));
    return String(line.err);
  }

  it('refreshes after a SIGHUP on the metadata discovered before it, though discovery now fails', async () => {
    const first = await expiringSession('alice');
    await assertRefreshed(first.cookie, first.token, 'before the reload');
    assert.equal(discoveries.length, 1, 'discovered on the first refresh');
    refuse = true;
    assert.equal(await sidecar.reload(), true);
    const second = await expiringSession('bob');
    await assertRefreshed(second.cookie, second.token, 'after the reload');
    assert.equal(discoveries.length, 1, 'no discovery after the reload');
  });

  it('rejects a reload adding an IdP whose issuer cannot be discovered: the old configuration keeps serving and refreshing', async () => {
    const first = await expiringSession('carol');
    await assertRefreshed(first.cookie, first.token, 'before the reload');
    const closed = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer, closed));
    const routes = readFileSync(join(dir, 'routes.yaml'), 'utf8');
    writeFileSync(join(dir, 'routes.yaml'), routes.replace('routes:\n', 'routes:\n  - name: v9\n    prefix: /api/v9\n    auth: public\n'));
    assert.equal(await sidecar.reload(), false, 'rejected');
    const err = rejectedLine();
    assert.match(err, /idps\.yaml: idps\.corp\.issuer: /, err);
    assert.ok(err.includes(closed), err);
    assert.match(err, /ECONNREFUSED/, err);
    assert.ok(!lines.some((l) => l.includes(CORP_SECRET) || l.includes(TEST_CLIENT_SECRET)), 'no client secret in any log line');
    assert.equal((await verify('/api/v9/x', first.cookie)).status, 404, 'the rejected routes.yaml does not serve');
    const second = await expiringSession('dave');
    await assertRefreshed(second.cookie, second.token, 'after the rejected reload');
  });

  it('rejects, within the discovery timeout, a reload pointing an IdP at an issuer that never answers', async () => {
    const first = await expiringSession('erin');
    await assertRefreshed(first.cookie, first.token, 'before the reload');
    // Takes connections and never answers (a host gone, packets dropped).
    const hanging = await TcpProxy.start(Number(new URL(env.idp.issuer).port));
    hanging.stall();
    try {
      writeFileSync(join(dir, 'idps.yaml'), idpsYaml(`http://127.0.0.1:${hanging.port}`));
      const t0 = Date.now();
      assert.equal(await sidecar.reload(), false, 'rejected');
      assert.ok(Date.now() - t0 < 8_000, `bounded: ${Date.now() - t0} ms`);
      assert.match(rejectedLine(), /idps\.dev\.issuer: .*operation timed out/);
    } finally {
      await hanging.close();
    }
    const second = await expiringSession('frank');
    await assertRefreshed(second.cookie, second.token, 'after the rejected reload: dev at its old issuer');
  });

  it('accepts a reload adding a reachable issuer, discovered during it, while an unchanged IdP that cannot be reached is asked nothing', async () => {
    let corp: DevIdp | undefined;
    try {
      corp = await startDevIdp({
        port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true,
        clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: CORP_SECRET, origin: env.url })],
      });
      // dev has never been discovered here, and cannot be now.
      refuse = true;
      const routes = readFileSync(join(dir, 'routes.yaml'), 'utf8');
      writeFileSync(join(dir, 'routes.yaml'), routes.replace('routes:\n', 'routes:\n  - name: v9\n    prefix: /api/v9\n    auth: public\n'));
      writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer, corp.issuer));
      assert.equal(await sidecar.reload(), true, lines.join('\n'));
      assert.deepEqual(discoveries, [`${corp.issuer}/.well-known/openid-configuration`], 'the added issuer only, during the reload');
      assert.equal((await verify('/api/v9/x', '')).status, 200, 'the new routes.yaml serves');
    } finally {
      await corp?.close();
    }
  });
});
