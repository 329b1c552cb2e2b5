// The PDP's caches through the real sidecar (startVerify: config from files, a real redis-server,
// the session cache, the real Oso, reload() as SIGHUP runs it): a cached decision is only ever
// served for the input it was made for.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';
import { send, VERIFY_CONFIG_DIR } from '../helpers/verify-app.ts';

describe('verify: cached decisions are served only for their own input (real sidecar, real Oso)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let dir: string;
  let kv: KvSessionStore;
  let verify: VerifyProcess;
  let port: number;

  const PDP = `policies: [policy.polar]
rules:
  - match: "* /api/orders/t/:tenant/:id"
    action: read
    resource: { type: Order, id: ":id" }
  - match: "* /api/orders/:id"
    action: read
    resource: { type: Order, id: ":id" }
  - match: GET /api/reports
    action: read
    resource: { type: Report }
`;
  const POLICY = `
allow(user: User, "read", order: Order) if "reader" in user.roles and order.method = "GET" and order.id != "secret";
allow(user: User, "read", order: Order) if user.claims matches {tenant: t} and order.params matches {tenant: t};
allow(user: User, "read", _order: Order) if user.idp = "corp" and user.id = "bob";
allow(user: User, "read", _r: Report) if "reader" in user.roles;
`;

  before(async () => {
    redis = await RedisServer.start();
    dir = mkdtempSync(join(tmpdir(), 'goldpath-pdp-audit-'));
    cpSync(VERIFY_CONFIG_DIR, dir, { recursive: true });
    writeFileSync(join(dir, 'pdp.yaml'), PDP);
    writeFileSync(join(dir, 'policy.polar'), POLICY);
    const idps = readFileSync(join(dir, 'idps.yaml'), 'utf8');
    writeFileSync(join(dir, 'idps.yaml'), `${idps}  corp:\n    issuer: https://corp.example.test\n    client_id: goldpath\n    client_secret: x\n    audiences:\n      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }\n`);
    const env = {
      GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
      GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 'test-secret', LOG_LEVEL: 'silent',
    };
    kv = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
    verify = await startVerify({
      env, log: silentLogger, port: 0, host: '127.0.0.1', sessionCache: { ttlMs: 60_000, heartbeatMs: 0 },
      tokens: async ({ store }) => new StoredTokens(store),
    });
    port = verify.port;
  });
  after(async () => {
    await verify?.close();
    await kv?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function login(o: Parameters<typeof newSession>[0]) {
    const n = newSession(o);
    const { cookieValue } = await kv.create(n);
    return { cookie: `goldpath=${cookieValue}`, csrf: n.secrets.csrf };
  }
  async function ask(s: { cookie: string; csrf: string }, method: string, uri: string): Promise<number> {
    const res = await send(port, '/auth/verify', {
      'X-Forwarded-Method': method, 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'localhost:8080',
      'X-Forwarded-Uri': uri, Cookie: s.cookie, 'X-CSRF-Token': s.csrf,
    });
    return res.status;
  }

  it('same path, another method: the memo does not answer one with the other\'s decision', async () => {
    const s = await login({ sub: 'm1', roles: ['reader'] });
    assert.equal(await ask(s, 'GET', '/api/orders/1'), 200);
    assert.equal(await ask(s, 'DELETE', '/api/orders/1'), 403);
    assert.equal(await ask(s, 'HEAD', '/api/orders/1'), 403);
    assert.equal(await ask(s, 'GET', '/api/orders/1'), 200);
    assert.equal(await ask(s, 'DELETE', '/api/orders/1'), 403);
  });

  it('percent-encoding: the same decoded path is the same resource, another one is not', async () => {
    const s = await login({ sub: 'p1', roles: ['reader'] });
    assert.equal(await ask(s, 'GET', '/api/orders/x'), 200);
    assert.equal(await ask(s, 'GET', '/api/orders/secre%74'), 403);
    assert.equal(await ask(s, 'GET', '/api/orders/secret'), 403);
    assert.equal(await ask(s, 'GET', '/api/orders/%78'), 200);
    assert.equal(await ask(s, 'GET', '/api/orders/secret/'), 403); // no rule
  });

  it('claims: two sessions of one sub differing in a claim get their own decisions', async () => {
    const a = await login({ sub: 'c1', roles: [], claims: { tenant: 'acme' } });
    const b = await login({ sub: 'c1', roles: [], claims: { tenant: 'other' } });
    const c = await login({ sub: 'c1', roles: [], claims: {} });
    assert.equal(await ask(a, 'GET', '/api/orders/t/acme/1'), 200);
    assert.equal(await ask(b, 'GET', '/api/orders/t/acme/1'), 403);
    assert.equal(await ask(c, 'GET', '/api/orders/t/acme/1'), 403);
    assert.equal(await ask(b, 'GET', '/api/orders/t/other/1'), 200);
  });

  it('two IdPs with the same sub are two actors', async () => {
    const corp = await login({ sub: 'bob', idp: 'corp', roles: [] });
    const dev = await login({ sub: 'bob', idp: 'dev', roles: [] });
    assert.equal(await ask(corp, 'GET', '/api/orders/9'), 200);
    assert.equal(await ask(dev, 'GET', '/api/orders/9'), 403);
  });

  it('a reload (SIGHUP) of the policy: no decision of the old policy is served, memo or cache', async () => {
    const s = await login({ sub: 'r1', roles: ['reader'] });
    const t = await login({ sub: 'r1', roles: ['reader'] }); // same actor, another session: the Pdp's cache
    assert.equal(await ask(s, 'GET', '/api/orders/5'), 200);
    assert.equal(await ask(s, 'GET', '/api/reports'), 200);
    writeFileSync(join(dir, 'policy.polar'), POLICY.replace('order.id != "secret"', 'order.id != "5"').replace('allow(user: User, "read", _r: Report) if "reader" in user.roles;', 'allow(user: User, "read", _r: Report) if "auditor" in user.roles;'));
    assert.equal(await verify.reload(), true);
    assert.equal(await ask(s, 'GET', '/api/orders/5'), 403);
    assert.equal(await ask(t, 'GET', '/api/orders/5'), 403);
    assert.equal(await ask(s, 'GET', '/api/reports'), 403);
    writeFileSync(join(dir, 'policy.polar'), POLICY);
    assert.equal(await verify.reload(), true);
    assert.equal(await ask(s, 'GET', '/api/orders/5'), 200);
    assert.equal(await ask(s, 'GET', '/api/reports'), 200);
    // A broken policy is rejected: the old one (and its decisions) keep serving.
    writeFileSync(join(dir, 'policy.polar'), 'allow(');
    assert.equal(await verify.reload(), false);
    assert.equal(await ask(s, 'GET', '/api/orders/5'), 200);
    writeFileSync(join(dir, 'policy.polar'), POLICY);
  });

  it('a refresh that changes the stored user: the next decision is the new user\'s', async () => {
    const n = newSession({ sub: 'f1', roles: ['reader'] });
    const { cookieValue, session } = await kv.create(n);
    const s = { cookie: `goldpath=${cookieValue}`, csrf: n.secrets.csrf };
    assert.equal(await ask(s, 'GET', '/api/orders/7'), 200);
    assert.ok(await kv.updateSecrets(session.id, { ...n.secrets, user: { ...n.secrets.user, roles: [] } }));
    // The invalidation travels over pub/sub.
    let status = 200;
    for (let i = 0; i < 50 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await ask(s, 'GET', '/api/orders/7');
    }
    assert.equal(status, 403);
  });
});
