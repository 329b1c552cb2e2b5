// `goldpath bff` as users run it: a real process under Node and under Deno 2, a real dev IdP and
// redis-server, a browser-like login, /auth/session and logout; SIGHUP reload.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { startDevIdp, devIdpClientFor, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Runtime } from '../helpers/process.ts';
import { browserLogin, httpCall } from '../helpers/login.ts';
import { devIdpsYaml } from '../helpers/idp-bff.ts';

const SECRET = randomBytes(24).toString('base64url');

const idpsYaml = devIdpsYaml;

for (const runtime of ['node', 'deno'] as Runtime[]) {
  describe(`bff process under ${runtime}`, function () {
    this.timeout(60_000);
    let redis: RedisServer;
    let idp: DevIdp;
    let dir: string;
    let port: number;
    let child: ReturnType<typeof runCli>;
    let origin: string;

    before(async function () {
      redis = await RedisServer.start();
      port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      idp = await startDevIdp({
        port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true,
        clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: SECRET, origin })],
        audiences: { 'https://api.example.test/reports': { scopes: ['reports.read'] } },
      });
      dir = mkdtempSync(join(tmpdir(), 'goldpath-bff-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'idps.yaml'), idpsYaml(idp.issuer));
      child = runCli(runtime, ['bff'], {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: origin,
        GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'), TEST_CLIENT_SECRET: SECRET,
        PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
      });
      await waitHealthy(`${origin}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
    });
    after(async function () {
      await child?.stop();
      await idp?.close();
      await redis?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('logs in, reports the session and logs out', async () => {
      assert.equal((await httpCall(`${origin}/readyz`)).status, 200);
      const r = await browserLogin({ start: `${origin}/auth/login?return_to=/hello`, user: 'admin' });
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
      assert.equal(r.location, `${origin}/hello`);
      const info = await httpCall(`${origin}/auth/session`, { jar: r.jar });
      const body = JSON.parse(info.body);
      assert.deepEqual(body.user.roles, ['admin', 'reader']);
      const out = await httpCall(`${origin}/auth/logout`, { method: 'POST', jar: r.jar, headers: { 'x-csrf-token': body.csrf_token, accept: 'application/json' } });
      assert.equal(out.status, 200);
      assert.ok(JSON.parse(out.body).logout_url.startsWith(`${idp.issuer}/session/end?`));
      assert.equal((await httpCall(`${origin}/auth/session`, { jar: r.jar })).status, 401);
      const logs = child.output();
      assert.ok(logs.includes('login succeeded'));
      assert.ok(!logs.includes(r.sessionCookie!), 'no cookie value in the process output');
      assert.ok(!logs.includes(SECRET), 'no client secret in the process output');
    });

    it('/metrics carries the process\'s memory, CPU and event-loop lag, as the sidecar\'s does', async () => {
      const text = (await httpCall(`${origin}/metrics`)).body;
      for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_max_seconds']) {
        const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
        assert.ok(m, `${name} in the BFF's /metrics`);
        if (name !== 'nodejs_eventloop_lag_max_seconds') assert.ok(Number(m[1]) > 0, `${name} is ${m[1]}`);
      }
    });

    it('a client that resets its connection mid-request leaves only JSON log lines: no stack trace', async () => {
      const before = child.output().length;
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve) => {
          const s = connect(port, '127.0.0.1', () => {
            s.write('GET /auth/login HTTP/1.1\r\nHost: x\r\n\r\n');
            setTimeout(() => { s.resetAndDestroy(); resolve(); }, i % 3);
          });
          s.on('error', () => {});
        });
      }
      await new Promise((res) => setTimeout(res, 500));
      assert.equal((await httpCall(`${origin}/healthz`)).status, 200, 'still serving');
      const lines = child.output().slice(before).split('\n').filter((l) => l.trim() !== '');
      const other = lines.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } });
      assert.deepEqual(other, [], 'every line of output is a JSON log line');
    });

    it('a reload whose policy does not load is rejected, as the sidecar and goldpath check reject it', async () => {
      const policy = join(dir, 'policy.polar');
      const good = readFileSync(policy, 'utf8');
      const before = child.output().length;
      writeFileSync(policy, `${good}\nallow(user, "x", _r) if user.roles.(;\n`);
      try {
        child.proc.kill('SIGHUP');
        await new Promise((res) => setTimeout(res, 1500));
        const line = child.output().slice(before).split('\n').find((l) => l.includes('reload rejected')) ?? '';
        assert.match(line, /policy\.polar:\d+: policies: /, child.output().slice(before));
      } finally {
        writeFileSync(policy, good);
      }
    });

    it('a reload with a broken YAML file and a broken policy names both, as the sidecar does', async () => {
      const policy = join(dir, 'policy.polar');
      const routes = join(dir, 'routes.yaml');
      const [goodPolicy, goodRoutes] = [readFileSync(policy, 'utf8'), readFileSync(routes, 'utf8')];
      const before = child.output().length;
      writeFileSync(policy, `${goodPolicy}\nallow(user, "x", _r) if user.roles.(;\n`);
      writeFileSync(routes, 'routes: [\n');
      try {
        child.proc.kill('SIGHUP');
        await new Promise((res) => setTimeout(res, 1500));
        const line = child.output().slice(before).split('\n').find((l) => l.includes('reload rejected')) ?? '';
        assert.match(line, /routes\.yaml:1: routes: /, child.output().slice(before));
        assert.match(line, /policy\.polar:\d+: policies: /, child.output().slice(before));
      } finally {
        writeFileSync(policy, goodPolicy);
        writeFileSync(routes, goodRoutes);
      }
    });

    it('a reload adding an IdP whose issuer cannot be discovered is rejected, naming the IdP and the cause; sign-ins go on', async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      const before = child.output().length;
      writeFileSync(join(dir, 'idps.yaml'), `${idpsYaml(idp.issuer)}  corp:\n    issuer: ${closed}\n    client_id: goldpath\n` +
        '    client_secret: ${TEST_CLIENT_SECRET}\n    dangerously_allow_insecure_http: true\n' +
        '    audiences:\n      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }\n');
      try {
        child.proc.kill('SIGHUP');
        const deadline = Date.now() + 10_000;
        while (!/reload rejected|configuration reloaded/.test(child.output().slice(before))) {
          assert.ok(Date.now() < deadline, child.output().slice(before));
          await new Promise((res) => setTimeout(res, 100));
        }
        const line = child.output().slice(before).split('\n').find((l) => l.includes('reload rejected')) ?? '';
        // Node says ECONNREFUSED, Deno "Connection refused".
        assert.match(line, new RegExp(`idps\\.corp\\.issuer: ${closed} cannot be discovered \\(.*(ECONNREFUSED|Connection refused)`, 'i'), child.output().slice(before));
        assert.ok(!child.output().includes(SECRET), 'no client secret in the process output');
        assert.equal((await httpCall(`${origin}/readyz`)).status, 200);
        const r = await browserLogin({ start: `${origin}/auth/login`, user: 'carl' });
        assert.equal(r.status, 302, r.last.body.slice(0, 300));
      } finally {
        writeFileSync(join(dir, 'idps.yaml'), idpsYaml(idp.issuer));
      }
    });

    it('reloads idps.yaml on SIGHUP and keeps the old config when the new one is broken', async () => {
      writeFileSync(join(dir, 'idps.yaml'), 'default: nope\nidps: {}\n');
      child.proc.kill('SIGHUP');
      await new Promise((res) => setTimeout(res, 500));
      assert.match(child.output(), /reload rejected/);
      const r = await browserLogin({ start: `${origin}/auth/login`, user: 'bob' });
      assert.equal(r.status, 302, 'still serving with the old config');
      writeFileSync(join(dir, 'idps.yaml'), idpsYaml(idp.issuer));
      child.proc.kill('SIGHUP');
      await new Promise((res) => setTimeout(res, 500));
      assert.match(child.output(), /configuration reloaded/);
      const again = await browserLogin({ start: `${origin}/auth/login`, user: 'bob' });
      assert.equal(again.status, 302);
    });
  });
}

describe('bff start', function () {
  this.timeout(30_000);
  it('refuses a configuration whose policy does not load, naming it with every other problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-bff-polar-'));
    try {
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'idps.yaml'), idpsYaml('https://idp.example.test'));
      writeFileSync(join(dir, 'policy.polar'), 'allow(user, "read", _r) if user.roles.(;\n');
      const { startBffProcess } = await import('../../src/bff/server.ts');
      await assert.rejects(startBffProcess({
        env: {
          GOLDPATH_CONFIG_DIR: dir, REDIS_URL: 'redis://127.0.0.1:1', GOLDPATH_PUBLIC_URL: 'http://localhost:8080',
          GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'), TEST_CLIENT_SECRET: SECRET, LOG_LEVEL: 'silent',
        },
        log: silentLogger, port: 0, host: '127.0.0.1', signals: false,
      }), (err: Error) => {
        assert.match(err.message, /policy\.polar/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
