// goldpath_logins_total counts every /auth/callback answer once, by outcome (SPEC 9): a callback
// refused before its checks ran, or cut short by the session store, is a sign-in that failed too.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startIdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

function count(metrics: string, outcome: string): number {
  return Number(new RegExp(`^goldpath_logins_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
}

describe('BFF login metrics', function () {
  this.timeout(30_000);

  it('a callback with a repeated query parameter is a 400 counted as an invalid sign-in', async () => {
    const e = await startIdpBff();
    try {
      const before = (await httpCall(`${e.url}/metrics`)).body;
      const r = await httpCall(`${e.url}/auth/callback?state=a&state=b&code=c`, { headers: { accept: 'application/json' } });
      assert.equal(r.status, 400);
      const after = (await httpCall(`${e.url}/metrics`)).body;
      assert.equal(count(after, 'invalid') - count(before, 'invalid'), 1);
    } finally {
      await e.close();
    }
  });

  it('a callback the session store cannot serve is a 503 counted as an unavailable sign-in, beside the store error', async () => {
    const own = await RedisServer.start();
    const e = await startIdpBff({ redis: own });
    try {
      // Stalled, not killed: a killed Redis's connection errors are store errors too, counted
      // with no request (redis-watch.ts), and this counts the callback's alone.
      own.pause();
      const r = await httpCall(`${e.url}/auth/callback?state=abc&code=xyz`, {
        // A transaction cookie, so that the callback asks the store for its transaction.
        headers: { accept: 'application/json', cookie: `${e.settings.cookieName}_tx=${randomBytes(32).toString('base64url')}` },
      });
      assert.equal(r.status, 503);
      const m = (await httpCall(`${e.url}/metrics`)).body;
      assert.match(m, /^goldpath_store_errors_total 1$/m);
      assert.equal(count(m, 'unavailable'), 1);
      assert.equal(count(m, 'invalid'), 0);
    } finally {
      own.resume();
      await e.close();
      await own.stop();
    }
  });
});
