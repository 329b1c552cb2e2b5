// X-Original-URL and X-Rewrite-URL make Symfony's and Zend's request objects (and IIS URL Rewrite)
// route by them instead of the request line. Traefik passes them on to the upstream, so a request
// authorised for a public X-Forwarded-Uri could reach a session route's handler there: the sidecar
// refuses them, as it refuses method overrides (SPEC 5 step 1).
import assert from 'node:assert/strict';
import { readRequestHeaders } from '../../src/verify/request-headers.ts';
import { startVerifyOnRedis, type RunningVerify } from '../helpers/verify-app.ts';

const NAMES = ['X-Original-URL', 'X-Original-Url', 'x-original-url', 'X_Original_URL', 'X-Rewrite-URL', 'x-rewrite-url', 'X_REWRITE_URL'];

describe('verify: path-override headers are refused', function () {
  let sidecar: RunningVerify;
  let stop: (() => Promise<void>) | undefined;

  before(async function () {
    ({ sidecar, stop } = await startVerifyOnRedis());
  });
  after(async function () {
    await stop?.();
  });

  it('readRequestHeaders flags each spelling as confusing, and nothing else like it', function () {
    for (const n of NAMES) assert.equal(readRequestHeaders([n, '/api/orders/1']).confusing, n, n);
    for (const n of ['X-Original-Host', 'X-Original-Uri2', 'X-Rewrite-Urls', 'X-Forwarded-Uri']) {
      assert.equal(readRequestHeaders([n, '/x']).confusing, undefined, n);
    }
  });

  it('a public route with an override naming a session route is a 400 JSON, not an anonymous 200', async function () {
    assert.equal((await sidecar.verify('GET', '/api/public/x')).status, 200);
    for (const n of NAMES) {
      const res = await sidecar.verify('GET', '/api/public/x', { [n]: '/api/orders/1' });
      assert.equal(res.status, 400, `${n} → ${res.status}`);
      assert.equal(JSON.parse(res.body).error, 'invalid_request');
      assert.equal(res.headers['cache-control'], 'no-store');
    }
  });
});
