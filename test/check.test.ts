// `goldpath check` as users run it: a real process, files only, every problem at once.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/process.ts';

function check(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('node', ['dist/src/cli.js', 'check', ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH!, ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('goldpath check', function () {
  this.timeout(30_000);

  it('passes on compose/config (the demo and compose configuration)', function () {
    const r = check(['compose/config'], { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32) });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /OK/);
  });

  it('prints every problem of a broken config with file, line and key, and exits non-zero', function () {
    const r = check(['test/config/fixtures/broken']);
    assert.equal(r.code, 1);
    const lines = r.out.split('\n').filter((l) => /^\S+\.yaml:\d+: /.test(l));
    assert.ok(lines.length >= 20, `expected many problems, got:\n${r.out}`);
    for (const file of ['routes.yaml', 'pdp.yaml', 'idps.yaml']) {
      assert.ok(lines.some((l) => l.includes(file)), `no problem reported for ${file}`);
    }
    assert.match(r.out, /routes\.yaml:2: routes\[0\]\.name: /);
    assert.match(r.out, /routes\[2\]\.colour: .*unknown/i);
    assert.match(r.out, /problems? in /);
  });

  it('--help prints the usage; an option or a second argument is not taken for a folder', function () {
    const help = check(['--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /usage: goldpath <command>/);
    assert.doesNotMatch(help.out, /not found/);
    for (const args of [['--strict'], ['compose/config', 'extra']]) {
      const r = check(args);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, /expected at most one folder/);
    }
  });

  it('names a missing environment variable with file and key', function () {
    const r = check(['compose/config']);
    assert.equal(r.code, 1);
    assert.match(r.out, /idps\.yaml:\d+: idps\.dev\.client_secret: .*GOLDPATH_CLIENT_SECRET/);
  });

  it('reports a Polar syntax error in a policy file', function () {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-check-'));
    try {
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'policy.polar'), 'allow(user: User, "read", _o: Order) if user.roles.;\n');
      const r = check([dir], { TEST_CLIENT_SECRET: 's' });
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /policy\.polar/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a policy error together with the other files\' problems (one round of fixes)', function () {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-check-'));
    try {
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'policy.polar'), 'allow(user: User, "read", _o: Order) if user.roles.;\n');
      writeFileSync(join(dir, 'routes.yaml'), readFileSync(join(dir, 'routes.yaml'), 'utf8') + 'extra: 1\n');
      const r = check([dir], { TEST_CLIENT_SECRET: 's' });
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /routes\.yaml:\d+: extra: .*unknown/i);
      assert.match(r.out, /policy\.polar/);
      assert.match(r.out, /2 problems in /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks the environment verify and bff would read, those variables that are set, and says which', function () {
    const secret = { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32) };
    const bad = check(['compose/config'], { ...secret, PORT: '99999', REDIS_URL: 'foo://x', GOLDPATH_SESSION_KEYS: 'bad' });
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /^environment: PORT: is "99999"; expected a TCP port 0-65535$/m);
    assert.match(bad.out, /^environment: REDIS_URL: has an unsupported scheme/m);
    assert.match(bad.out, /^environment: GOLDPATH_SESSION_KEYS: the key /m);
    assert.match(bad.out, /3 problems in .* \(environment: REDIS_URL, GOLDPATH_SESSION_KEYS, PORT checked\)$/m);
    const good = check(['compose/config'], { ...secret, PORT: '3002', LOG_LEVEL: 'debug' });
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /: OK \(routes\.yaml, pdp\.yaml, idps\.yaml, policies; environment: PORT, LOG_LEVEL checked\)$/m);
  });

  it('refuses REDIS_URL=memory:// as verify and bff do (one process only: the demo)', function () {
    const secret = { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32) };
    const alone = check(['compose/config'], { ...secret, REDIS_URL: 'memory://' });
    assert.equal(alone.code, 1, alone.out);
    assert.match(alone.out, /^environment: REDIS_URL: memory:\/\/ only works when everything runs in one process/m);
    // Said in the same round as the other variables' problems, once.
    const more = check(['compose/config'], { ...secret, REDIS_URL: 'memory://demo', PORT: '99999' });
    assert.equal(more.code, 1, more.out);
    assert.equal(more.out.match(/REDIS_URL: memory:\/\//g)?.length, 1, more.out);
    assert.match(more.out, /2 problems in /);
  });

  it('runs where the session keys are not set: a note, not a failure', function () {
    const r = check(['compose/config'], { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32) });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^note: GOLDPATH_SESSION_KEYS is not set here, so it was not checked; verify and bff will not start without it$/m);
    assert.match(r.out, /environment: none of verify's and bff's variables set\)$/m);
  });

  it('warns of a GOLDPATH_* variable nothing reads, naming the closest known one, never its value', function () {
    const r = check(['compose/config'], { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32), GOLDPATH_SESION_KEYS: 'value-never-shown' });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^warning: GOLDPATH_SESION_KEYS is set, but goldpath reads no such variable \(did you mean GOLDPATH_SESSION_KEYS\?\); it is ignored$/m);
    assert.doesNotMatch(r.out, /value-never-shown/);
    // GOLDPATH_CLIENT_SECRET is no process variable, but compose/config's idps.yaml names it.
    assert.doesNotMatch(r.out, /GOLDPATH_CLIENT_SECRET is set/);
  });

  for (const command of ['verify', 'bff']) {
    it(`${command} warns at start of a GOLDPATH_* variable nothing reads (a log line)`, function () {
      const r = spawnSync('node', ['dist/src/cli.js', command], {
        cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000,
        env: { PATH: process.env.PATH!, GOLDPATH_CONFIG_DIR: '/nonexistent-goldpath', GOLDPATH_PUBLICURL: 'https://app.example.com' },
      });
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const line = (r.stdout + r.stderr).split('\n').find((l) => l.includes('GOLDPATH_PUBLICURL')) ?? '';
      const parsed = JSON.parse(line) as { level: string; svc: string; msg: string };
      assert.equal(parsed.level, 'warn');
      assert.equal(parsed.svc, command);
      assert.match(parsed.msg, /did you mean GOLDPATH_PUBLIC_URL\?/);
    });
  }

  it('names a FIFO where a config file should be, and does not wait on it (check and verify)', function () {
    // The GOLDPATH_* typo warning read the three files before validation looked at them: on a
    // FIFO that read blocked forever, so `check` and every process hung at start without a word.
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-check-'));
    try {
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      rmSync(join(dir, 'routes.yaml'));
      execFileSync('mkfifo', [join(dir, 'routes.yaml')]);
      const env = { PATH: process.env.PATH!, TEST_CLIENT_SECRET: 's', GOLDPATH_CONFIG_DIR: dir, GOLDPATH_SESSION_KEYS: Buffer.alloc(32, 7).toString('base64url') };
      for (const args of [['check', dir], ['verify']]) {
        const r = spawnSync('node', ['dist/src/cli.js', ...args], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 10_000 });
        assert.equal(r.status, 1, `${args[0]}: ${r.error ?? ''}\n${r.stdout}${r.stderr}`);
        assert.match(r.stdout + r.stderr, /routes\.yaml: \(file\): \S+routes\.yaml is not a file/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with usage on an unknown command', function () {
    const r = spawnSync('node', ['dist/src/cli.js', 'nope'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: goldpath/);
  });
});
