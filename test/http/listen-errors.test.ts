// A process that cannot listen says so in one line naming the variables that choose the address,
// not Node's `getaddrinfo ENOTFOUND …` / `listen EADDRINUSE …` (which name a syscall, not HOST or
// PORT), and exits non-zero without a stack trace. Real processes, with a port held by this test.
import assert from 'node:assert/strict';
import { exitOf, runCli, type Runtime } from '../helpers/process.ts';
import { freePort, heldPort } from '../helpers/redis.ts';
import { TEST_KEYS } from '../helpers/sessions.ts';

/** 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no machine has it. */
const NOT_MINE = '192.0.2.1';

async function env(command: string, port: number, host: string): Promise<Record<string, string>> {
  return {
    GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), GOLDPATH_CLIENT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'info', HOST: host, PORT: String(port),
    // No redis-server needed: the processes fail before they would use it.
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    GOLDPATH_IDP_ISSUER: command === 'dev-idp' ? `http://localhost:${port}` : `http://localhost:${await freePort()}`,
  };
}

/** Runs the command to its end: its exit code and the one line it printed that is not a JSON log line. */
async function failure(runtime: Runtime, command: string, e: Record<string, string>): Promise<{ code: number | null; line: string }> {
  const child = runCli(runtime, [command], e);
  const { code } = await exitOf(child, 30_000);
  const out = child.output();
  assert.doesNotMatch(out, /^\s+at /m, `a stack trace:\n${out}`);
  const lines = out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{') && !l.startsWith('oidc-provider WARNING'));
  assert.equal(lines.length, 1, `expected one line:\n${out}`);
  return { code, line: lines[0]! };
}

describe('a process that cannot listen names HOST and PORT', function () {
  this.timeout(90_000);
  const inUse = heldPort();

  for (const [runtime, command] of [['node', 'verify'], ['node', 'bff'], ['node', 'dev-idp'], ['deno', 'verify']] as [Runtime, string][]) {
    it(`${command} under ${runtime}: a port in use`, async function () {
      const r = await failure(runtime, command, await env(command, inUse(), '127.0.0.1'));
      assert.notEqual(r.code, 0);
      assert.equal(r.line, `goldpath ${command}: cannot listen on 127.0.0.1:${inUse()} (HOST=127.0.0.1, PORT=${inUse()}): ` +
        'the address is in use (another process listens on that port); set PORT to a free port');
    });
  }

  it('verify: a HOST that does not resolve', async function () {
    const port = await freePort();
    const r = await failure('node', 'verify', await env('verify', port, 'no-such-host.invalid'));
    assert.notEqual(r.code, 0);
    assert.equal(r.line, `goldpath verify: cannot listen on no-such-host.invalid:${port} (HOST=no-such-host.invalid, PORT=${port}): ` +
      'the host name does not resolve to an address');
  });

  it('bff and dev-idp: a HOST this machine does not have', async function () {
    for (const command of ['bff', 'dev-idp']) {
      const port = await freePort();
      const r = await failure('node', command, await env(command, port, NOT_MINE));
      assert.notEqual(r.code, 0);
      assert.equal(r.line, `goldpath ${command}: cannot listen on ${NOT_MINE}:${port} (HOST=${NOT_MINE}, PORT=${port}): ` +
        'this machine has no network interface with that address');
    }
  });

  it('an unset PORT is named as unset, with the default it fell back to', async function () {
    const e = await env('verify', 0, NOT_MINE);
    delete e['PORT'];
    const r = await failure('node', 'verify', e);
    assert.match(r.line, new RegExp(`^goldpath verify: cannot listen on ${NOT_MINE}:3002 \\(HOST=${NOT_MINE}, PORT unset: 3002\\): `));
  });

  it('demo: names the part and the variables that move it', async function () {
    const issuer = `http://localhost:${await freePort()}`;
    const r = await failure('node', 'demo', { ...await env('demo', await freePort(), NOT_MINE), GOLDPATH_IDP_ISSUER: issuer });
    assert.notEqual(r.code, 0);
    assert.match(r.line, new RegExp(`^goldpath demo: the dev IdP cannot listen on ${NOT_MINE}:\\d+ \\(HOST=${NOT_MINE}, GOLDPATH_IDP_ISSUER=${issuer}\\): ` +
      'this machine has no network interface with that address$'));
  });

  it('demo: a dev IdP port in use is moved on the issuer\'s own host, never onto the page\'s (whose cookies the API gets)', async function () {
    const issuer = `http://127.0.0.1:${inUse()}`;
    const r = await failure('node', 'demo', { ...await env('demo', await freePort(), '127.0.0.1'), GOLDPATH_IDP_ISSUER: issuer });
    assert.notEqual(r.code, 0);
    assert.equal(r.line, `goldpath demo: the dev IdP cannot listen on 127.0.0.1:${inUse()} (HOST=127.0.0.1, GOLDPATH_IDP_ISSUER=${issuer}): ` +
      'the address is in use (another process listens on that port); give it another port: GOLDPATH_IDP_ISSUER=http://127.0.0.1:<free port>');
  });
});
