// A policy whose problem shows only when it is loaded (an inline query, `?=`, that fails) is loaded
// once per start or reload, not twice: its problems are every problem there is (the files were
// valid), so no second round of `goldpath check` runs to look for more. An inline query runs at
// every load, on the event loop, and one that loops takes Oso's fixed 30 s to fail: a second
// look froze the process as long again. Counted here at Oso's own load call.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Oso } from 'oso';
import { startBffProcess } from '../../src/bff/server.ts';
import { ConfigError, formatProblem } from '../../src/errors.ts';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { startVerify } from '../../src/verify/server.ts';
import { configDir } from './helpers.ts';

const FAILING_QUERY = 'allow(_user: User, "read", _order: Order);\n?= 1 = 2;\n';

/** Calls of Oso's load (every engine the adapter makes loads through it) while `run` runs. */
async function osoLoads(run: () => Promise<unknown>): Promise<number> {
  const proto = Oso.prototype as unknown as { loadSources: (...a: unknown[]) => Promise<void> };
  const original = proto.loadSources;
  let calls = 0;
  proto.loadSources = function (this: unknown, ...a: unknown[]) {
    calls++;
    return original.apply(this, a);
  };
  try {
    await run();
  } finally {
    proto.loadSources = original;
  }
  return calls;
}

describe('config: a policy that fails only when loaded is loaded once, not again to look for more problems', function () {
  this.timeout(20_000);
  const envOf = (dir: string) => ({
    GOLDPATH_CONFIG_DIR: dir, REDIS_URL: 'memory://', GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'),
    GOLDPATH_PUBLIC_URL: 'http://localhost:8080', PORT: '0', HOST: '127.0.0.1',
  });
  const refusedFor = (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    const lines = err.problems.map(formatProblem);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /app\.polar/);
    return true;
  };

  for (const [name, start] of Object.entries({ verify: startVerify, bff: startBffProcess })) {
    it(`${name}: at startup, and at a reload`, async () => {
      const broken = await configDir({ extra: { 'app.polar': FAILING_QUERY } });
      const env = envOf(broken);
      const store = createSessionStore({ url: 'memory://', settings: loadSettings(env), log: silentLogger });
      const loads = await osoLoads(() => assert.rejects(start({ env, store, log: silentLogger }), refusedFor));
      assert.equal(loads, 1, 'the policy was loaded again after it failed');

      const good = await configDir();
      const p = await start({ env: envOf(good), store, log: silentLogger });
      try {
        await writeFile(`${good}/app.polar`, FAILING_QUERY);
        let reloaded: boolean | undefined;
        // A reload tries a policy with an inline query in a worker (policy-trial.ts), whose refusal
        // is the whole answer: nothing loads it on this thread (another look would).
        assert.equal(await osoLoads(async () => { reloaded = await p.reload(); }), 0, 'the policy was loaded again after it failed');
        assert.equal(reloaded, false);
      } finally {
        await p.close();
      }
    });
  }
});
