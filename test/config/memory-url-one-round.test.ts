// verify and bff refuse REDIS_URL=memory:// (their own memory would be a store no other process
// sees). They used to say so only once every other problem was fixed: a first start named the
// files' problems, the next one REDIS_URL, the one after the policy's. SPEC 3: all errors at once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigError, formatProblem } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { startBffProcess } from '../../src/bff/server.ts';
import { startVerify } from '../../src/verify/server.ts';
import { BASE_ROUTES, configDir } from './helpers.ts';

const env = (dir: string) => ({
  GOLDPATH_CONFIG_DIR: dir, REDIS_URL: 'memory://', GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'),
  GOLDPATH_PUBLIC_URL: 'http://localhost:8080', PORT: '0', HOST: '127.0.0.1',
});

const starts = { verify: startVerify, bff: startBffProcess };

describe('config: REDIS_URL=memory:// in verify or bff is named with every other problem', function () {
  this.timeout(20_000);
  for (const [name, start] of Object.entries(starts)) {
    it(`${name}: with a routes.yaml problem, and with a policy that does not load`, async () => {
      const broken = await configDir({ routes: BASE_ROUTES.replace('prefix: /api/public', 'prefix: /api/public/'), extra: { 'app.polar': 'allow(_u: User, "read", _o: Order) if ;\n' } });
      const policyOnly = await configDir({ extra: { 'app.polar': 'allow(_u: User, "read", _o: Order) if ;\n' } });
      for (const [dir, want] of [[broken, ['environment: REDIS_URL', 'routes.yaml:5: routes[1].prefix', 'app.polar:1: policies']], [policyOnly, ['environment: REDIS_URL', 'app.polar:1: policies']]] as const) {
        await assert.rejects(start({ env: env(dir), log: silentLogger }), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          const lines = err.problems.map(formatProblem);
          assert.equal(lines.length, want.length, lines.join('\n'));
          want.forEach((w, i) => assert.ok(lines[i]!.includes(w), `${lines[i]} should name ${w}`));
          return true;
        });
      }
    });
  }
});
