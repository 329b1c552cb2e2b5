// Load with faults: two `goldpath verify` processes and one `goldpath bff` process on one real
// redis-server, under sustained autocannon load (valid sessions, no cookie, forged cookies). While
// the load runs, Redis is killed (kill -9) and started again, and one sidecar reloads an edited
// policy (SIGHUP). Asserted: no unauthenticated request is ever allowed, no 5xx but 503, 503s only
// around the outage, nothing crashes, and sessions created after Redis returns are allowed again.
// The per-scenario counts are printed and written to test-results/load-faults.md.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { loadSettings } from '../../src/config/env.ts';
import { devIdpClientFor, startDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { browserLogin } from '../helpers/login.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from '../helpers/process.ts';
import { waitFor } from '../helpers/redis-cluster.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { devIdpsYaml } from '../helpers/idp-bff.ts';

const LOAD_SECONDS = 12;
const KILL_AT_MS = 3_000;
const DOWN_FOR_MS = 1_500;
const RELOAD_AT_MS = 7_500;
const SECRET = randomBytes(24).toString('base64url');

type Scenario = 'valid' | 'no-cookie' | 'forged' | 'bff-session';
interface Sample { target: string; scenario: Scenario; status: number; at: number; gen: string }

const idpsYaml = devIdpsYaml;

/** A config folder of its own (the verify fixture), pointed at the dev IdP. */
function configCopy(root: string, name: string, issuer: string): string {
  const dir = join(root, name);
  cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
  writeFileSync(join(dir, 'idps.yaml'), idpsYaml(issuer));
  return dir;
}

/** Cookies no store ever issued: well-formed with a wrong MAC, and plain garbage. */
function forgedCookies(n: number): string[] {
  return Array.from({ length: n }, (_, i) => i % 2 === 0
    ? `goldpath=${randomBytes(32).toString('base64url')}.${randomBytes(16).toString('base64url')}`
    : `goldpath=${randomBytes(1 + (i % 90)).toString('base64url')}`);
}

describe('load with faults: 2 sidecars + BFF, Redis restart and policy reload under load', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let idp: DevIdp;
  let root: string;
  let store: SessionStore;
  const children: Array<{ name: string; child: Child; origin: string }> = [];

  before(async function () {
    redis = await RedisServer.start();
    root = mkdtempSync(join(tmpdir(), 'goldpath-load-'));
    const bffPort = await freePort();
    const publicOrigin = `http://127.0.0.1:${bffPort}`;
    idp = await startDevIdp({
      port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true, autoConsent: true,
      clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: SECRET, origin: publicOrigin })],
      audiences: { 'https://api.example.test/reports': { scopes: ['reports.read'] } },
    });
    const base = {
      REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: publicOrigin, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','),
      TEST_CLIENT_SECRET: SECRET, HOST: '127.0.0.1', LOG_LEVEL: 'warn',
    };
    store = createSessionStore({ url: redis.url, settings: loadSettings({ ...base, GOLDPATH_CONFIG_DIR: root }), log: silentLogger });
    const specs = [
      { name: 'sidecar-a', cmd: 'verify', port: await freePort() },
      { name: 'sidecar-b', cmd: 'verify', port: await freePort() },
      { name: 'bff', cmd: 'bff', port: bffPort },
    ];
    for (const s of specs) {
      const child = runCli('node', [s.cmd], { ...base, GOLDPATH_CONFIG_DIR: configCopy(root, s.name, idp.issuer), PORT: String(s.port) });
      children.push({ name: s.name, child, origin: `http://127.0.0.1:${s.port}` });
    }
    await Promise.all(children.map((c) => waitHealthy(`${c.origin}/readyz`, c.child, 20_000)));
  });

  after(async function () {
    await Promise.all(children.map((c) => c.child.stop()));
    await store?.close();
    await idp?.close();
    await redis?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('never allows the unauthenticated, answers only 503 while Redis is down, and recovers without a restart', async function () {
    const [a, b, bff] = children as [typeof children[0], typeof children[0], typeof children[0]];
    const samples: Sample[] = [];
    // Sessions made through the store API. Generation "old" dies with Redis (no persistence);
    // generation "new" is created once Redis is back.
    let pool = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(newSession({ sub: `load-old-${i}` }))));
    let gen = 'old';
    const forged = forgedCookies(200);
    let next = 0;

    const verifyHeaders = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'http', 'x-forwarded-host': '127.0.0.1', 'x-forwarded-uri': '/api/orders/1', accept: 'application/json' };
    function load(target: string, url: string, scenario: Scenario, connections: number): autocannon.Instance {
      const record = (status: number, _body: string, context: Record<string, unknown>) => {
        samples.push({ target, scenario, status, at: Date.now(), gen: String(context['gen'] ?? '-') });
      };
      const setupRequest = (req: autocannon.Request, context: Record<string, unknown>): autocannon.Request => {
        let cookie: string | undefined;
        if (scenario === 'valid' || scenario === 'bff-session') {
          context['gen'] = gen;
          cookie = `goldpath=${pool[next++ % pool.length]!.cookieValue}`;
        } else if (scenario === 'forged') {
          cookie = forged[next++ % forged.length]!;
        }
        const headers = { ...(scenario === 'bff-session' ? { accept: 'application/json' } : verifyHeaders) } as Record<string, string>;
        if (cookie) headers['cookie'] = cookie;
        return { ...req, headers };
      };
      return autocannon({
        url, connections, duration: LOAD_SECONDS, timeout: 3, pipelining: 1,
        requests: [{ method: 'GET', setupRequest, onResponse: record }],
      });
    }

    const start = Date.now();
    const runs = [
      ...[a, b].flatMap((s) => [
        load(s.name, `${s.origin}/auth/verify`, 'valid', 4),
        load(s.name, `${s.origin}/auth/verify`, 'no-cookie', 2),
        load(s.name, `${s.origin}/auth/verify`, 'forged', 2),
      ]),
      load('bff', `${bff.origin}/auth/session`, 'bff-session', 2),
    ];
    const sleepUntil = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, start + ms - Date.now())));

    // The outage: kill -9, down for a while, started again on the same port (empty: no persistence).
    await sleepUntil(KILL_AT_MS);
    const killedAt = Date.now();
    await redis.kill('SIGKILL');
    await sleepUntil(KILL_AT_MS + DOWN_FOR_MS);
    await redis.start();
    const redisBackAt = Date.now();
    // Every process finds Redis again by itself (each within 8 s of Redis coming back).
    const ready = await Promise.all(children.map(async (c) => {
      await waitFor(`${c.name} to be ready after Redis came back`, async () => (await fetch(`${c.origin}/readyz`)).status === 200, 8_000, 50);
      return Date.now();
    }));
    const recoveredAt = Math.max(...ready);
    // The test's own store reconnects on its own schedule too (a session created while it still
    // reconnects fails with 503, as it should): wait for it as the processes were waited for.
    await waitFor("the test's store to reconnect", async () => (await store.ping(), true), 8_000, 50);
    pool = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(newSession({ sub: `load-new-${i}` }))));
    gen = 'new';

    // The policy reload: sidecar A no longer lets readers read order 42.
    await sleepUntil(RELOAD_AT_MS);
    const policyFile = join(root, 'sidecar-a', 'policy.polar');
    writeFileSync(policyFile, readFileSync(policyFile, 'utf8').replace(
      'allow(user: User, "read", _order: Order) if "reader" in user.roles;',
      'allow(user: User, "read", order: Order) if "reader" in user.roles and order.id != "42";',
    ));
    a.child.proc.kill('SIGHUP');

    const results = await Promise.all(runs);
    const end = Date.now();

    // ---- the counts table -------------------------------------------------------------------
    const windowStart = killedAt - 100;
    const windowEnd = recoveredAt + 1_500;
    /** Requests in flight when Redis was killed may still be answered from what they had read. */
    const IN_FLIGHT_MS = 300;
    const PHASES = ['1 before', '2 in flight at the kill', '3 Redis down', '4 Redis back, reconnecting', '5 after'];
    const phase = (t: number) => PHASES[t < killedAt ? 0 : t < killedAt + IN_FLIGHT_MS ? 1 : t < redisBackAt ? 2 : t <= recoveredAt ? 3 : 4]!;
    const rows = new Map<string, Record<string, number>>();
    for (const s of samples) {
      const key = `${s.target} | ${s.scenario}${s.scenario === 'valid' || s.scenario === 'bff-session' ? ` (${s.gen})` : ''} | ${phase(s.at)}`;
      const row = rows.get(key) ?? {};
      row[String(s.status)] = (row[String(s.status)] ?? 0) + 1;
      rows.set(key, row);
    }
    const statuses = [...new Set(samples.map((s) => String(s.status)))].sort();
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const timeouts = results.reduce((n, r) => n + r.timeouts, 0);
    const table = [
      `| target | scenario | phase | ${statuses.join(' | ')} |`,
      `|---|---|---|${statuses.map(() => '---:').join('|')}|`,
      ...[...rows.entries()].sort(([x], [y]) => x.localeCompare(y)).map(([k, row]) => `| ${k} | ${statuses.map((s) => row[s] ?? 0).join(' | ')} |`),
    ].join('\n');
    const first503 = samples.filter((s) => s.status === 503).map((s) => s.at);
    const timeline = [
      `- load: ${LOAD_SECONDS} s, ${samples.length} responses (${Math.round(samples.length / ((end - start) / 1000))}/s), ${errors} connection errors, ${timeouts} timeouts`,
      `- Redis killed (kill -9) at +${killedAt - start} ms, started again at +${redisBackAt - start} ms, every process ready again at +${recoveredAt - start} ms`,
      `- 503s: ${first503.length}, first at +${first503.length ? Math.min(...first503) - start : '-'} ms, last at +${first503.length ? Math.max(...first503) - start : '-'} ms`,
      `- policy edited and sidecar-a sent SIGHUP at +${RELOAD_AT_MS} ms`,
    ].join('\n');
    const report = `# Load with faults (test/reliability/load-faults.test.ts)\n\n` +
      `Two \`goldpath verify\` processes and one \`goldpath bff\` on one redis-server, autocannon for ${LOAD_SECONDS} s ` +
      `(verify: GET /api/orders/1 with a valid session, with no cookie, with a forged cookie; bff: GET /auth/session ` +
      `with a valid session). Sessions "old" were created before the kill (they die with Redis: no persistence), ` +
      `"new" once Redis was back. Phases: before the kill; the first ${IN_FLIGHT_MS} ms after it (requests already in flight); ` +
      `Redis down; Redis back while the processes reconnect; after.\n\n` +
      `${timeline}\n\n${table}\n`;
    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'test-results', 'load-faults.md'), report);
    console.log(`\n${timeline}\n\n${table}\n`);

    // ---- the assertions ---------------------------------------------------------------------
    const count = (f: (s: Sample) => boolean) => samples.filter(f).length;
    assert.ok(samples.length > 2_000, `sustained load (${samples.length} responses)`);
    assert.equal(timeouts, 0, 'no request hung');
    // 1. Never 200 for an unauthenticated request.
    assert.equal(count((s) => (s.scenario === 'no-cookie' || s.scenario === 'forged') && s.status < 300), 0, 'no unauthenticated request allowed');
    // Unauthenticated requests are refused without Redis: always 401, even during the outage.
    assert.equal(count((s) => (s.scenario === 'no-cookie' || s.scenario === 'forged') && s.status !== 401), 0, 'no-cookie/forged → 401 only');
    // 2. No 5xx other than 503; 503 only around the outage.
    assert.equal(count((s) => s.status >= 500 && s.status !== 503), 0, 'no 5xx other than 503');
    const stray = samples.filter((s) => s.status === 503 && (s.at < windowStart || s.at > windowEnd));
    assert.equal(stray.length, 0, `503 outside the outage window: ${stray.slice(0, 5).map((s) => `${s.target}/${s.scenario} at +${s.at - start}`).join(', ')}`);
    assert.ok(count((s) => s.status === 503) > 0, 'the outage was seen (503 while Redis was down)');
    // Valid sessions: allowed before, 503 during; the old ones are gone with Redis (401), the new ones allowed.
    assert.ok(count((s) => s.scenario === 'valid' && s.gen === 'old' && s.at < killedAt && s.status === 200) > 100, 'valid sessions allowed before the outage');
    assert.equal(count((s) => s.scenario === 'valid' && s.at < killedAt && s.status !== 200), 0, 'nothing but 200 for valid sessions before the outage');
    // Fail closed while Redis is down: no allow (not even from a sidecar's session cache) once the
    // requests that were in flight at the kill have been answered.
    assert.equal(count((s) => (s.scenario === 'valid' || s.scenario === 'bff-session') && s.at >= killedAt + IN_FLIGHT_MS && s.at < redisBackAt && s.status === 200), 0,
      'no 200 while Redis is down');
    assert.equal(count((s) => s.scenario === 'valid' && s.gen === 'old' && s.at > windowEnd && s.status === 200), 0, 'sessions lost with Redis are not resurrected');
    for (const target of ['sidecar-a', 'sidecar-b']) {
      const fresh = samples.filter((s) => s.target === target && s.scenario === 'valid' && s.gen === 'new');
      assert.ok(fresh.length > 100 && fresh.every((s) => s.status === 200), `${target}: sessions created after Redis returned are allowed (${fresh.length})`);
    }
    assert.ok(count((s) => s.scenario === 'bff-session' && s.gen === 'new' && s.status === 200) > 0, 'the BFF serves sessions again');
    assert.equal(count((s) => s.scenario === 'bff-session' && s.status !== 200 && s.status !== 401 && s.status !== 503), 0, 'BFF: 200, 401 or 503 only');

    // 3. Nothing crashed: all alive, healthy and ready.
    for (const c of children) {
      assert.equal(c.child.proc.exitCode, null, `${c.name} is alive:\n${c.child.output()}`);
      assert.equal((await fetch(`${c.origin}/healthz`)).status, 200, `${c.name} /healthz`);
      assert.equal((await fetch(`${c.origin}/readyz`)).status, 200, `${c.name} /readyz`);
      assert.doesNotMatch(c.child.output(), /reload rejected|uncaught|unhandled/i, c.name);
    }
    // The reload took effect on A only; B keeps its own (unchanged) policy.
    const { cookieValue } = await store.create(newSession({ sub: 'after-reload' }));
    const verify42 = (origin: string) => fetch(`${origin}/auth/verify`, { headers: { ...verifyHeaders, 'x-forwarded-uri': '/api/orders/42', cookie: `goldpath=${cookieValue}` } });
    assert.equal((await verify42(a.origin)).status, 403, 'sidecar-a reloaded its policy');
    assert.equal((await verify42(b.origin)).status, 200, 'sidecar-b still on its own policy');
    // A real login through the BFF after the outage works, and the session is honoured by a sidecar.
    const login = await browserLogin({ start: `${bff.origin}/auth/login`, user: 'after-outage' });
    assert.equal(login.status, 302, login.last.body.slice(0, 200));
    const viaSidecar = await fetch(`${b.origin}/auth/verify`, { headers: { ...verifyHeaders, cookie: `goldpath=${login.sessionCookie}` } });
    assert.equal(viaSidecar.status, 200);
  });
});
