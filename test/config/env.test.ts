import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { checkSettings, KEY_GENERATE_HINT, loadSettings, parseDuration } from '../../src/config/env.ts';
import { makeTestPki, type TestPki } from '../helpers/idp-tls.ts';

// Test keys: 32 bytes each, base64url. Not secrets: generated for this file.
const KEY1 = Buffer.alloc(32, 1).toString('base64url');
const KEY2 = Buffer.alloc(32, 2).toString('base64url');
const SHORT = Buffer.alloc(16, 3).toString('base64url');

function problemsOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadSettings(env, { cwd: '/srv/app' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    for (const p of err.problems) assert.equal(p.file, 'environment');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config: loadSettings (environment)', () => {
  it('applies every default and returns deep-frozen settings', () => {
    const s = loadSettings({ GOLDPATH_SESSION_KEYS: KEY1 }, { cwd: '/srv/app' });
    assert.equal(s.configDir, path.resolve('/srv/app', 'compose/config'));
    assert.equal(s.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(s.publicOrigin, 'http://localhost:8080');
    assert.equal(s.secureCookies, false);
    assert.equal(s.cookieName, 'goldpath');
    assert.equal(s.sessionKeys.length, 1);
    assert.deepEqual([...s.sessionKeys[0]!], [...Buffer.alloc(32, 1)]);
    assert.equal(s.sessionIdleMs, 30 * 60_000);
    assert.equal(s.sessionMaxMs, 12 * 3_600_000);
    assert.equal(s.port, undefined);
    assert.equal(s.host, '0.0.0.0');
    assert.equal(s.logLevel, 'info');
    assert.equal(s.loginsPerMinute, 6000);
    assert.ok(Object.isFrozen(s));
    assert.ok(Object.isFrozen(s.sessionKeys));
    assert.throws(() => { (s as { host: string }).host = 'x'; }, TypeError);
    assert.throws(() => { (s.sessionKeys as Uint8Array[]).push(new Uint8Array(32)); }, TypeError);
  });

  it('reads every variable; empty values mean "use the default"', () => {
    const s = loadSettings({
      GOLDPATH_CONFIG_DIR: '/etc/goldpath',
      REDIS_URL: 'rediss://user:pw@redis.internal:6380/2',
      GOLDPATH_PUBLIC_URL: 'https://App.Example.com:443/',
      GOLDPATH_SESSION_KEYS: ` ${KEY1} , ${KEY2} `,
      PORT: '3002',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'DEBUG',
      GOLDPATH_SESSION_IDLE: '90s',
      GOLDPATH_SESSION_MAX: '1d',
      GOLDPATH_MAX_LOGINS_PER_MINUTE: '250',
    });
    assert.equal(s.configDir, '/etc/goldpath');
    assert.equal(s.redisUrl, 'rediss://user:pw@redis.internal:6380/2');
    assert.equal(s.publicOrigin, 'https://app.example.com');
    assert.equal(s.secureCookies, true);
    assert.equal(s.cookieName, '__Host-goldpath');
    assert.deepEqual(s.sessionKeys.map((k) => k[0]), [1, 2], 'first key encrypts: order kept');
    assert.equal(s.port, 3002);
    assert.equal(s.host, '127.0.0.1');
    assert.equal(s.logLevel, 'debug');
    assert.equal(s.sessionIdleMs, 90_000);
    assert.equal(s.sessionMaxMs, 86_400_000);
    assert.equal(s.loginsPerMinute, 250);
    for (const bad of ['0', '-5', '1.5', 'many', '1e4']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_MAX_LOGINS_PER_MINUTE: bad });
      assert.match(err.message, /environment: GOLDPATH_MAX_LOGINS_PER_MINUTE: .*whole number/, bad);
    }

    const d = loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: '', PORT: ' ', GOLDPATH_CONFIG_DIR: 'cfg' }, { cwd: '/srv' });
    assert.equal(d.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(d.port, undefined);
    assert.equal(d.configDir, '/srv/cfg');
  });

  it('accepts every store URL form', () => {
    for (const url of ['redis://r:6379', 'rediss://r', 'redis+sentinel://a:26379,b:26379/mymaster',
      'redis+cluster://a:7000,b:7001', 'rediss+sentinel://a:26379,b/mymaster/1', 'rediss+cluster://a:7000,b:7001',
      'memory://', 'memory://demo']) {
      assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: url }).redisUrl, url);
      // `goldpath check` applies the same rules.
      assert.deepEqual(checkSettings({ REDIS_URL: url }).problems.filter((p) => !url.startsWith('memory:')), []);
    }
  });

  it('allows plain http only for localhost, 127.0.0.1 and [::1]', () => {
    for (const url of ['http://localhost:8080', 'http://127.0.0.1:3000', 'http://[::1]:8080']) {
      const s = loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: url });
      assert.equal(s.cookieName, 'goldpath');
      assert.equal(s.secureCookies, false);
    }
    const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: 'http://app.example.com' });
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]!.key, 'GOLDPATH_PUBLIC_URL');
    assert.match(err.problems[0]!.message, /plain http.*use https/);
  });

  it('requires the public URL to be an origin', () => {
    for (const url of ['https://app.example.com/app', 'https://app.example.com/?x=1', 'https://app.example.com/#f',
      'ftp://app.example.com', 'app.example.com', 'https://u:p@app.example.com']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: url });
      assert.deepEqual(err.problems.map((p) => p.key), ['GOLDPATH_PUBLIC_URL'], url);
    }
  });

  it('names user info in the public URL as such, not as a bad port or host', () => {
    for (const url of ['https://u:p@app.example.com', 'https://u@app.example.com', 'https://u:p@app.example.com:8443']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: url });
      assert.equal(err.problems.length, 1, url);
      assert.match(err.problems[0]!.message, /must not contain a user name or password/, url);
    }
  });

  it('requires session keys and says how to generate one', () => {
    for (const keys of [undefined, '', '  ']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: keys });
      assert.equal(err.problems.length, 1);
      assert.equal(err.problems[0]!.key, 'GOLDPATH_SESSION_KEYS');
      assert.ok(err.problems[0]!.message.includes(KEY_GENERATE_HINT));
      assert.match(KEY_GENERATE_HINT, /randomBytes\(32\)\.toString\('base64url'\)/);
    }
  });

  it('rejects a key of the wrong length or encoding without printing it', () => {
    const std = Buffer.alloc(32, 0xfb).toString('base64'); // has + and /
    const err = problemsOf({ GOLDPATH_SESSION_KEYS: `${KEY1},${SHORT},${std},` });
    assert.deepEqual(err.problems.map((p) => p.key), Array(3).fill('GOLDPATH_SESSION_KEYS'));
    assert.match(err.problems[0]!.message, /key #2 decodes to 16 bytes, expected exactly 32/);
    assert.match(err.problems[1]!.message, /key #3 is not base64url/);
    assert.match(err.problems[2]!.message, /key #4 is empty/);
    for (const secret of [KEY1, SHORT, std]) {
      assert.ok(!err.message.includes(secret), 'a key appears in the error');
    }
  });

  it('requires idle <= max and parses durations', () => {
    const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '2h', GOLDPATH_SESSION_MAX: '1h' });
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]!.key, 'GOLDPATH_SESSION_IDLE');
    assert.match(err.problems[0]!.message, /at most/);
    // Equal is fine.
    assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '60m', GOLDPATH_SESSION_MAX: '1h' }).sessionIdleMs, 3_600_000);
    // Idle checked against the default max too.
    assert.equal(problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '13h' }).problems[0]!.key, 'GOLDPATH_SESSION_IDLE');

    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('12h'), 43_200_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('250ms'), 250);
    for (const bad of ['', '1500', '0', '0s', '-5m', '1.5h', '5 minutes', '1w', 'm', '1e3', '99999999999999999d']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
    const bad = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_MAX: '5 minutes', GOLDPATH_SESSION_IDLE: '401d' });
    assert.deepEqual(bad.problems.map((p) => p.key).sort(), ['GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX']);
  });

  it('refuses a duration without a unit, naming the variable and the fix (1800 was read as 1.8 s)', () => {
    const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '1800', GOLDPATH_SESSION_MAX: '90' });
    assert.deepEqual(err.problems.map((p) => p.key), ['GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX']);
    assert.match(err.problems[0]!.message, /^is "1800", a number without a unit; give a unit: 1800s, 30m \(units: ms, s, m, h, d\)$/);
    assert.match(err.problems[1]!.message, /give a unit: 90s \(/);
    assert.equal(parseDuration('1800'), undefined);
    // Milliseconds stay available, with their unit (within the 60 s minimum).
    assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '90000ms' }).sessionIdleMs, 90_000);
  });

  it('refuses a public URL that is no origin, even where the URL parser would normalise it into one', () => {
    for (const url of ['https://*.example.com', 'https://app.example.com:0', 'https://app.example.com:65536', 'https://app.example.com:',
      'https://-bad-.com', 'https://bad-.example.com', 'https://a..example.com', 'https://app.example.com.', 'https://a_b.example.com',
      'https://1.2.3', 'https://0x7f.1', 'https://bücher.example', 'https://app.example.com/..', 'https://app.example.com/.',
      'https://app.example.com/%2e', 'https://app.example.com\\..', 'https://app.example.com?', 'https://app.example.com#',
      'https://@app.example.com', 'http://evil.com']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: url });
      assert.deepEqual(err.problems.map((p) => p.key), ['GOLDPATH_PUBLIC_URL'], url);
      assert.match(err.problems[0]!.message, /expected an origin such as https:\/\/app\.example\.com/, url);
    }
    for (const [url, origin] of [['https://app.example.com:8443', 'https://app.example.com:8443'], ['https://10.0.0.1/', 'https://10.0.0.1'],
      ['https://[2001:db8::1]:443', 'https://[2001:db8::1]'], ['https://xn--bcher-kva.example', 'https://xn--bcher-kva.example'],
      ['http://LOCALHOST:5173', 'http://localhost:5173'], ['https://a-b.example.com:65535', 'https://a-b.example.com:65535']]) {
      assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: url }).publicOrigin, origin, url);
    }
  });

  it('refuses a key that is not canonical base64url (two texts would be one key)', () => {
    // KEY1 ends in a character whose two low bits are unused: the next letter decodes the same.
    const last = KEY1.at(-1)!;
    const twin = KEY1.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1);
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(KEY1, 'base64url'), 'the same 32 bytes');
    for (const keys of [`${KEY1},${twin}`, `${KEY1},${KEY2}=`]) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: keys });
      assert.equal(err.problems.length, 1, err.message);
      assert.equal(err.problems[0]!.key, 'GOLDPATH_SESSION_KEYS');
      assert.match(err.problems[0]!.message, /^key #2 is not canonical base64url/);
      assert.ok(!err.message.includes(KEY1.slice(0, 20)) && !err.message.includes(KEY2.slice(0, 20)), 'a key appears in the error');
    }
  });

  it('collects every problem at once, and never echoes a store password', () => {
    const err = problemsOf({
      REDIS_URL: 'http://user:hunter2@redis:6379',
      GOLDPATH_PUBLIC_URL: 'http://example.org',
      PORT: '70000',
      LOG_LEVEL: 'verbose',
      GOLDPATH_SESSION_IDLE: 'soon',
    });
    assert.deepEqual(err.problems.map((p) => p.key), [
      'REDIS_URL', 'GOLDPATH_PUBLIC_URL', 'GOLDPATH_SESSION_KEYS', 'PORT', 'LOG_LEVEL', 'GOLDPATH_SESSION_IDLE',
    ]);
    assert.ok(!err.message.includes('hunter2'));
    assert.match(err.message, /^invalid configuration \(6 problems\)/);
    assert.match(err.message, /environment: PORT: is "70000"; expected a TCP port/);

    const bad = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: 'redis://:hunter2@' });
    assert.equal(bad.problems[0]!.key, 'REDIS_URL');
    assert.ok(!bad.message.includes('hunter2'));
    assert.equal(problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: 'memory://a/b' }).problems[0]!.key, 'REDIS_URL');
  });
});

