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
