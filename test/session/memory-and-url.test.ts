// memory:// specifics (shared datasets by URL, TTL sweep, closing) and REDIS_URL parsing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigError, StoreUnavailable } from '../../src/errors.ts';
import { createSessionStore, MemoryBackend, parseRedisUrl, type NewSession } from '../../src/session/index.ts';
import { captureLogger } from '../pdp/log-capture.ts';
import { RedisServer } from '../helpers/redis.ts';

const KEYS = [randomBytes(32)];
const settings = { sessionKeys: KEYS, sessionIdleMs: 60_000, sessionMaxMs: 3_600_000 };
const uniq = () => randomBytes(6).toString('hex');

function input(): NewSession {
  return {
    sub: 'alice', idp: 'dev', sid: 's1',
    secrets: {
      user: { sub: 'alice', idp: 'dev', name: undefined, email: undefined, roles: [], groups: [], scopes: [], claims: {} },
      csrf: 'c', tokens: {}, refreshToken: undefined, idToken: undefined, dpopJwk: undefined,
    },
  };
}

describe('memory:// store', () => {
  it('shares one dataset between stores with the same URL, and isolates other names', async () => {
    const name = `memory://m-${uniq()}`;
    const bff = createSessionStore({ url: name, settings });
    const verify = createSessionStore({ url: name, settings });
    const elsewhere = createSessionStore({ url: `memory://m-${uniq()}`, settings });
    try {
      const { cookieValue } = await bff.create(input());
      assert.ok(await verify.get(cookieValue));
      assert.equal(await elsewhere.get(cookieValue), null);
    } finally {
      await Promise.all([bff.close(), verify.close(), elsewhere.close()]);
    }
  });

  it('drops the dataset when its last store closes, and a closed store fails closed', async () => {
    const name = `memory://m-${uniq()}`;
    const a = createSessionStore({ url: name, settings });
    const { cookieValue } = await a.create(input());
    await a.close();
    await assert.rejects(a.get(cookieValue), StoreUnavailable);
    await assert.rejects(a.ping(), StoreUnavailable);
    const b = createSessionStore({ url: name, settings });
    assert.equal(await b.get(cookieValue), null);
    await b.close();
  });

  it('sweeps expired entries nobody reads again', async () => {
    let t = 1_000_000;
    const name = `memory://m-${uniq()}`;
    const store = createSessionStore({ url: name, settings, now: () => t });
    const probe = new MemoryBackend(name);
    try {
      await store.create(input());
      await store.putTransient('k', 'x', 'v', 1000);
      assert.equal(probe.rawSize, 4, 'session, two indexes, transient');
      t += 2000;
      probe.sweep();
      assert.equal(probe.rawSize, 3, 'the transient expired');
      t += 60_000;
      probe.sweep();
      assert.equal(probe.rawSize, 2, 'the idle session expired; indexes live until the absolute expiry');
      t += 3_600_000 + 60_000;
      probe.sweep();
      assert.equal(probe.rawSize, 0);
    } finally {
      await probe.close();
      await store.close();
    }
  });

  it('runs the sweep on a timer', async () => {
    let t = 0;
    const name = `memory://m-${uniq()}`;
    const b = new MemoryBackend(name, { now: () => t, sweepMs: 20 });
    try {
      await b.put('k', 'v', 10, false);
      t = 100;
      await new Promise((r) => setTimeout(r, 80));
      assert.equal(b.rawSize, 0);
    } finally {
      await b.close();
    }
  });

  it('refuses malformed memory URLs', () => {
    assert.throws(() => createSessionStore({ url: 'memory://a/b', settings }), ConfigError);
  });
});