describe('config: REDIS_TLS_CA_FILE', () => {
  let pki: TestPki;
  let dir: string;
  before(() => {
    pki = makeTestPki();
    dir = mkdtempSync(path.join(tmpdir(), 'goldpath-ca-'));
  });
  after(() => {
    pki?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, content: string | Buffer) => {
    writeFileSync(path.join(dir, name), content);
    return path.join(dir, name);
  };

  it('is read at startup, relative to the working directory, for every TLS scheme', () => {
    for (const url of ['rediss://r', 'rediss+sentinel://s:26379/m', 'rediss+cluster://n:7000']) {
      const s = loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: url, REDIS_TLS_CA_FILE: path.basename(pki.caCertPath) }, { cwd: pki.dir });
      assert.equal(s.redisTlsCa, pki.caCert.trim());
    }
    assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: 'rediss://r' }).redisTlsCa, undefined);
    // A bundle: every certificate, nothing else of the file (comments, a private key put there by mistake).
    const bundle = file('bundle.pem', `# ours\n${pki.caCert}\n${pki.serverKey}\n${pki.serverCert}`);
    const s = loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: 'rediss://r', REDIS_TLS_CA_FILE: bundle });
    assert.equal(s.redisTlsCa?.match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.ok(!s.redisTlsCa?.includes('PRIVATE KEY'));
  });

  it('names what is wrong with the file, with every other problem at once', () => {
    mkdirSync(path.join(dir, 'folder'), { recursive: true });
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing.pem'), /^does not exist \(resolved to .*missing\.pem\)$/],
      [path.join(dir, 'folder'), /^is not a file/],
      [file('empty.pem', ''), /^holds no PEM certificate/],
      [file('key.pem', pki.serverKey), /^holds no PEM certificate/],
      [file('bad.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /^certificate #1 is not a valid X\.509 certificate/],
      [file('latin1.pem', Buffer.concat([Buffer.from(pki.caCert), Buffer.from([0xe9, 0x0a])])), /^is not UTF-8 text \(line \d+/],
      [file('huge.pem', Buffer.alloc(1024 * 1024 + 1, 0x41)), /^is larger than 1 MiB/],
    ];
    for (const [at, said] of cases) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: 'rediss://r', REDIS_TLS_CA_FILE: at, PORT: 'x' });
      assert.deepEqual(err.problems.map((p) => p.key), ['REDIS_TLS_CA_FILE', 'PORT'], at);
      assert.match(err.problems[0]!.message, said, at);
    }
  });

  it('is a problem with a plain REDIS_URL: whoever set it expects TLS', () => {
    for (const url of ['redis://r', 'redis+sentinel://s/m', 'redis+cluster://n', 'memory://']) {
      const err = problemsOf({ GOLDPATH_SESSION_KEYS: KEY1, REDIS_URL: url, REDIS_TLS_CA_FILE: pki.caCertPath });
      assert.deepEqual(err.problems.map((p) => p.key), ['REDIS_TLS_CA_FILE'], url);
      assert.match(err.problems[0]!.message, /REDIS_URL is not a TLS scheme/);
    }
    // goldpath check says so too, and lists the variable as checked.
    const checked = checkSettings({ REDIS_URL: 'redis://r', REDIS_TLS_CA_FILE: pki.caCertPath });
    assert.ok(checked.checked.includes('REDIS_TLS_CA_FILE'));
    assert.deepEqual(checked.problems.map((p) => p.key), ['REDIS_TLS_CA_FILE']);
    assert.deepEqual(checkSettings({ REDIS_URL: 'rediss+cluster://n:7000', REDIS_TLS_CA_FILE: pki.caCertPath }).problems, []);
  });
});
