// Defects found by probing /auth/verify over real HTTP (real Redis, real Oso, the fixture config):
//   - a Cookie pair that made the comma check (cookies.ts) backtrack quadratically: the sidecar's
//     only thread held for seconds by one unauthenticated request;
//   - a method override in the query hidden behind an encoded NUL, which PHP cuts names at;
//   - a role (or sub) holding a lone UTF-16 surrogate, which JSON lets an IdP send: a 500.
import assert from 'node:assert/strict';
import { startVerifyOnRedis, type RunningVerify } from '../helpers/verify-app.ts';
import { headerSafe, rolesHeader } from '../../src/verify/allow.ts';

describe('verify: probe regressions', function () {
  let app: RunningVerify;
  let stop: (() => Promise<void>) | undefined;

  before(async function () {
    ({ sidecar: app, stop } = await startVerifyOnRedis());
  });
  after(async function () {
    await stop?.();
  });

  it('a Cookie pair built to make the comma check backtrack is answered at once (it held the thread for seconds)', async function () {
    this.timeout(60_000);
    // Each under the sidecar's header limit (72 KiB); 32 KiB of it passes Traefik (1.2 s before).
    const pairs = [
      'a=,goldpath_' + ' '.repeat(65_000) + 'x',   // 5 s of backtracking before
      'a=' + ',goldpath_'.repeat(6_500),             // 0.7 s
      'a=' + ', __Host-goldpath \t'.repeat(3_000) + 'x',
    ];
    for (const pair of pairs) {
      const res = await app.verify('GET', '/api/public/x', { Cookie: `${pair}; b=2` });
      assert.equal(res.status, 200);
      // A bound for a hang, not a timing: ~0.1 ms of scanning now, seconds before (the first pair).
      assert.ok(res.ms < 1000, `${res.ms.toFixed(0)} ms for a ${pair.length}-byte cookie`);
      assert.equal(res.headers['cookie'], `${pair}; b=2`, 'no `goldpath=` in it: forwarded as it is');
    }
    // What the check is for still holds: a pair hiding `, goldpath=` in any spelling is dropped.
    for (const hidden of ['a=1, goldpath=v', 'a=1,GOLDPATH \t=v', 'a=1,__host-Goldpath=v', 'a=1,goldpath_tx x=v', 'a=,x, goldpath_=']) {
      const res = await app.verify('GET', '/api/public/x', { Cookie: `${hidden}; b=2` });
      assert.equal(res.headers['cookie'], 'b=2', hidden);
    }
    for (const kept of ['a=1,goldpath', 'a=1,goldpathx=v', 'a=goldpath=1', 'a=1,gold path=v', 'a=1,goldpath x=v']) {
      const res = await app.verify('GET', '/api/public/x', { Cookie: `${kept}; b=2` });
      assert.equal(res.headers['cookie'], `${kept}; b=2`, kept);
    }
  });

  it('a method override hidden behind an encoded NUL (PHP reads `_method%00x` as `_method`): 400', async function () {
    const { cookie } = await app.login({ roles: ['reader'] });
    for (const q of ['_method%00=DELETE', '_method%00x=DELETE', '_method%00%FF=DELETE', '_m%65thod%00.x=PUT', 'x=1&X-HTTP-Method-Override%00=DELETE', '%20_method%00=DELETE']) {
      const res = await app.verify('GET', `/api/orders/1?${q}`, { Cookie: cookie });
      assert.equal(res.status, 400, `${q} → ${res.status} ${res.body}`);
      assert.match(JSON.parse(res.body).error_description, /method override/);
      assert.equal(res.headers['cache-control'], 'no-store');
    }
    // A NUL elsewhere, or after another name, is no override.
    for (const q of ['a=%00', 'x%00_method=1', '_methods%00=1', 'me%00=_method', '%00_method=1']) {
      assert.equal((await app.verify('GET', `/api/orders/1?${q}`, { Cookie: cookie })).status, 200, q);
    }
  });

  it('a role holding a lone surrogate (JSON allows "\\ud800") is sent encoded as U+FFFD: 200, not a 500', async function () {
    const { cookie } = await app.login({ roles: ['reader', 'x\ud800', '\udc00y'] });
    for (const uri of ['/api/orders/1', '/api/public/x']) {
      const res = await app.verify('GET', uri, { Cookie: cookie });
      assert.equal(res.status, 200, `${uri}: ${res.body}`);
      assert.equal(res.headers['x-auth-roles'], 'reader,x%EF%BF%BD,%EF%BF%BDy');
    }
    assert.equal(headerSafe('bob\udc00'), 'bob%EF%BF%BD');
    assert.equal(rolesHeader(['\ud83d\ude00', 'a,b']), '%F0%9F%98%80,a%2Cb', 'pairs are kept, commas still encoded');
  });
});