describe('REDIS_URL parsing', () => {
  it('parses standalone URLs', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { mode: 'standalone', host: '127.0.0.1', port: 6379, db: 0, tls: false, auth: {} });
    assert.deepEqual(parseRedisUrl('rediss://u:p%40ss@redis.example:6380/2'),
      { mode: 'standalone', host: 'redis.example', port: 6380, db: 2, tls: true, auth: { username: 'u', password: 'p@ss' } });
    assert.deepEqual(parseRedisUrl('redis://:pw@[::1]:7000').auth, { password: 'pw' });
    assert.equal((parseRedisUrl('redis://[::1]:7000') as { host: string }).host, '::1');
  });

  it('parses sentinel and cluster URLs', () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster'), {
      mode: 'sentinel', name: 'mymaster', db: 0, tls: false, auth: { password: 'pw' },
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: '::1', port: 26380 }],
    });
    assert.equal((parseRedisUrl('redis+sentinel://s1:1/m/3') as { db: number }).db, 3);
    assert.deepEqual(parseRedisUrl('redis+cluster://n1:7000,n2:7001'), {
      mode: 'cluster', tls: false, auth: {}, nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }],
    });
  });

  it('parses rediss+sentinel:// and rediss+cluster:// as their plain forms over TLS', () => {
    assert.deepEqual(parseRedisUrl('rediss+sentinel://u:pw@s1:26380,s2/mymaster/2'), {
      mode: 'sentinel', name: 'mymaster', db: 2, tls: true, auth: { username: 'u', password: 'pw' },
      sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }],
    });
    assert.deepEqual(parseRedisUrl('rediss+cluster://:pw@n1:7000,[::1]'), {
      mode: 'cluster', tls: true, auth: { password: 'pw' }, nodes: [{ host: 'n1', port: 7000 }, { host: '::1', port: 6379 }],
    });
    // The same grammar, the same refusals, each naming the scheme as written.
    for (const [u, said] of [
      ['rediss+sentinel://h:1', /^rediss\+sentinel:\/\/ needs the master name/],
      ['rediss+cluster://h:1/0', /^rediss\+cluster:\/\/ takes no path/],
      ['rediss+cluster://h:1?tls=false', /^is not a valid rediss\+cluster:\/\/ URL/],
      ['rediss+sentinel://u:s3cr3t@h:x/m', /not host\[:port\]/],
      ['redisss+cluster://h:1', /unsupported scheme .*rediss\+sentinel:\/\/.*rediss\+cluster:\/\//],
      ['REDISS+CLUSTER://h:1', /unsupported scheme/],
    ] as const) {
      assert.throws(() => parseRedisUrl(u), (err: unknown) => {
        assert.ok(err instanceof ConfigError, u);
        assert.equal(err.problems[0]!.key, 'REDIS_URL');
        assert.match(err.problems[0]!.message, said, u);
        assert.ok(!err.message.includes('s3cr3t'));
        return true;
      });
    }
  });

  it('rejects bad URLs with a ConfigError that never echoes the password', () => {
    for (const u of [
      'http://h', 'redis://', 'redis://h?commandTimeout=0', 'redis://h/x', 'redis://h/1/2', 'redis+sentinel://h:1',
      'redis+sentinel://h:1,:2/m', 'redis+cluster://h:1/0', 'redis+cluster://h:99999', 'redis+cluster://', 'memory',
      'redis+sentinel://u:s3cr3t@h:x/m',
    ]) {
      assert.throws(() => parseRedisUrl(u), (err: unknown) => {
        assert.ok(err instanceof ConfigError, u);
        assert.equal(err.problems[0]!.key, 'REDIS_URL');
        assert.ok(!err.message.includes('s3cr3t'));
        return true;
      });
    }
  });
});

describe('REDIS_URL naming a database the server does not have', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start(['--databases', '4']);
  });
  after(async () => {
    await redis?.stop();
  });

  it('fails closed with one clear error line: nothing is written to database 0 instead', async () => {
    // ioredis reports the refused SELECT and carries on in database 0 unless told otherwise.
    const { log, lines } = captureLogger();
    const store = createSessionStore({ url: `${redis.url}/9`, settings, log });
    const admin = redis.client();
    try {
      await new Promise((r) => setTimeout(r, 1000)); // the connection is set up (or refused) by now
      await assert.rejects(store.create(input()), StoreUnavailable);
      assert.equal(await store.ping().then(() => 'up', () => 'down'), 'down');
      assert.equal(await admin.dbsize(), 0, 'database 0 stays empty');
      const refused = lines().filter((l) => /names a database the server does not have/.test(String(l.msg)));
      assert.ok(refused.length >= 1, JSON.stringify(lines()));
      assert.equal(refused[0]!.level, 'error');
      // A database the server has works as ever.
      const good = createSessionStore({ url: `${redis.url}/3`, settings, log });
      try {
        await new Promise((r) => setTimeout(r, 300));
        await good.create(input());
        assert.equal(await admin.dbsize(), 0);
        await admin.select(3);
        assert.ok((await admin.dbsize()) > 0, 'written to database 3');
      } finally {
        await good.close();
      }
    } finally {
      admin.disconnect();
      await store.close();
    }
  });
});
