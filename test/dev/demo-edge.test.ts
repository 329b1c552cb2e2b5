// `goldpath demo` over plain HTTP, what its development edge adds to Traefik's part.
// The X-Request-Id the example API receives is the sidecar's,
// never one the client chose. Traefik (and the development edge) mints no request id, so a
// client-sent one reached the sidecar, which keeps a well-formed id "from the edge", and came
// back as the allow's X-Request-Id: authResponseHeaders then put the client's own value on the
// upstream request, and every log line of the sidecar and the API carried an id of its choosing.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { freePort } from '../helpers/redis.ts';
import { browserLogin } from '../helpers/login.ts';
import { runCli, waitHealthy, type Child } from '../helpers/process.ts';

const CHOSEN = 'client-chosen-id';

/** A GET with the Host (and Sec-Fetch-*) headers given: fetch sets its own. */
function rawGet(port: string, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(port), path, headers: { ...headers, host }, maxHeaderSize: 64 * 1024 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('goldpath demo: its edge', function () {
  this.timeout(60_000);
  let demo: Child;
  let origin: string;

  before(async function () {
    const [edgePort, idpPort] = [await freePort(), await freePort()];
    origin = `http://localhost:${edgePort}`;
    demo = runCli('node', ['demo'], {
      PORT: String(edgePort), GOLDPATH_PUBLIC_URL: origin, GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${idpPort}`, LOG_LEVEL: 'warn',
    });
    await waitHealthy(`${origin}/`, demo, 45_000);
  });
  after(async () => { await demo?.stop(); });

  async function received(path: string, headers: Record<string, string>) {
    const r = await fetch(origin + path, { headers: { 'x-request-id': CHOSEN, accept: 'application/json', ...headers } });
    assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
    return ((await r.json()) as { received: { user: string | null; request_id: string | null } }).received;
  }

  it('sends a page load under another name for it (127.0.0.1 for localhost) to the public URL: only there can a sign-in complete', async function () {
    const port = new URL(origin).port;
    for (const method of ['GET', 'HEAD']) {
      const r = await fetch(`http://127.0.0.1:${port}/app/orders?tab=2`, { method, redirect: 'manual' });
      assert.equal(r.status, 302, method);
      assert.equal(r.headers.get('location'), `${origin}/app/orders?tab=2`, method);
    }
    // Followed as a browser does, the sign-in then completes (it ended in "started in another browser").
    const login = await browserLogin({ start: `http://127.0.0.1:${port}/auth/login?return_to=/`, user: 'bob' });
    assert.ok(login.jar.get('goldpath', 'localhost')?.value, `signed in: ${JSON.stringify(login.hops.map((h) => `${h.status} ${h.url}`))}`);
    // The public name itself is served, and a POST is not redirected (it meets the CSRF checks).
    assert.equal((await fetch(`${origin}/`, { redirect: 'manual' })).status, 200);
    assert.notEqual((await fetch(`http://127.0.0.1:${port}/auth/logout`, { method: 'POST', redirect: 'manual' })).status, 302);
    // Another name that is no loopback alias (a proxy in front that rewrites Host) is served as it
    // is: sent to the public URL, such a proxy would send it back, round and round.
    const proxied = await rawGet(port, '/', 'proxy.example.test');
    assert.equal(proxied.status, 200);
  });

  it('gives the API the sidecar\'s X-Request-Id, never the client\'s: on a public route, anonymous', async function () {
    const got = await received('/api/public/hello', {});
    assert.equal(got.user, null);
    assert.ok(got.request_id, 'the sidecar\'s id reaches the API');
    assert.notEqual(got.request_id, CHOSEN);
  });

  it('gives the API the sidecar\'s X-Request-Id, never the client\'s: on a session route, signed in', async function () {
    const login = await browserLogin({ start: `${origin}/auth/login?return_to=/`, user: 'bob' });
    assert.ok(login.sessionCookie, `signed in (${login.status})`);
    const got = await received('/api/orders/42', { cookie: `goldpath=${login.sessionCookie}` });
    assert.equal(got.user, 'bob');
    assert.ok(got.request_id, 'the sidecar\'s id reaches the API');
    assert.notEqual(got.request_id, CHOSEN);
  });

  it('sends a navigation to a long URI (8 KiB, ~21 KB once encoded in the login URL) on to sign in, as Traefik does: no 500', async function () {
    const port = new URL(origin).port;
    const uri = `/api/orders/1?q=${'&'.repeat(7_000)}`;
    const r = await rawGet(port, uri, `localhost:${port}`, { 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    assert.equal(r.status, 302);
    const login = r.location ?? '';
    assert.ok(login.startsWith(`${origin}/auth/login?return_to=`) && login.length > 20_000, `${login.slice(0, 60)}…, ${login.length} characters`);
    assert.ok(new URL(login).searchParams.get('return_to') === uri, 'the whole URI is the return_to');
    // And the BFF takes it (the edge and the BFF read 32 KiB of request headers, as Traefik does).
    // (A sign-in start: the edge allows a client two in a burst, then one a second; the tests
    // above started two.)
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const u = new URL(login);
    const start = await rawGet(port, u.pathname + u.search, `localhost:${port}`, {});
    assert.equal(start.status, 302);
    assert.ok(start.location && !start.location.startsWith(origin), `to the IdP: ${start.location?.slice(0, 80)}`);
  });
});
