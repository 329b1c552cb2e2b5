// What an operator has to go on when /auth/verify refuses: every answer names its request
// (X-Request-Id), and a sidecar whose GOLDPATH_SESSION_KEYS differ from the BFF's says so in its
// log and its metrics instead of answering every sign-in with a silent 401.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { captureLogger } from '../pdp/log-capture.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { StoredTokens } from '../helpers/stored-tokens.ts';
import { send, startVerifyApp, verifyEnv } from '../helpers/verify-app.ts';
import { silentLogger } from '../../src/log.ts';

const key = () => randomBytes(32).toString('base64url');

describe('verify: diagnostics', function () {
  this.timeout(20_000);
  const sidecarKey = key();
  const otherKey = key();
  let redis: RedisServer;
  let sidecar: VerifyProcess;
  let logs: ReturnType<typeof captureLogger>;
  /** A BFF's store: the sidecar's key, so its cookies are good there. */
  let bff: SessionStore;
  /** A BFF configured with another key first (a rollout gone wrong). */
  let stranger: SessionStore;

  const storeWith = (keys: string[]) => {
    const env = { ...verifyEnv(redis.url), GOLDPATH_SESSION_KEYS: keys.join(',') };
    return createSessionStore({ url: redis.url, settings: loadSettings(env) });
  };
  const verify = (uri: string, headers: Record<string, string> = {}) => send(sidecar.port, '/auth/verify', {
    'x-forwarded-method': 'GET', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'localhost:8080', 'x-forwarded-uri': uri, ...headers,
  });
  const warnings = (pattern: RegExp) => logs.lines().filter((l) => l.level === 'warn' && pattern.test(String(l.msg)));

  before(async () => {
    redis = await RedisServer.start();
    logs = captureLogger();
    sidecar = await startVerify({
      env: { ...verifyEnv(redis.url), GOLDPATH_SESSION_KEYS: sidecarKey }, log: logs.log, port: 0, host: '127.0.0.1',
      tokens: async ({ store }) => new StoredTokens(store),
    });
    bff = storeWith([sidecarKey]);
    stranger = storeWith([otherKey, sidecarKey]);
  });
  after(async () => {
    await sidecar?.close();
    await bff?.close();
    await stranger?.close();
    await redis?.stop();
  });

  it('at LOG_LEVEL=debug every answer carries X-Request-Id (the edge\'s when well-formed, else one of its own) and is a log line', async () => {
    const { cookieValue } = await bff.create(newSession({ roles: ['reader'] }));
    const cookie = `goldpath=${cookieValue}`;
    const answers = [
      await verify('/api/orders/../x'), // 400
      await verify('/api/nothing'), // 404
      await verify('/api/orders/1'), // 401
      await verify('/api/orders/1', { 'sec-fetch-mode': 'navigate' }), // 302
      await verify('/api/reports/1', { cookie }), // 403
      await verify('/api/orders/1', { cookie, 'x-forwarded-method': 'POST' }), // 403 csrf
      await verify('/api/orders/1', { cookie }), // 200
    ];
    assert.deepEqual(answers.map((a) => a.status), [400, 404, 401, 302, 403, 403, 200]);
    const ids = answers.map((a) => a.headers['x-request-id']);
    for (const [i, id] of ids.entries()) assert.match(String(id), /^[A-Za-z0-9_-]+-[0-9a-z]+$/, `answer ${i}`);
    assert.equal(new Set(ids).size, ids.length, 'one id per request');
    const echoed = await verify('/api/orders/1', { 'x-request-id': 'edge-42' });
    assert.equal(echoed.status, 401);
    assert.equal(echoed.headers['x-request-id'], 'edge-42');
    // At LOG_LEVEL=debug each answer is a line under its id (and never the cookie).
    const lines = logs.lines().filter((l) => l.msg === 'verify answer');
    for (const [i, id] of ids.entries()) {
      const line = lines.find((l) => l.reqId === id);
      assert.ok(line, `no debug line for answer ${i}`);
      assert.equal(line.status, answers[i]!.status);
    }
    assert.equal(lines.find((l) => l.reqId === ids[4])?.outcome, 'no_rule');
    assert.equal(lines.find((l) => l.reqId === ids[4])?.route, 'reports');
    assert.ok(!logs.text().includes(cookieValue), 'the cookie is never logged');
  });

  it('the debug line of a 400 names the forwarded method and the path as sent, never its query', async () => {
    const secret = randomBytes(16).toString('base64url');
    const r = await verify(`/api/orders/%2e%2e/admin?token=${secret}`, { 'x-forwarded-method': 'DELETE' });
    assert.equal(r.status, 400);
    const line = logs.lines().find((l) => l.msg === 'verify answer' && l.reqId === r.headers['x-request-id']);
    assert.ok(line, 'no debug line');
    assert.deepEqual([line.method, line.path, line.status], ['DELETE', '/api/orders/%2e%2e/admin', 400]);
    assert.ok(!logs.text().includes(secret), 'the query is logged');
  });

  it('at info, the answers a log line names carry X-Request-Id (an allow, a policy error); a plain refusal does not', async () => {
    const quiet = await startVerifyApp(bff, redis.url, { log: silentLogger });
    try {
      const { cookie } = await quiet.login({ roles: ['reader'] });
      const allowed = await quiet.verify('GET', '/api/orders/1', { cookie });
      const policyError = await quiet.verify('GET', '/api/boom', { cookie }); // the policy reads a field User lacks
      const refused = await quiet.verify('GET', '/api/orders/1');
      assert.deepEqual([allowed.status, policyError.status, refused.status], [200, 403, 401]);
      assert.ok(allowed.headers['x-request-id']);
      assert.ok(policyError.headers['x-request-id'], 'a policy error is logged under its id');
      assert.equal(refused.headers['x-request-id'], undefined);
    } finally {
      await quiet.close();
    }
  });

  it('cookies signed with a key the sidecar lacks: a warning naming GOLDPATH_SESSION_KEYS (a line a minute), and a counter', async () => {
    const before = warnings(/GOLDPATH_SESSION_KEYS/).length;
    for (let i = 0; i < 3; i++) {
      const { cookieValue } = await stranger.create(newSession({ roles: ['reader'] }));
      assert.equal((await verify('/api/orders/1', { cookie: `goldpath=${cookieValue}` })).status, 401);
    }
    const lines = warnings(/signed by no key of GOLDPATH_SESSION_KEYS/);
    assert.equal(lines.length - before, 1, JSON.stringify(lines));
    const metrics = await send(sidecar.port, '/metrics', {});
    const refused = Number(/^goldpath_session_cookies_refused_total (\d+)/m.exec(metrics.body)?.[1]);
    assert.ok(refused >= 3, `goldpath_session_cookies_refused_total ${refused}`);
  });

  it('a session sealed under a key the sidecar lacks (a rotation half rolled out): a warning saying so', async () => {
    // Signed in under the shared key; then refreshed by a process whose first key is another.
    const { cookieValue, session } = await bff.create(newSession({ roles: ['reader'] }));
    assert.ok(await stranger.updateSecrets(session.id, session.secrets));
    assert.equal((await verify('/api/orders/1', { cookie: `goldpath=${cookieValue}` })).status, 401);
    assert.equal(warnings(/sealed under a key this process lacks/).length, 1, JSON.stringify(logs.lines()));
  });
});
