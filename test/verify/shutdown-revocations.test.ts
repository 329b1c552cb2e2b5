// The verify sidecar's close() (what SIGTERM runs once the accepted requests are answered) waits
// for the revocation a refresh started in the background when it found its session gone, at a
// slow IdP too: closed at once, the process exited with that refresh token live at the IdP. And
// for a refresh that outlived its request (ahead of time), which has such a token to dispose of.
// Real parts: the sidecar as startVerify makes it, the real BFF, redis-server and an oidc-provider
// dev IdP.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { StoreUnavailable } from '../../src/errors.ts';
import { tokenProviderFactory } from '../../src/oidc/index.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { capturingLogger, devIdpsYaml, loginExpiringAt, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { gate, grantsRefresh, refreshAnswers, revokesPerToken, sleep } from '../helpers/refresh-race.ts';
import { send, verifyEnv, VERIFY_CONFIG_DIR } from '../helpers/verify-app.ts';

/** Saves of refreshed tokens the test store refuses (a failover), before it takes them again. */
let failingSaves = 0;

/**
 * `store` with its takeTransient answered 300 ms late (whether the ended session was replaced is
 * read after the 401 went out: close() then comes while that read is still out), and its next
 * `failingSaves` updateSecrets failing as a store that is away does.
 */
function testStore(store: SessionStore): SessionStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const call = (args: unknown[]) => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      if (prop === 'takeTransient') {
        return async (...args: unknown[]) => {
          const answer = await call(args);
          await sleep(300);
          return answer;
        };
      }
      if (prop === 'updateSecrets') {
        return async (...args: unknown[]) => {
          if (failingSaves > 0) {
            failingSaves--;
            throw new StoreUnavailable(new Error('the test store is away'));
          }
          return call(args);
        };
      }
      return value.bind(target);
    },
  });
}

