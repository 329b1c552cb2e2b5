// Redis faults for the BFF: killed (kill -9), stalled (SIGSTOP) and full (maxmemory 2mb,
// noeviction, filled). While Redis is broken, /auth/login and /auth/callback answer a clear 503
// page (HTML, or JSON for Accept: JSON; no stack, never a 500) within about a second and /readyz
// is 503; once Redis is back the BFF heals by itself: /readyz 200 and a full login works.
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import { logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall, type CookieJar, type HttpResponse } from '../helpers/login.ts';
import { RedisServer, adminClient } from '../helpers/redis.ts';

/** Well inside "about a second": the store's command timeout is 500 ms. */
const FAST_MS = 1200;

interface Fault {
  name: string;
  args: string[];
  /** Breaks Redis; resolves once it is broken. */
  inject(redis: RedisServer): Promise<void>;
  /** Repairs it (the BFF is not told). */
  heal(redis: RedisServer): Promise<void>;
  /** Reads (and deletes) still work: a full Redis refuses only writes that need memory. */
  readsWork: boolean;
}

/**
 * Writes 1 KiB values until Redis refuses one with OOM. Redis then sits right at the limit (a
 * refused write frees its buffer, so the next small write may slip in again), so the limit is then
 * pinned just below what is used: every write is refused for as long as the fault lasts.
 */
