// `goldpath dev-idp` as a process: a SIGHUP (which verify, bff and demo take as "reload", so scripts
// send it to every goldpath process) must not end it; and its environment is checked as verify's
// and bff's is, every problem at once, each naming its variable (it used to stop at the first, as
// `Invalid URL`, pino's `default level:bogus must be included in custom levels` or a raw ENOENT,
// and took PORT=1e4 for 10000).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitOf, runCli, waitHealthy } from '../helpers/process.ts';
import { freePort } from '../helpers/redis.ts';

/** The compose config (its dev IdP entry reads GOLDPATH_IDP_ISSUER), which the dev IdP can serve. */
const BASE = { GOLDPATH_CONFIG_DIR: 'compose/config', GOLDPATH_CLIENT_SECRET: 'x'.repeat(32), HOST: '127.0.0.1', LOG_LEVEL: 'info' };

/** The `environment: KEY: message` lines a process printed, by key. */
function environmentProblems(output: string): Map<string, string> {
  const lines = output.split('\n').map((l) => /^\s*(environment: ([A-Z_]+): .*)$/.exec(l)).filter((m) => m !== null);
  return new Map(lines.map((m) => [m[2]!, m[1]!]));
}

describe('goldpath dev-idp (process)', function () {
  this.timeout(60_000);

  it('keeps serving after SIGHUP and logs one line saying it ignored it', async function () {
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const child = runCli('node', ['dev-idp'], { ...BASE, PORT: String(port), GOLDPATH_IDP_ISSUER: issuer });
    try {
      await waitHealthy(`${issuer}/.well-known/openid-configuration`, child);
      child.proc.kill('SIGHUP');
      const deadline = Date.now() + 5000;
      while (!/SIGHUP ignored/.test(child.output()) && child.proc.exitCode === null && child.proc.signalCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(child.proc.signalCode, null, `the dev IdP died of ${child.proc.signalCode}:\n${child.output()}`);
      assert.equal(child.proc.exitCode, null, child.output());
      const line = child.output().split('\n').filter((l) => l.includes('SIGHUP'));
      assert.equal(line.length, 1, child.output());
      assert.match(line[0]!, /"level":"warn".*SIGHUP ignored: .*restart it to apply changes/);
      assert.equal((await fetch(`${issuer}/.well-known/openid-configuration`)).status, 200);
    } finally {
      await child.stop();
    }
  });

  it('survives a SIGHUP while it is starting, and says it ignored it once it serves', async function () {
    const port = await freePort();
    const issuer = `http://localhost:${port}`;
    const child = runCli('node', ['dev-idp'], { ...BASE, PORT: String(port), GOLDPATH_IDP_ISSUER: issuer });
    try {
      // Node runs goldpath's code by now, but the dev IdP is still loading oidc-provider and idps.yaml.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(child.proc.exitCode, null, child.output());
      child.proc.kill('SIGHUP');
      await waitHealthy(`${issuer}/.well-known/openid-configuration`, child);
      const deadline = Date.now() + 5000;
      while (!/SIGHUP ignored/.test(child.output())) {
        assert.ok(Date.now() < deadline, `no line about the SIGHUP:\n${child.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(child.proc.signalCode, null, child.output());
    } finally {
      await child.stop();
    }
  });

  it('refuses the shared variables with the messages verify gives, all at once', async function () {
    const env = { ...BASE, PORT: '1e4', GOLDPATH_PUBLIC_URL: 'garbage', LOG_LEVEL: 'bogus', HOST: 'two words' };
    const idp = runCli('node', ['dev-idp'], env);
    const verify = runCli('node', ['verify'], env);
    assert.equal((await exitOf(idp)).code, 1, idp.output());
    assert.equal((await exitOf(verify)).code, 1, verify.output());
    assert.match(idp.output(), /^goldpath: invalid configuration, not starting:$/m);
    const [mine, verifys] = [environmentProblems(idp.output()), environmentProblems(verify.output())];
    for (const key of ['PORT', 'GOLDPATH_PUBLIC_URL', 'LOG_LEVEL', 'HOST']) {
      assert.ok(mine.has(key), `dev-idp does not name ${key}:\n${idp.output()}`);
      assert.equal(mine.get(key), verifys.get(key));
    }
    // verify's own variables are none of the dev IdP's business.
    assert.ok(!mine.has('GOLDPATH_SESSION_KEYS'), idp.output());
    assert.doesNotMatch(idp.output(), /Invalid URL|custom levels|^\s+at /m);
  });

  it('names GOLDPATH_IDP_ISSUER and the TLS files it cannot read', async function () {
    const idp = runCli('node', ['dev-idp'], {
      ...BASE, PORT: String(await freePort()), GOLDPATH_IDP_ISSUER: 'not a url',
      GOLDPATH_DEV_IDP_TLS_CERT: '/nonexistent/dev-idp.crt', GOLDPATH_DEV_IDP_TLS_KEY: '/nonexistent/dev-idp.key',
    });
    assert.equal((await exitOf(idp)).code, 1, idp.output());
    const mine = environmentProblems(idp.output());
    assert.match(mine.get('GOLDPATH_IDP_ISSUER') ?? '', /"not a url"; expected an http\(s\) URL/, idp.output());
    assert.match(mine.get('GOLDPATH_DEV_IDP_TLS_CERT') ?? '', /cannot read \/nonexistent\/dev-idp\.crt: no such file/, idp.output());
    assert.match(mine.get('GOLDPATH_DEV_IDP_TLS_KEY') ?? '', /cannot read \/nonexistent\/dev-idp\.key: no such file/, idp.output());
    assert.doesNotMatch(idp.output(), /ENOENT|Invalid URL/);
  });

  it('names a TLS file that is a FIFO instead of blocking its start on reading it', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-idp-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'tls.crt')]);
      const idp = runCli('node', ['dev-idp'], {
        ...BASE, PORT: String(await freePort()), GOLDPATH_DEV_IDP_TLS_CERT: join(dir, 'tls.crt'), GOLDPATH_DEV_IDP_TLS_KEY: '/nonexistent/dev-idp.key',
      });
      assert.equal((await exitOf(idp, 10_000)).code, 1, idp.output());
      assert.match(environmentProblems(idp.output()).get('GOLDPATH_DEV_IDP_TLS_CERT') ?? '', /cannot read \S+tls\.crt: it is not a regular file/, idp.output());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
