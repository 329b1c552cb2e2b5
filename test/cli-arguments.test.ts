// `goldpath <command> --help` and stray arguments, as users type them: real processes. The servers
// take no arguments (the environment configures them), so `--help` must print the command's usage
// and start nothing, and anything else must be refused (exit 2) rather than ignored: `goldpath bff
// --port 9999` used to start on 3001. Each runs with an environment it would start with, so a
// process that ignored its arguments would still be running when the test gives up on it.
import assert from 'node:assert/strict';
import { exitOf, runCli, type Runtime } from './helpers/process.ts';
import { freePort } from './helpers/redis.ts';
import { TEST_KEYS } from './helpers/sessions.ts';

const DEFAULT_PORTS: Record<string, string> = { verify: '3002', bff: '3001', 'dev-idp': '4000', demo: '8080' };

async function startableEnv(command: string): Promise<Record<string, string>> {
  const port = String(await freePort());
  return {
    GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), GOLDPATH_CLIENT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: port,
    // No redis-server: verify and bff listen anyway (and report the store unreachable).
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    GOLDPATH_IDP_ISSUER: command === 'dev-idp' ? `http://localhost:${port}` : `http://localhost:${await freePort()}`,
  };
}

async function run(runtime: Runtime, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = runCli(runtime, args, await startableEnv(args[0]!));
  const { code } = await exitOf(child, runtime === 'deno' ? 30_000 : 10_000);
  return { code, out: child.output() };
}

describe('goldpath <command> arguments', function () {
  this.timeout(120_000);

  for (const command of ['verify', 'bff', 'dev-idp', 'demo']) {
    it(`${command} --help and -h print its usage (environment, default port) and start nothing`, async function () {
      for (const flag of ['--help', '-h']) {
        const r = await run('node', [command, flag]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, new RegExp(`^usage: goldpath ${command}\\n`), r.out);
        assert.match(r.out, /PORT, HOST/);
        assert.match(r.out, /LOG_LEVEL/);
        assert.ok(r.out.includes(DEFAULT_PORTS[command]!), `no default port in:\n${r.out}`);
        assert.doesNotMatch(r.out, /"level"/, 'a log line: something started');
      }
    });

    it(`${command} refuses an unknown option or an argument with exit 2, naming it`, async function () {
      const option = await run('node', [command, '--port', '9999']);
      assert.equal(option.code, 2, option.out);
      assert.match(option.out, new RegExp(`^goldpath ${command}: unknown option "--port"`), option.out);
      assert.match(option.out, new RegExp(`usage: goldpath ${command}`));
      const extra = await run('node', [command, 'extra']);
      assert.equal(extra.code, 2, extra.out);
      assert.match(extra.out, new RegExp(`^goldpath ${command}: unexpected argument "extra"`), extra.out);
    });
  }

  it('the sidecars do the same under Deno', async function () {
    for (const command of ['verify', 'bff']) {
      const help = await run('deno', [command, '--help']);
      assert.equal(help.code, 0, help.out);
      assert.match(help.out, new RegExp(`^usage: goldpath ${command}\\n`), help.out);
      const bad = await run('deno', [command, '--port', '9999']);
      assert.equal(bad.code, 2, bad.out);
      assert.match(bad.out, /unknown option "--port"/);
    }
  });

  it('goldpath with no command prints the usage and exits 2; --help exits 0', async function () {
    const none = runCli('node', [], {});
    assert.equal((await exitOf(none)).code, 2);
    assert.match(none.output(), /usage: goldpath <command>/);
    const help = runCli('node', ['--help'], {});
    assert.equal((await exitOf(help)).code, 0);
    assert.match(help.output(), /usage: goldpath <command>/);
  });
});