async function fill(redis: RedisServer): Promise<void> {
  const c = adminClient({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    const chunk = 'x'.repeat(1024);
    let full = false;
    for (let round = 0; round < 200 && !full; round++) {
      const p = c.pipeline();
      for (let i = 0; i < 100; i++) p.set(`fill:${round}:${i}`, chunk);
      full = ((await p.exec()) ?? []).some(([err]) => err && /OOM/.test(err.message));
    }
    assert.ok(full, 'Redis reached maxmemory');
    const used = Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
    await c.config('SET', 'maxmemory', String(used - 256 * 1024));
    await assert.rejects(c.set('fill:probe', '1'), /OOM/, 'Redis refuses every write');
  } finally {
    c.disconnect();
  }
}

async function flush(redis: RedisServer): Promise<void> {
  const c = adminClient({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    await c.flushall();
    await c.config('SET', 'maxmemory', '2mb');
  } finally {
    c.disconnect();
  }
}

const FAULTS: Fault[] = [
  { name: 'killed (kill -9)', args: [], inject: (r) => r.kill('SIGKILL'), heal: (r) => r.start(), readsWork: false },
  { name: 'stalled (SIGSTOP)', args: [], inject: async (r) => r.pause(), heal: async (r) => r.resume(), readsWork: false },
  { name: 'full (maxmemory 2mb, noeviction)', args: ['--maxmemory', '2mb', '--maxmemory-policy', 'noeviction'], inject: fill, heal: flush, readsWork: true },
];

async function timed(call: Promise<HttpResponse>): Promise<HttpResponse & { ms: number }> {
  const start = performance.now();
  const r = await call;
  return { ...r, ms: performance.now() - start };
}

function assert503(r: HttpResponse & { ms: number }, as: 'html' | 'json', what: string): void {
  assert.equal(r.status, 503, `${what}: expected 503, got ${r.status}: ${r.body.slice(0, 300)}`);
  assert.ok(r.ms < FAST_MS, `${what}: answered in ${Math.round(r.ms)} ms`);
  assert.equal(r.headers['cache-control'], 'no-store', what);
  assert.equal(r.headers['retry-after'], '5', what);
  assert.doesNotMatch(r.body, /\bat .+[.](js|ts):\d+|Error:|ECONNREFUSED|OOM/, `${what}: no stack or internals`);
  assert.equal(r.headers['set-cookie']?.some((c) => c.startsWith('goldpath=')) ?? false, false, `${what}: no session cookie`);
  if (as === 'html') {
    assert.match(String(r.headers['content-type']), /text\/html/, what);
    assert.match(r.body, /Sign-in is unavailable right now/, what);
    assert.match(r.body, /temporarily unavailable/, what);
  } else {
    assert.match(String(r.headers['content-type']), /application\/json/, what);
    const body = JSON.parse(r.body);
    assert.equal(body.error, 'unavailable', what);
    assert.match(body.error_description, /temporarily unavailable/, what);
  }
}

for (const fault of FAULTS) {
  describe(`BFF with Redis ${fault.name}`, function () {
    this.timeout(20_000);
    let redis: RedisServer;
    let env: IdpBff;
    let signingKey: JWK;

    before(async () => {
      redis = await RedisServer.start(fault.args);
      signingKey = await generateSigningKey();
      env = await startIdpBff({ redis, idps: [{ devIdp: { keys: [signingKey] } }] });
    });
    after(async () => {
      redis?.resume();
      await env?.close();
      await redis?.stop();
    });

    /** A login stopped just before the IdP's redirect back: the callback URL and the browser's jar. */
    async function pendingCallback(): Promise<{ url: string; jar: CookieJar }> {
      const r = await env.login('alice', { stopBefore: (u) => u.pathname === '/auth/callback' });
      const url = r.hops.at(-1)?.location;
      assert.ok(url && new URL(url).pathname === '/auth/callback', 'the IdP redirected back');
      return { url, jar: r.jar };
    }

    it('login and callback are a clear 503 page (or JSON) within a second, /readyz is 503, and the BFF recovers by itself', async () => {
      // Before the fault: everything works, and two logins are waiting at the IdP.
      assert.equal((await httpCall(`${env.url}/readyz`)).status, 200);
      const before = await env.login('bob');
      assert.equal(before.status, 302);
      const csrf = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: before.jar })).body).csrf_token as string;
      const forHtml = await pendingCallback();
      const forJson = await pendingCallback();
      const loggedOutByIdp = (await env.store.get((await env.login('carol')).sessionCookie!))!;

      await fault.inject(redis);

      const html = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };
      const json = { accept: 'application/json' };
      assert503(await timed(httpCall(`${env.url}/auth/login?return_to=/x`, { headers: html })), 'html', 'login (html)');
      assert503(await timed(httpCall(`${env.url}/auth/login`, { headers: json })), 'json', 'login (json)');
      // A browser that already has a session starts a new login: still a 503, not a 500.
      assert503(await timed(httpCall(`${env.url}/auth/login`, { headers: html, jar: before.jar })), 'html', 'login with a session');
      assert503(await timed(httpCall(forHtml.url, { headers: html, jar: forHtml.jar })), 'html', 'callback (html)');
      assert503(await timed(httpCall(forJson.url, { headers: json, jar: forJson.jar })), 'json', 'callback (json)');

      // The JSON endpoints fail closed the same way: 503 {"error":"unavailable"}, not 401, not 500.
      // A full Redis still serves reads and deletes: the session is shown, logout works.
      for (const [what, call] of [
        ['session', httpCall(`${env.url}/auth/session`, { jar: before.jar })],
        ['logout', httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: before.jar, headers: { 'x-csrf-token': csrf, ...json } })],
      ] as const) {
        const r = await timed(call);
        assert.ok(r.ms < FAST_MS, `${what} answered in ${Math.round(r.ms)} ms`);
        if (fault.readsWork) {
          assert.equal(r.status, 200, `${what}: ${r.status} ${r.body}`);
        } else {
          assert.equal(r.status, 503, `${what}: ${r.status} ${r.body}`);
          assert.equal(JSON.parse(r.body).error, 'unavailable');
        }
      }

      // A back-channel logout: a full Redis still deletes (it cannot record the jti: a replay could
      // only delete again); one that is down or stalled is a 503, and the IdP retries.
      const bcl = await timed(httpCall(`${env.url}/auth/backchannel-logout`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: await logoutToken(env.idp.issuer, signingKey, { sid: loggedOutByIdp.sid }) }).toString(),
      }));
      assert.ok(bcl.ms < FAST_MS, `back-channel logout answered in ${Math.round(bcl.ms)} ms`);
      if (fault.readsWork) {
        assert.equal(bcl.status, 200, `back-channel logout: ${bcl.status} ${bcl.body}`);
        assert.equal(await env.store.getById(loggedOutByIdp.id), null, 'the session is gone');
      } else {
        assert.equal(bcl.status, 503, `back-channel logout: ${bcl.status} ${bcl.body}`);
      }

      const ready = await timed(httpCall(`${env.url}/readyz`));
      assert.equal(ready.status, 503, `readyz: ${ready.body}`);
      assert.ok(ready.ms < FAST_MS, `readyz answered in ${Math.round(ready.ms)} ms`);
      assert.equal(JSON.parse(ready.body).error, 'unavailable');
      assert.equal((await httpCall(`${env.url}/healthz`)).status, 200, 'alive all along');
      const metrics = await httpCall(`${env.url}/metrics`);
      assert.match(metrics.body, /goldpath_store_errors_total [1-9]/);
      assert.doesNotMatch(metrics.body, /goldpath_bff_request_duration_seconds_count\{route="[^"]+",status="500"\}/, 'no 500 at all');

      // Repair Redis behind the BFF's back: it must notice on its own.
      await fault.heal(redis);
      const deadline = Date.now() + 8_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await httpCall(`${env.url}/readyz`)).status;
        if (status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 200, '/readyz is 200 again');
      const after = await env.login('carol', { returnTo: '/back' });
      assert.equal(after.status, 302, after.last.body.slice(0, 300));
      assert.equal(after.location, `${env.url}/back`);
      const session = await httpCall(`${env.url}/auth/session`, { jar: after.jar });
      assert.equal(session.status, 200);
      const info = JSON.parse(session.body);
      assert.equal(info.user.sub, 'carol');
      // What the browser learns about its session: never a token.
      assert.deepEqual(Object.keys(info).sort(), ['authenticated', 'csrf_token', 'expires_at', 'idle_expires_at', 'user']);
      const stored = (await env.store.get(after.sessionCookie!))!;
      for (const secret of [stored.secrets.tokens['']!.value, stored.secrets.refreshToken!, stored.secrets.idToken!]) {
        assert.ok(!session.body.includes(secret), 'no token in /auth/session');
      }
    });
  });
}
