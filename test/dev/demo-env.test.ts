// `goldpath demo` checks its environment as the other commands do: a bad value is named, with
// the variable, in the one "invalid configuration" format, never as a library's own message.
import assert from 'node:assert/strict';
import { exitOf, runCli } from '../helpers/process.ts';
import { freePort } from '../helpers/redis.ts';

describe('goldpath demo environment', function () {
  this.timeout(30_000);

  it('an unknown LOG_LEVEL is named as verify names it, not in pino\'s words', async function () {
    const child = runCli('node', ['demo'], {
      LOG_LEVEL: 'bogus', HOST: '127.0.0.1', PORT: String(await freePort()),
      GOLDPATH_IDP_ISSUER: `http://localhost:${await freePort()}`,
    });
    const { code } = await exitOf(child, 20_000);
    assert.equal(code, 1, child.output());
    assert.match(child.output(), /environment: LOG_LEVEL: is "bogus"; expected one of fatal, error, warn, info, debug, trace, silent/);
    assert.doesNotMatch(child.output(), /custom levels/);
  });

  it('a GOLDPATH_IDP_ISSUER that is not a URL is named, as dev-idp names it, not as "Invalid URL"', async function () {
    for (const issuer of ['idp.example', 'http://127.0.0.1:99999']) {
      const child = runCli('node', ['demo'], { HOST: '127.0.0.1', PORT: String(await freePort()), GOLDPATH_IDP_ISSUER: issuer });
      const { code } = await exitOf(child, 20_000);
      assert.equal(code, 1, child.output());
      assert.match(child.output(), new RegExp(`environment: GOLDPATH_IDP_ISSUER: is "${issuer}"; expected an http\\(s\\) URL`), child.output());
      assert.doesNotMatch(child.output(), /Invalid URL/);
    }
  });
});

describe('goldpath demo PORT', function () {
  it('a PORT the page cannot have is named as PORT, not as a GOLDPATH_PUBLIC_URL the user never set', async function () {
    const { startDemo } = await import('../../src/dev/demo.ts');
    const { silentLogger } = await import('../../src/log.ts');
    const { ConfigError } = await import('../../src/errors.ts');
    for (const port of ['abc', '99999', '0']) {
      await assert.rejects(startDemo({ env: { PORT: port, HOST: '127.0.0.1', GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${await freePort()}` }, log: silentLogger, signals: false }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.deepEqual(err.problems.map((p) => p.key), ['PORT'], `PORT=${port}: ${err.message}`);
          return true;
        });
    }
  });
});

describe('goldpath demo defaults', function () {
  it('the dev IdP is on another host than the page (127.0.0.1, localhost), so its cookies never reach the page nor the API', async function () {
    const { demoEnv } = await import('../../src/dev/demo.ts');
    const { silentLogger } = await import('../../src/log.ts');
    const env = demoEnv({}, silentLogger);
    const idp = new URL(env['GOLDPATH_IDP_ISSUER']!);
    const page = new URL(env['GOLDPATH_PUBLIC_URL']!);
    assert.equal(idp.href, 'http://127.0.0.1:4000/');
    assert.equal(page.href, 'http://localhost:8080/');
    assert.notEqual(idp.hostname, page.hostname, 'browsers send a host\'s cookies to all its ports');
  });
});

describe('goldpath demo readiness', function () {
  this.timeout(30_000);

  /** Starts the demo in process with `env` and returns what it logged by the time it was up. */
  async function demoLines(env: Record<string, string>): Promise<string[]> {
    const { startDemo } = await import('../../src/dev/demo.ts');
    const { capturingLogger } = await import('../helpers/idp-bff.ts');
    const { log, lines } = capturingLogger('info');
    const demo = await startDemo({
      env: { HOST: '127.0.0.1', PORT: String(await freePort()), GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${await freePort()}`, ...env },
      log, signals: false,
    });
    const said = [...lines];
    await demo.close();
    return said;
  }

  it('says it is ready only when its session store answers: with REDIS_URL pointing at nothing, it says so instead', async function () {
    const up = await demoLines({});
    assert.ok(up.some((l) => l.includes('goldpath demo ready')), up.join('\n'));
    const down = await demoLines({ REDIS_URL: `redis://:hunter2@127.0.0.1:${await freePort()}` });
    assert.ok(!down.some((l) => l.includes('goldpath demo ready')), 'no ready line');
    const said = down.find((l) => l.includes('does not answer'));
    assert.ok(said, down.join('\n'));
    assert.match(said, /REDIS_URL/);
    assert.doesNotMatch(down.join('\n'), /hunter2/, 'the URL\'s password is never logged');
  });

  it('nor when the BFF cannot reach the dev IdP at its issuer (the dev IdP listens on HOST, the issuer names another address)', async function () {
    // 127.0.0.2 is loopback too, where nothing listens: as HOST=[::1] with the default issuer 127.0.0.1.
    const issuer = `http://127.0.0.2:${await freePort()}`;
    const lines = await demoLines({ GOLDPATH_IDP_ISSUER: issuer });
    assert.ok(!lines.some((l) => l.includes('goldpath demo ready')), lines.join('\n'));
    const said = lines.find((l) => l.includes('cannot reach the dev IdP'));
    assert.ok(said, lines.join('\n'));
    assert.ok(said.includes(`GOLDPATH_IDP_ISSUER=${issuer}`), said);
  });
});