describe('verify close(): background revocations at shutdown', function () {
  this.timeout(60_000);
  const logs = capturingLogger('info');
  let env: IdpBff;
  let dir: string;
  let sidecar: VerifyProcess | undefined;
  /** Refresh tokens the IdP issued to the sidecar's refreshes. */
  const issued: string[] = [];
  /** Awaited once the IdP has answered a refresh grant, before the sidecar reads the answer. */
  let answered: (() => Promise<void>) | undefined;
  /** Revocations the IdP answered the sidecar, and when (performance.now()) the last one. */
  let revoked = 0;
  let revokedAt = 0;
  let start: () => Promise<VerifyProcess>;

  before(async () => {
    env = await startIdpBff({
      idps: [{
        devIdp: {
          // The logout's revocation of the token the session held leaves the one the sidecar's
          // refresh obtained alive.
          configure: revokesPerToken,
        },
      }],
    });
    dir = mkdtempSync(join(tmpdir(), 'goldpath-verify-drain-'));
    cpSync(VERIFY_CONFIG_DIR, dir, { recursive: true });
    writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(env.idp.issuer));
    // The sidecar's IdP calls: refresh answers noted (and held while `answered` says so), and a
    // revocation endpoint that takes a second to answer.
    const answers = refreshAnswers(async (body) => {
      issued.push(String(body['refresh_token']));
      await answered?.();
    });
    const fetch: FetchLike = async (url, init) => {
      if (!String(url).endsWith('/token/revocation')) return answers(url, init);
      await sleep(1_000);
      const res = await globalThis.fetch(url, init as RequestInit);
      if (res.status === 200) {
        revoked++;
        revokedAt = performance.now();
      }
      return res;
    };
    start = async () => startVerify({
      env: { ...verifyEnv(env.redis.url), GOLDPATH_CONFIG_DIR: dir, TEST_CLIENT_SECRET },
      store: testStore(env.store), log: logs.log, port: 0, host: '127.0.0.1',
      tokens: (args) => tokenProviderFactory({ ...args, fetch }),
    });
  });
  beforeEach(async () => {
    sidecar = await start();
    issued.length = 0;
    revoked = 0;
    answered = undefined;
    failingSaves = 0;
  });
  afterEach(async () => {
    await sidecar?.close();
    sidecar = undefined;
  });
  after(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A session of `user` whose token expires at `expiresAt`, and its CSRF token (for the logout). */
  async function signedIn(user: string, expiresAt: number): Promise<{ cookie: string; csrf: string }> {
    const { cookie } = await loginExpiringAt(env, user, expiresAt);
    const info = await httpCall(`${env.url}/auth/session`, { headers: { cookie } });
    assert.equal(info.status, 200, info.body);
    return { cookie, csrf: JSON.parse(info.body).csrf_token as string };
  }

  /** Holds the IdP's answer to the next refresh grant: `arrived` once it came, until `go` opens. */
  function holdRefreshAnswer(): { arrived: ReturnType<typeof gate>; go: ReturnType<typeof gate> } {
    const arrived = gate();
    const go = gate();
    answered = async () => {
      arrived.open();
      await go.promise;
    };
    return { arrived, go };
  }

  const verifyOrders = (cookie: string) => send(sidecar!.port, '/auth/verify', {
    'x-forwarded-method': 'GET', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'localhost:8080', 'x-forwarded-uri': '/api/orders/1', cookie,
  });

  it('a refresh whose session ended meanwhile: its refresh token is revoked (the IdP taking 1 s) before close() resolves', async () => {
    const { cookie, csrf } = await signedIn('alice', Date.now() - 1_000);
    // The IdP has answered the refresh (rotated the refresh token); the answer is held while the
    // user logs out, so the sidecar's save finds the session gone.
    const { arrived, go } = holdRefreshAnswer();
    const call = verifyOrders(cookie);
    await arrived.promise;
    const out = await httpCall(`${env.url}/auth/logout`, {
      method: 'POST', headers: { cookie, 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
    });
    assert.equal(out.status, 200, out.body);
    go.open();
    assert.equal((await call).status, 401);
    assert.equal(issued.length, 1);
    const rt = issued[0]!;

    const closing = sidecar!.close();
    sidecar = undefined;
    await closing;
    const closedAt = performance.now();
    assert.equal(revoked, 1, 'close() resolved before the IdP answered the revocation');
    assert.ok(revokedAt <= closedAt);
    assert.equal(await grantsRefresh(env.idp.issuer, rt), false, 'the refresh token the ended session\'s refresh obtained is still granted: a live grant nobody holds');
    assert.ok(logs.lines.some((l) => l.includes('the refresh token of a session that ended is revoked')));
    for (const line of logs.lines) assert.ok(!line.includes(rt), 'a refresh token reached the log');
  });

  it('a refresh ahead of time still running at close(), whose session ended meanwhile: close() waits for it and for the revocation it leads to', async () => {
    // The token works for 10 s more: the request is answered with it after a short wait, and the
    // refresh goes on in the background. close() comes while it does (the HTTP drain waited for
    // the request only): the refresh token it obtains is still to be saved, or revoked.
    const { cookie, csrf } = await signedIn('bob', Date.now() + 10_000);
    const { arrived, go } = holdRefreshAnswer();
    const res = await verifyOrders(cookie);
    assert.equal(res.status, 200, 'answered with the token it has, which still works');
    await arrived.promise;
    const out = await httpCall(`${env.url}/auth/logout`, {
      method: 'POST', headers: { cookie, 'x-csrf-token': csrf, accept: 'application/json', 'sec-fetch-mode': 'cors' },
    });
    assert.equal(out.status, 200, out.body);
    assert.equal(issued.length, 1);
    const rt = issued[0]!;

    const closing = sidecar!.close();
    sidecar = undefined;
    let closed = false;
    void closing.then(() => { closed = true; });
    await Promise.race([closing, sleep(1_000)]);
    // Closed already, the process would exit, and its store close, under the refresh.
    assert.equal(closed, false, 'close() resolved while a refresh was still running');
    go.open();
    await closing;
    assert.equal(revoked, 1, 'close() resolved before the IdP answered the revocation');
    assert.equal(await grantsRefresh(env.idp.issuer, rt), false, 'the refresh token the ended session\'s refresh obtained is still granted: a live grant nobody holds');
    for (const line of logs.lines) assert.ok(!line.includes(rt), 'a refresh token reached the log');
  });

  it('a refresh whose save found the store away, saved again in the background: close() waits for that save (the refresh token the IdP rotated to)', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'carol', Date.now() - 1_000);
    failingSaves = 1;
    const res = await verifyOrders(cookie);
    assert.equal(res.status, 503, 'the save failed: this request is a 503, the save goes on in the background');
    assert.equal(issued.length, 1);
    const closing = sidecar!.close();
    sidecar = undefined;
    await closing;
    // Closed before it, the process exits (and its store closes) with the session holding the
    // refresh token the IdP has just rotated away: its next refresh is refused, and it ends.
    const stored = await env.store.getById(session.id);
    assert.equal(stored?.secrets.refreshToken, issued[0], 'close() resolved before the refreshed tokens were saved');
  });
});
