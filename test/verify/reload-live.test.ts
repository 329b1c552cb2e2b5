// `goldpath verify` as deployed (a child process under Node and under Deno, a real redis-server,
// a real dev IdP for the IdP a reload adds) answering a steady stream of requests on several
// connections while SIGHUPs swap routes.yaml, pdp.yaml, idps.yaml and the policy back and forth,
// with a broken set in between: every answer is the old version's or the new one's whole (never
// a 5xx, a dropped connection, or new routes with old rules), and the first request after the
// process logs the outcome is answered by the files it names.
import assert from 'node:assert/strict';
import http from 'node:http';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionSecrets } from '../../src/session/types.ts';
import { REPO_ROOT, runCli, waitHealthy, type Runtime } from '../helpers/process.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';

const CORP_SECRET = 'corp-client-secret-for-the-live-reload-test';
type Files = Record<'routes.yaml' | 'pdp.yaml' | 'idps.yaml' | 'policy.polar', string>;

describe('verify reload under live traffic (real process)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let corp: DevIdp;
  before(async () => {
    redis = await RedisServer.start();
    corp = await startDevIdp({ port: 0, clients: [{ client_id: 'goldpath', client_secret: CORP_SECRET, redirect_uris: ['http://localhost:8080/auth/callback/corp'] }], log: silentLogger, dangerouslyAllowInsecureHttp: true });
  });
  after(async () => {
    await corp?.close();
    await redis?.stop();
  });

  for (const runtime of ['node', 'deno'] as Runtime[]) {
    it(`under ${runtime}: each answer is one version's, and the first after the log line is the new one's`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'goldpath-reload-live-'));
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      const read = (n: keyof Files) => readFileSync(join(dir, n), 'utf8');
      const A: Files = { 'routes.yaml': read('routes.yaml'), 'pdp.yaml': read('pdp.yaml'), 'idps.yaml': read('idps.yaml'), 'policy.polar': read('policy.polar') };
      const audiences = '    audiences:\n      ordersaud: { resource: "https://api.example.test/orders", scopes: [orders.read] }\n      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }\n';
      // B: orders takes the `ordersaud` token and a `view` rule, which only B's policy allows (B's
      // rules with A's policy, or the reverse, deny); reports turns public; a route is added; an
      // IdP is added (discovered during the reload), with the audience every IdP now needs.
      const B: Files = {
        'routes.yaml': A['routes.yaml'].replace('    prefix: /api/orders\n', '    prefix: /api/orders\n    audience: ordersaud\n')
          .replace('    audience: reports\n', '    audience: reports\n    auth: public\n')
          .replace('routes:\n', 'routes:\n  - name: v9\n    prefix: /api/v9\n    auth: public\n'),
        'pdp.yaml': A['pdp.yaml'].replace('/api/orders/:id\n    action: read', '/api/orders/:id\n    action: view'),
        'idps.yaml': A['idps.yaml'].replace(/    audiences:\n.*\n/, audiences) +
          `  corp:\n    issuer: ${corp.issuer}\n    client_id: goldpath\n    client_secret: ${CORP_SECRET}\n    dangerously_allow_insecure_http: true\n${audiences}`,
        'policy.polar': A['policy.polar'].replace('allow(user: User, "read", _order: Order)', 'allow(user: User, "view", _order: Order)'),
      };
      for (const n of Object.keys(A) as (keyof Files)[]) assert.notEqual(A[n], B[n], n);
      const write = (files: Files) => { for (const [n, text] of Object.entries(files)) writeFileSync(join(dir, n), text); };

      const port = await freePort();
      const env = {
        GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: 'http://localhost:8080', GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','),
        TEST_CLIENT_SECRET: 's3cret', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
      };
      const store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
      const tokens = (sub: string): SessionSecrets['tokens'] => Object.fromEntries(['', 'reports', 'ordersaud'].map((a) => [a, { value: `at-${sub}-${a || 'login'}`, type: 'Bearer', expiresAt: Date.now() + 3_600_000, scope: undefined }]));
      const reader = (await store.create(newSession({ sub: 'rd', roles: ['reader'], tokens: tokens('rd') }))).cookieValue;
      const corpUser = (await store.create(newSession({ sub: 'cu', idp: 'corp', roles: ['reader'], tokens: tokens('cu') }))).cookieValue;
      // What each request gets under A and under B: status and Authorization.
      const kinds = [
        { uri: '/api/orders/1', cookie: reader, A: '200 Bearer at-rd-login', B: '200 Bearer at-rd-ordersaud' },
        { uri: '/api/reports', cookie: reader, A: '200 Bearer at-rd-reports', B: '200 Bearer at-rd-reports' },
        { uri: '/api/reports', A: '401 ', B: '200 ' },
        { uri: '/api/orders/1', cookie: corpUser, A: '401 ', B: '200 Bearer at-cu-ordersaud' },
        { uri: '/api/v9/x', A: '404 ', B: '200 ' },
      ];
      const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
      const ask = (uri: string, cookie: string | undefined, keepAlive: boolean) => new Promise<string>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1', port, path: '/auth/verify', agent: keepAlive ? agent : false, headers: {
            'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http',
            ...(cookie === undefined ? {} : { Cookie: `goldpath=${cookie}` }),
          },
        }, (res) => {
          res.resume();
          res.on('end', () => resolve(`${res.statusCode} ${res.headers['authorization'] ?? ''}`));
        });
        req.on('error', reject);
        req.setTimeout(5_000, () => req.destroy(new Error('no answer in 5 s')));
        req.end();
      });
      const child = runCli(runtime, ['verify'], env);
      const problems: string[] = [];
      let answered = 0;
      let stop = false;
      try {
        await waitHealthy(`http://127.0.0.1:${port}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
        const expectAll = async (version: 'A' | 'B', when: string) => {
          for (const k of kinds) {
            const got = await ask(k.uri, k.cookie, false);
            if (got !== k[version]) problems.push(`${when}: ${k.uri} ${k.cookie ? '(session)' : ''} got "${got}", want ${version}'s "${k[version]}"`);
          }
        };
        await expectAll('A', 'at start');
        const traffic = [0, 1, 2, 3, 4, 5].map(async (w) => {
          for (let i = w; !stop; i++) {
            const k = kinds[i % kinds.length]!;
            try {
              const got = await ask(k.uri, k.cookie, i % 2 === 0);
              answered++;
              if (got !== k.A && got !== k.B) problems.push(`during reloads: ${k.uri} got "${got}"`);
            } catch (err) {
              problems.push(`during reloads: ${k.uri}: ${(err as Error).message}`);
            }
          }
        });
        const outcomes = () => child.output().match(/configuration reloaded|reload rejected/g) ?? [];
        const sighup = async () => {
          const before = outcomes().length;
          child.proc.kill('SIGHUP');
          const deadline = Date.now() + 15_000;
          while (outcomes().length === before) {
            assert.ok(Date.now() < deadline, `no reload outcome logged:\n${child.output()}`);
            await new Promise((r) => setImmediate(r));
          }
          return outcomes().at(-1);
        };
        for (let round = 0; round < 8; round++) {
          const next = round % 2 === 0 ? 'B' : 'A';
          write(next === 'B' ? B : A);
          assert.equal(await sighup(), 'configuration reloaded');
          await expectAll(next, `first requests after reload ${round} (to ${next})`);
          if (round === 3) {
            // A broken set (a Polar slip next to a good routes.yaml edit): rejected, A keeps serving.
            write({ ...B, 'policy.polar': `${B['policy.polar']}\nallow(this is not polar` });
            assert.equal(await sighup(), 'reload rejected');
            await expectAll('A', 'after a rejected reload');
            write(A);
          }
        }
        stop = true;
        await Promise.all(traffic);
        assert.ok(answered > 100, `only ${answered} requests were answered during the reloads`);
        assert.deepEqual(problems.slice(0, 20), []);
        assert.equal(child.proc.exitCode, null, child.output());
        assert.doesNotMatch(child.output(), /MaxListenersExceededWarning|"level":"fatal"/);
      } finally {
        stop = true;
        agent.destroy();
        await child.stop();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
