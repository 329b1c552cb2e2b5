// REDIS_URL is operator input: whatever it holds, parseRedisUrl returns a target or throws a
// ConfigError naming REDIS_URL, never another error (a URIError from a bad %-escape would crash
// startup with a stack trace) and never a message that repeats the password.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from '../../src/errors.ts';
import { loadSettings } from '../../src/config/env.ts';
import { parseRedisUrl } from '../../src/session/redis-url.ts';

const PASSWORD = 'Pw-9f2c';

function checked(url: string): 'target' | 'config-error' {
  try {
    const t = parseRedisUrl(url);
    assert.equal(t.tls, /^rediss[:+]/.test(url), `${JSON.stringify(url)}: tls is ${t.tls}`);
    if (t.mode === 'standalone') assert.ok(t.port >= 1 && t.port <= 65535 && t.host !== '');
    else for (const h of t.mode === 'sentinel' ? t.sentinels : t.nodes) assert.ok(h.port >= 1 && h.port <= 65535 && h.host !== '');
    return 'target';
  } catch (err) {
    assert.ok(err instanceof ConfigError, `${JSON.stringify(url)} threw ${String(err)}`);
    assert.deepEqual(err.problems.map((p) => p.key), ['REDIS_URL']);
    assert.ok(!err.message.includes(PASSWORD), `the password is echoed for ${JSON.stringify(url)}`);
    return 'config-error';
  }
}

describe('session: REDIS_URL parsing (property-based)', function () {
  it('any string: a target or a ConfigError on REDIS_URL that never echoes the password', function () {
    const part = fc.oneof(
      fc.constantFrom('redis://', 'rediss://', 'redis+sentinel://', 'redis+cluster://', 'rediss+sentinel://', 'rediss+cluster://', 'memory://', 'http://', `u:${PASSWORD}@`, `:${PASSWORD}@`,
        '@', ':', ',', '/', '?', '#', '[', ']', '::1', '127.0.0.1', 'localhost', 'h', ':6379', ':0', ':99999', ':-1', '/0', '/99999', '/x',
        'mymaster', '%', '%E0', '%zz', '%40', '%2F', ' ', '\t', 'é', '\0'),
      fc.string({ maxLength: 6 }),
    );
    // Shaped like a URL, each piece possibly odd: mostly valid, so both outcomes are exercised.
    const host = fc.oneof(fc.constantFrom('127.0.0.1', 'h', 'redis.example', '[::1]', 'a_b-c'), part);
    const hostPort = fc.tuple(host, fc.option(fc.oneof(fc.integer({ min: 0, max: 70000 }).map(String), part), { nil: undefined }))
      .map(([h, p]) => (p === undefined ? h : `${h}:${p}`));
    const shaped = fc.tuple(
      fc.constantFrom('redis://', 'rediss://', 'redis+sentinel://', 'redis+cluster://', 'rediss+sentinel://', 'rediss+cluster://'),
      fc.option(fc.oneof(fc.constantFrom(`u:${PASSWORD}@`, `:${PASSWORD}@`, `%E0:${PASSWORD}@`, `u%40x:${PASSWORD}%21@`), part.map((x) => `${x}@`)), { nil: '' }),
      fc.array(hostPort, { minLength: 1, maxLength: 3 }).map((hs) => hs.join(',')),
      fc.option(fc.oneof(fc.constantFrom('/mymaster', '/mymaster/2', '/0', '/', '/%E0', '/m%20x'), part.map((x) => `/${x}`)), { nil: '' }),
    ).map((xs) => xs.join(''));
    const outcomes = { target: 0, 'config-error': 0 };
    fc.assert(fc.property(fc.oneof(shaped, fc.array(part, { maxLength: 8 }).map((ps) => ps.join(''))), (url) => {
      outcomes[checked(url)]++;
    }), { numRuns: 5000 });
    assert.ok(outcomes.target > 50 && outcomes['config-error'] > 50, JSON.stringify(outcomes));
  });

  // Counterexamples found by the property (bad %-escapes threw URIError; port 0 was accepted), kept.
  for (const url of [
    'redis://%E0@h', `redis://u:%E0${PASSWORD}@h`, 'redis://127.0.0.1:0', 'rediss://h:00', 'redis+sentinel://h:1/%E0', 'redis+sentinel://h:1/%', `redis+cluster://%E0:${PASSWORD}@h:1`,
    'rediss+sentinel://h:1/%E0', `rediss+cluster://%E0:${PASSWORD}@h:1`, `rediss+cluster://u:${PASSWORD}@h:0`,
  ]) {
    it(`${url}: a ConfigError, also through loadSettings`, function () {
      assert.equal(checked(url), 'config-error');
      assert.throws(() => loadSettings({ REDIS_URL: url, GOLDPATH_SESSION_KEYS: 'A'.repeat(43) }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(!err.message.includes(PASSWORD));
        return true;
      });
    });
  }
});
