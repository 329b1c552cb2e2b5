// Back-channel logout beyond the basics of logout.test.ts: a token naming both sid and sub when the
// sessions were stored without a sid, and BFF replicas whose clocks disagree. Real dev IdP (its
// signing key signs the logout tokens), real redis-server, real HTTP.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { createBffApp, type BffApp } from '../../src/bff/app.ts';
import { generateSigningKey } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { logoutToken, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { newSession } from '../helpers/sessions.ts';
import { closeServer } from '../helpers/close-server.ts';

async function loggedIn(env: IdpBff, user: string) {
  const r = await env.login(user);
  assert.equal(r.status, 302, r.last.body.slice(0, 300));
  return { jar: r.jar, session: (await env.store.get(r.sessionCookie!))! };
}

function post(origin: string, token: string) {
  return httpCall(`${origin}/auth/backchannel-logout`, {
    method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

/** A sign-in stopped at the IdP's redirect back: its callback URL, to complete it later. */
async function pendingSignIn(env: IdpBff, user: string) {
  const pending = await env.login(user, { stopBefore: (u) => u.pathname.startsWith('/auth/callback') });
  const callback = pending.hops.at(-1)!.location!;
  assert.ok(callback.startsWith(`${env.url}/auth/callback?`), callback);
  return { complete: () => httpCall(callback, { jar: pending.jar, headers: { accept: 'text/html' } }), jar: pending.jar };
}

describe('BFF back-channel logout naming sid and sub, of sessions stored without a sid', function () {
  // An IdP that puts no sid in its ID tokens (here: the client is registered without
  // backchannel_logout_session_required) but names one in its logout tokens, with the sub.
  this.timeout(30_000);
  let env: IdpBff;
  let key: JWK;
  before(async () => {
    key = await generateSigningKey();
    env = await startIdpBff({ idps: [{ devIdp: { keys: [key] }, client: { backchannel_logout_session_required: false } }] });
  });
  after(() => env?.close());

  it('ends the sid\'s sessions (whatever their sub) and the sub\'s sessions stored without a sid; not the sub\'s under another sid, nor other users\'', async () => {
    const a = await loggedIn(env, 'wendy');
    const b = await loggedIn(env, 'wendy');
    assert.equal(a.session.sid, undefined, 'the IdP gave no sid at sign-in');
    const bystander = await loggedIn(env, 'yolanda');
    // Sessions stored with a sid, as an ID token that carried one leaves them.
    const otherIdpSession = (await env.store.create(newSession({ sub: 'wendy', sid: 'idp-session-2' }))).session;
    const namedOtherSub = (await env.store.create(newSession({ sub: 'xavier', sid: 'idp-session-1' }))).session;

    const res = await post(env.url, await logoutToken(env.idp.issuer, key, { sid: 'idp-session-1', sub: 'wendy' }));
    assert.equal(res.status, 200, res.body);
    assert.equal(await env.store.getById(a.session.id), null, 'a session of that sub stored without a sid is ended');
    assert.equal(await env.store.getById(b.session.id), null);
    assert.equal((await httpCall(`${env.url}/auth/session`, { jar: a.jar })).status, 401);
    assert.equal(await env.store.getById(namedOtherSub.id), null, 'the IdP said that IdP session ended: all of its sessions end');
    assert.ok(await env.store.getById(otherIdpSession.id), 'another IdP session of the same user, which the token did not name, stays');
    assert.ok(await env.store.getById(bystander.session.id), 'another user\'s session stays');
  });

  it('a sign-in of that sub without a sid begun before such a logout is refused; one begun after is not', async () => {
    const pending = await pendingSignIn(env, 'zoe');
    assert.equal((await post(env.url, await logoutToken(env.idp.issuer, key, { sid: 'idp-session-z', sub: 'zoe' }))).status, 200);
    const late = await pending.complete();
    assert.equal(late.status, 400, late.body.slice(0, 300));
    assert.match(late.body, /ended this sign-in \(a logout\)/);
    assert.equal(pending.jar.get('goldpath'), undefined, 'no session cookie');
    await new Promise((r) => setTimeout(r, 2)); // the store's clock is in ms
    const after = await loggedIn(env, 'zoe');
    assert.ok(await env.store.getById(after.session.id), 'a sign-in begun after the logout signs in');
  });
});

describe('BFF back-channel logout by sub on replicas whose clocks disagree', function () {
  // Replica A starts and completes sign-ins; replica B, on the same Redis and IdP, receives the
  // IdP's logout. B's clock is off by SKEW_MS (the store's `now`, the seam its clock reads).
  this.timeout(30_000);
  const SKEW_MS = 120_000;
  let env: IdpBff;
  let key: JWK;
  before(async () => {
    key = await generateSigningKey();
    env = await startIdpBff({ idps: [{ devIdp: { keys: [key] } }] });
  });
  after(() => env?.close());

  async function replicaB(skewMs: number): Promise<{ url: string; close(): Promise<void> }> {
    const store: KvSessionStore = createSessionStore({ url: env.redis.url, settings: env.settings, now: () => Date.now() + skewMs });
    const bff: BffApp = await createBffApp({ settings: env.settings, config: env.config, store, log: silentLogger });
    const server: Server = createServer(bff.app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      async close() {
        await closeServer(server);
        await bff.close();
        await store.close();
      },
    };
  }

  it('B\'s clock behind: a sign-in begun on A before the logout reached B is still refused', async () => {
    const b = await replicaB(-SKEW_MS);
    try {
      const pending = await pendingSignIn(env, 'lagging');
      assert.equal((await post(b.url, await logoutToken(env.idp.issuer, key, { sub: 'lagging' }))).status, 200);
      const late = await pending.complete();
      assert.equal(late.status, 400, `signed in after the IdP logged the user out: ${late.status} ${late.body.slice(0, 200)}`);
      assert.match(late.body, /ended this sign-in \(a logout\)/);
      assert.equal(await env.store.deleteBySub('dev', 'lagging'), 0, 'no session stored');
    } finally {
      await b.close();
    }
  });

  it('B\'s clock ahead: a sign-in begun on A after the logout reached B is not refused', async () => {
    const b = await replicaB(SKEW_MS);
    try {
      assert.equal((await post(b.url, await logoutToken(env.idp.issuer, key, { sub: 'leading' }))).status, 200);
      await new Promise((r) => setTimeout(r, 2)); // the store's clock is in ms
      const r = await env.login('leading');
      assert.equal(r.status, 302, `a sign-in begun after the logout was refused: ${r.last.body.slice(0, 200)}`);
      assert.ok(await env.store.get(r.sessionCookie!));
    } finally {
      await b.close();
    }
  });
});

describe('BFF back-channel logout of an unverified token whose iss is a run of slashes', function () {
  // Anyone may post a logout token, and its `iss` picks the IdPs (byIssuer) before any signature
  // is checked: the issuer comparison must cost what the string's length does, not its square.
  this.timeout(60_000);
  let env: IdpBff;
  before(async () => {
    env = await startIdpBff();
    // One issuer under many names (as operators register one client per scope set): every name
    // is compared with the token's iss.
    const dev = env.config.idps.idps['dev']!;
    const idps = Object.fromEntries(Array.from({ length: 16 }, (_, i) => i === 0 ? ['dev', dev] : [`dev${i}`, { ...dev, name: `dev${i}` }]));
    await env.bff.reload({ ...env.config, idps: { default: 'dev', idps } });
  });
  after(() => env?.close());

  it('is refused (400) in no more time than any other bad token: no quadratic backtracking over the slashes', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'RS256' })}.${b64({ iss: `${'/'.repeat(11_500)}x`, aud: 'goldpath' })}.x`;
    assert.ok(new URLSearchParams({ logout_token: token }).toString().length < 16 * 1024, 'within the body limit');
    await post(env.url, token); // warm-up
    const started = performance.now();
    const res = await post(env.url, token);
    const ms = performance.now() - started;
    assert.equal(res.status, 400, res.body);
    assert.equal(JSON.parse(res.body).error, 'invalid_request');
    // Measured: ~1 s with /\/+$/ (65 ms per name), a few ms without it.
    assert.ok(ms < 600, `a 15 KB logout token held the BFF ${ms.toFixed(0)} ms`);
  });
});
