// Refresh answers a real oidc-provider gives (or a proxy in front of it edits), through the real
// token provider, a real redis-server and the real /auth/verify chain:
//   - an ID token for another user (OIDC Core 12.2) ends the session: nothing of the answer is kept;
//   - an ID token for the same user rebuilds the user the policies see (a role taken away: 403),
//     under the claims of the IdP's userinfo, as at sign-in (more in refresh-userinfo.test.ts);
//   - an IdP that issues 10 s access tokens is not asked for a refresh grant at every request;
//   - a DPoP token issued to a session without a DPoP key is a 503, never a 500;
//   - an ID token whose signature or claims fail verification ends the session at once, its grant
//     revoked: nothing of the answer is kept, and the grant is not sent again;
//   - an ID token the IdP signed whose exp or nbf fails by our clock (a clock off at either end)
//     is a 503 that keeps the refresh token the IdP rotated to, and nothing else of the answer;
//   - so is a 200 answer openid-client refuses for its shape (no access_token, token_type mac...);
//   - an IdP that refuses the client (unauthorized_client) does not end its users' sessions;
//   - an IdP that asks for the user at refresh (interaction_required...) ends the session: 401.
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose';
import { generateSigningKey } from '../../src/dev/idp.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider } from '../../src/oidc/token-provider.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { silentLogger } from '../../src/log.ts';
import { Unavailable } from '../../src/errors.ts';
import { capturingLogger, loginExpiringAt, startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { type RunningVerify } from '../helpers/verify-app.ts';
import { refreshAnswers, sleep, startRefreshingVerify, userinfoAnswers } from '../helpers/refresh-race.ts';


describe('refresh answers', function () {
  this.timeout(60_000);
  let env: IdpBff;
  let verify: RunningVerify;
  let store: SessionStore;
  let closeVerify: (() => Promise<void>) | undefined;
  let grants = 0;
  let grantErrors: string[] = [];
  /** Edits the JSON of the IdP's answers to refresh grants (none when undefined). */
  let editRefresh: ((body: Record<string, unknown>) => void | Promise<void>) | undefined;
  /** Edits the claims of the IdP's userinfo answers (none when undefined). */
  let editUserinfo: ((claims: Record<string, unknown>) => void) | undefined;
  /** The IdP's token endpoint answers unauthorized_client (RFC 6749 5.2) while set. */
  let refuseClient = false;
  /** The IdP's token endpoint answers refresh grants with this OIDC error (400) while set. */
  let askUser: string | undefined;
  const logs = capturingLogger('info');
  /** The dev IdP's signing key: an ID token re-signed with it is the IdP's own. */
  let signingKey: JWK;

  before(async () => {
    signingKey = await generateSigningKey();
    // The IdP issues access tokens for 10 s.
    env = await startIdpBff({ idps: [{ devIdp: { accessTokenTtl: 10, keys: [signingKey] } }] });
    env.idp.provider.on('grant.success', (ctx: { oidc: { params: { grant_type: string } } }) => {
      if (ctx.oidc.params.grant_type === 'refresh_token') grants++;
    });
    env.idp.provider.on('grant.error', (ctx: { oidc: { params?: { grant_type?: string } } }, err: { error?: string }) => {
      if (ctx.oidc.params?.grant_type === 'refresh_token') grantErrors.push(String(err.error));
    });
    const answers = userinfoAnswers(refreshAnswers(async (body) => { await editRefresh?.(body); }), (claims) => { editUserinfo?.(claims); });
    const fetch: FetchLike = async (url, init) => {
      if (refuseClient && String(init.body ?? '').includes('grant_type=refresh_token')) {
        // oidc-provider answers invalid_request for a grant the client may not use; other IdPs
        // answer as RFC 6749 5.2 says (and the IdP has not spent the refresh token).
        grantErrors.push('unauthorized_client');
        return Response.json({ error: 'unauthorized_client', error_description: 'the client is not allowed the refresh_token grant' }, { status: 400, headers: { 'cache-control': 'no-store' } });
      }
      if (askUser !== undefined && String(init.body ?? '').includes('grant_type=refresh_token')) {
        // As Entra ID answers a refresh grant when conditional access wants a second factor.
        grantErrors.push(askUser);
        return Response.json({ error: askUser, error_description: 'AADSTS50076: you must use multi-factor authentication to access this resource.' }, { status: 400, headers: { 'cache-control': 'no-store' } });
      }
      return answers(url, init);
    };
    ({ store, verify, close: closeVerify } = await startRefreshingVerify(env, fetch, logs.log));
  });
  after(async () => {
    await closeVerify?.();
    await env?.close();
  });
  beforeEach(() => {
    grants = 0;
    grantErrors = [];
    editRefresh = undefined;
    editUserinfo = undefined;
    refuseClient = false;
    askUser = undefined;
    logs.lines.length = 0;
  });

  it('a refresh answered with an ID token for another user ends the session: 401, and nothing of the answer is kept or served', async () => {
    const r = await env.login('mallory');
    const other = (await env.store.get(r.sessionCookie!))!.secrets.idToken!;
    assert.equal(decodeJwt(other).sub, 'mallory');
    const { cookie, session, token } = await loginExpiringAt(env, 'alice', Date.now() - 1000);
    // A real ID token of the same IdP, valid in every claim openid-client checks: only its sub differs.
    editRefresh = (body) => { body['id_token'] = other; };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 401, res.body);
    assert.equal(res.headers['authorization'], undefined, 'the access token of that answer is not sent upstream');
    assert.notEqual(res.headers['x-auth-user'], 'alice');
    assert.equal(grants, 1);
    const stored = await env.store.getById(session.id);
    assert.ok(stored === null || (stored.secrets.tokens['']!.value === token && decodeJwt(stored.secrets.idToken!).sub === 'alice'),
      'the session does not hold another user\'s ID token (sent as id_token_hint at logout)');
    assert.equal(stored, null, 'the session is over');
  });

  it('an ID token for the same user in a refresh answer is kept', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'bob', Date.now() - 1000);
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 200, res.body);
    const stored = (await env.store.getById(session.id))!;
    assert.equal(decodeJwt(stored.secrets.idToken!).sub, 'bob');
    assert.notEqual(stored.secrets.refreshToken, session.secrets.refreshToken);
  });

  it('a refresh answer\'s ID token rebuilds the user the policies see: a role the IdP took away denies at once (403), a claim the token leaves out comes from userinfo', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'rita', Date.now() - 1000);
    assert.deepEqual(session.secrets.user.roles, ['reader']);
    const before = session.secrets.user;
    // The IdP's own ID token (re-signed with its key), the reader role taken away, its name left out;
    // its userinfo says nothing of roles or groups (as Entra ID's app roles are in its ID tokens only).
    resignedIdToken((claims) => {
      claims['roles'] = [];
      claims['groups'] = ['auditors'];
      delete claims['name'];
    });
    editUserinfo = (claims) => {
      delete claims['roles'];
      delete claims['groups'];
    };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 403, `the request whose refresh took the role away is decided on the new user: ${res.body}`);
    const stored = (await env.store.getById(session.id))!;
    assert.notEqual(stored.secrets.refreshToken, session.secrets.refreshToken, 'the refresh was kept');
    assert.deepEqual(stored.secrets.user.roles, []);
    assert.deepEqual(stored.secrets.user.groups, ['auditors']);
    assert.equal(stored.secrets.user.name, before.name, 'a claim the refreshed ID token leaves out is userinfo\'s');
    assert.equal(stored.secrets.user.email, before.email);
    assert.deepEqual(stored.secrets.user.scopes, before.scopes, 'the scopes granted at sign-in stay');
    assert.equal(stored.secrets.user.sub, 'rita');
  });

  it('a refresh answer without an ID token keeps the user as it was', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'ruth', Date.now() - 1000);
    editRefresh = (body) => { delete body['id_token']; };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual((await env.store.getById(session.id))!.secrets.user, session.secrets.user);
  });

  it('a refresh whose ID token or userinfo makes the user\'s profile too large to keep ends the session, as such a sign-in is refused: 401, its refresh token revoked', async () => {
    const groups = Array.from({ length: 1001 }, (_, i) => `group-${i}`);
    const sources: Record<string, (answered: (body: Record<string, unknown>) => void) => void> = {
      // The IdP's own ID token (re-signed with its key), its userinfo saying nothing of groups.
      'ID token': (answered) => {
        resignedIdToken((claims) => { claims['groups'] = groups; }, answered);
        editUserinfo = (claims) => { delete claims['groups']; };
      },
      'userinfo': (answered) => {
        editRefresh = answered;
        editUserinfo = (claims) => { claims['groups'] = groups; };
      },
    };
    for (const [source, make] of Object.entries(sources)) {
      logs.lines.length = 0;
      const { cookie, session } = await loginExpiringAt(env, `rory-${source.replace(/\W+/g, '-')}`, Date.now() - 1000);
      let rotated: string | undefined;
      make((body) => { rotated = String(body['refresh_token']); });
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 401, `${source}: ${res.body}`);
      assert.equal(res.headers['authorization'], undefined);
      assert.equal(await env.store.getById(session.id), null, `${source}: the session is over`);
      await eventually(() => logs.lines.some((l) => l.includes('too large') && l.includes('"groups":1001')), 'the log says why');
      const live = async () => (await env.idp.provider.RefreshToken.find(rotated!)) !== undefined;
      for (let i = 0; i < 50 && await live(); i++) await sleep(100);
      assert.equal(await live(), false, `${source}: the refresh token the answer carried is revoked`);
    }
  });

  it('10 s access tokens: requests over 7 s need one refresh grant, not one each, and the token is still refreshed before it expires', async () => {
    const r = await env.login('carol');
    const cookie = `goldpath=${r.sessionCookie}`;
    const seen = new Set<string>();
    const until = Date.now() + 7_000;
    let n = 0;
    while (Date.now() < until) {
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 200, res.body);
      seen.add(String(res.headers['authorization']));
      n++;
      await sleep(250);
    }
    assert.ok(n >= 20, `${n} requests`);
    assert.ok(grants <= 2, `${grants} refresh grants for ${n} requests (the IdP was asked at every request)`);
    assert.ok(seen.size >= 2, 'the token was refreshed before it expired');
    assert.deepEqual(grantErrors, []);
  });

  it('a DPoP token issued to a session without a DPoP key is a 503 (never a 500), and no token is sent', async () => {
    const { cookie } = await loginExpiringAt(env, 'dora', Date.now() - 1000);
    editRefresh = (body) => { body['token_type'] = 'DPoP'; };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers['authorization'], undefined);
  });

  it('an access token a header cannot carry (not printable ASCII) is a 503 (never a 500), and nothing is sent', async () => {
    const { cookie } = await loginExpiringAt(env, 'uma', Date.now() - 1000);
    editRefresh = (body) => { body['access_token'] = `${String(body['access_token'])}\u20ac`; };
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers['authorization'], undefined);
  });

  it('an access token with a space in it is a 503, never sent: no Authorization header carries one as the IdP issued it', async () => {
    // RFC 6749 A.12 lets a token hold spaces; Bearer (RFC 6750 2.1) and DPoP (RFC 9449 7.1) credentials
    // cannot: a trailing one is trimmed on the way (another token reaches the upstream, a DPoP proof's
    // ath no longer matches it), an inner one makes the header read as something else.
    for (const [user, edit] of [['ursula', (t: string) => `${t} `], ['umberto', (t: string) => `${t.slice(0, 20)} ${t.slice(20)}`]] as const) {
      const { cookie } = await loginExpiringAt(env, user, Date.now() - 1000);
      editRefresh = (body) => { body['access_token'] = edit(String(body['access_token'])); };
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 503, `${user}: ${res.status} ${String(res.headers['authorization'])}`);
      assert.equal(res.headers['authorization'], undefined);
    }
  });

  it('a client the IdP no longer authenticates (invalid_client, a 401 challenge) is not sent again at every request: 503, the session stays', async () => {
    const { session } = await loginExpiringAt(env, 'erin', Date.now() - 1000);
    const dev = env.config.idps.idps['dev']!;
    const idps = { ...env.config.idps, idps: { dev: { ...dev, clientSecret: 'a-secret-the-idp-does-not-know-0123' } } };
    const tokens = createTokenProvider({ idps: new IdpRegistry(idps, { log: silentLogger }), store, log: silentLogger });
    for (let i = 0; i < 3; i++) {
      await assert.rejects(tokens.credentials(session, '', 'GET', 'https://api.example.test/'), Unavailable);
    }
    assert.deepEqual(grantErrors, ['invalid_client'], 'one refused grant, not three');
    assert.ok(await env.store.getById(session.id), 'the session stays (a configuration problem, not the user\'s)');
  });

  /**
   * A refresh of `user` whose answer's ID token `forge` rewrites (signed with a key the IdP never
   * published): the session ends at once (401, its grant revoked), and the grant is not sent again.
   */
  async function untrustedAnswer(user: string, forge: (claims: Record<string, unknown>) => void): Promise<void> {
    const { cookie, session } = await loginExpiringAt(env, user, Date.now() - 1000);
    // The IdP's own ID token for this user, its header (kid) kept, signed with another key: what a
    // party between goldpath and the token endpoint could make.
    let rotated: string | undefined;
    resignedIdToken(forge, (body) => { rotated = String(body['refresh_token']); }, await generateSigningKey());
    for (let i = 0; i < 2; i++) {
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 401, res.body);
      assert.equal(res.headers['authorization'], undefined, 'the access token of that answer is not sent upstream');
    }
    assert.equal(grants, 1, 'the grant is not sent again (with rotation, our own retry would be invalid_grant)');
    assert.deepEqual(grantErrors, []);
    assert.equal(await env.store.getById(session.id), null, 'the session is over');
    assert.ok(rotated && rotated !== session.secrets.refreshToken, 'the IdP rotated the refresh token');
    // Revoked in the background: neither the spent refresh token nor the one the answer carried is left live.
    const live = async () => (await env.idp.provider.RefreshToken.find(rotated!)) !== undefined;
    for (let i = 0; i < 50 && await live(); i++) await sleep(100);
    assert.equal(await live(), false, 'the refresh token the untrusted answer carried is revoked (no live grant nobody holds)');
    for (const rt of [rotated, session.secrets.refreshToken!]) assert.ok(!logs.lines.some((l) => l.includes(rt)), 'a refresh token reached the log');
  }

  it('a refresh answered with an ID token the IdP did not sign ends the session at once (401, its grant revoked): the grant is not sent again', async () => {
    await untrustedAnswer('ivy', () => undefined);
    assert.ok(logs.lines.some((l) => l.includes('fails verification') && l.includes('JWSSignatureVerificationFailed')), 'the log says why');
  });

  it('a refresh answered with an ID token openid-client refuses (a wrong aud) ends the session at once: the grant is not sent again', async () => {
    await untrustedAnswer('iris', (claims) => { claims['aud'] = 'another-client'; });
    assert.ok(logs.lines.some((l) => l.includes('fails verification') && l.includes('OAUTH_JWT_CLAIM_COMPARISON_FAILED')), 'the log says why');
  });

  it('a refresh answered with an ID token past its exp that the IdP did not sign ends the session at once: openid-client stops at exp, the signature is checked all the same', async () => {
    await untrustedAnswer('ian', (claims) => { claims['exp'] = Math.floor(Date.now() / 1000) - 3600; });
    assert.ok(logs.lines.some((l) => l.includes('fails verification') && l.includes('JWSSignatureVerificationFailed')), 'the log says why');
  });

  /** Resolves once `seen` holds, within 3 s (a line the failure gate held back comes within 1 s). */
  async function eventually(seen: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 30 && !seen(); i++) await sleep(100);
    assert.ok(seen(), what);
  }

  /**
   * Edits refresh answers: their ID token's claims rewritten by `edit`, its header (kid) kept,
   * re-signed with `key`: the IdP's own, or one it never published.
   */
  function resignedIdToken(edit: (claims: Record<string, unknown>, now: number) => void, answered: (body: Record<string, unknown>) => void = () => undefined, key: JWK = signingKey) {
    editRefresh = async (body) => {
      answered(body);
      const real = String(body['id_token']);
      const claims = decodeJwt(real) as Record<string, unknown>;
      edit(claims, Math.floor(Date.now() / 1000));
      body['id_token'] = await new SignJWT(claims).setProtectedHeader(decodeProtectedHeader(real) as { alg: string }).sign(await importJWK(key, 'RS256'));
    };
  }

  /**
   * A refresh of `user` whose answer openid-client refuses though it is the IdP's own, as `answer`
   * makes it (given the function to call with each answer's body as the IdP sent it): a 503, the
   * session keeps the refresh token the IdP rotated to (and nothing else of the answer), the grant
   * is not sent again at once, the log says why (`why`), and once the IdP's answers are mended the
   * kept refresh token refreshes the session.
   */
  async function refreshTokenKept(user: string, answer: (answered: (body: Record<string, unknown>) => void) => void, why: (line: string) => boolean): Promise<void> {
    const { cookie, session, token } = await loginExpiringAt(env, user, Date.now() - 1000);
    let rotated: string | undefined;
    answer((body) => { rotated = String(body['refresh_token']); });
    for (let i = 0; i < 2; i++) {
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 503, res.body);
      assert.equal(res.headers['authorization'], undefined, 'the access token of that answer is not sent upstream');
    }
    assert.equal(grants, 1, 'the grant is not sent again at once (until it is mended, each would spend a refresh token)');
    assert.deepEqual(grantErrors, []);
    const stored = await env.store.getById(session.id);
    assert.ok(stored, 'the session stays');
    assert.ok(rotated && rotated !== session.secrets.refreshToken, 'the IdP rotated the refresh token');
    assert.equal(stored.secrets.refreshToken, rotated, 'the session holds the refresh token the IdP rotated to');
    assert.equal(stored.secrets.tokens['']!.value, token, 'the answer\'s access token is not kept');
    assert.equal(stored.secrets.idToken, session.secrets.idToken, 'nor its ID token');
    await eventually(() => logs.lines.some(why), 'the log says why');
    // Mended (the IdP's answers as they are), in a process whose refusal window this one's is
    // not: the kept refresh token is the IdP's live one, and refreshes the session.
    editRefresh = undefined;
    const mended = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log: silentLogger }), store, log: silentLogger });
    const creds = await mended.credentials(stored, '', 'GET', 'https://api.example.test/');
    assert.ok(creds && creds.authorization !== `Bearer ${token}`, 'the session is refreshed');
    assert.equal(grants, 2);
    assert.deepEqual(grantErrors, [], 'the IdP accepted the kept refresh token');
    assert.notEqual((await env.store.getById(session.id))!.secrets.refreshToken, rotated, 'and rotated it again');
    for (const rt of [rotated, session.secrets.refreshToken!]) assert.ok(!logs.lines.some((l) => l.includes(rt)), 'a refresh token reached the log');
  }

  /** A refresh answer whose ID token the IdP signed, its times shifted by `retime` as a clock off at either end shifts them. */
  async function outOfTimeAnswer(user: string, retime: (claims: Record<string, unknown>, now: number) => void): Promise<void> {
    await refreshTokenKept(user, (answered) => resignedIdToken(retime, answered),
      (l) => l.includes('exp or nbf') && l.includes('is kept') && l.includes('OAUTH_JWT_TIMESTAMP_CHECK_FAILED'));
  }

  it('a refresh answered with an ID token the IdP signed but past its exp (our clock ahead, or the IdP\'s behind) is a 503 that keeps the rotated refresh token: the session goes on once the clock is mended', async () => {
    await outOfTimeAnswer('ike', (claims, now) => {
      claims['iat'] = now - 7200;
      claims['exp'] = now - 3600;
    });
  });

  it('a refresh answered with an ID token the IdP signed but not valid for an hour yet (nbf and iat ahead: the IdP\'s clock ahead, as Entra ID\'s tokens carry nbf) is a 503 that keeps the rotated refresh token', async () => {
    await outOfTimeAnswer('isa', (claims, now) => {
      claims['iat'] = now + 3600;
      claims['nbf'] = now + 3600;
      claims['exp'] = now + 7200;
    });
  });

  it('a refresh answered with an ID token the IdP signed, past its exp, for another user ends the session: nothing of the answer is kept, its refresh token revoked', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'ines', Date.now() - 1000);
    let rotated: string | undefined;
    resignedIdToken((claims, now) => {
      claims['sub'] = 'mallory';
      claims['exp'] = now - 3600;
    }, (body) => { rotated = String(body['refresh_token']); });
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 401, res.body);
    assert.equal(res.headers['authorization'], undefined);
    assert.equal(await env.store.getById(session.id), null, 'the session is over');
    assert.ok(logs.lines.some((l) => l.includes('another user')), 'the log says why');
    const live = async () => (await env.idp.provider.RefreshToken.find(rotated!)) !== undefined;
    for (let i = 0; i < 50 && await live(); i++) await sleep(100);
    assert.equal(await live(), false, 'the refresh token the answer carried is revoked');
  });

  it('a 200 refresh answer openid-client refuses for its shape (no access_token; token_type mac; expires_in "abc") is a 503 that keeps the rotated refresh token: the session goes on once the IdP is mended', async () => {
    const breakages: Record<string, (body: Record<string, unknown>) => void> = {
      'no access_token': (body) => { delete body['access_token']; },
      'token_type mac': (body) => { body['token_type'] = 'mac'; },
      'expires_in "abc"': (body) => { body['expires_in'] = 'abc'; },
    };
    for (const [what, edit] of Object.entries(breakages)) {
      grants = 0;
      logs.lines.length = 0;
      await refreshTokenKept(`shape-${what.replace(/\W+/g, '-')}`, (answered) => {
        editRefresh = (body) => { answered(body); edit(body); };
      }, (l) => l.includes('not a valid token response') && l.includes('is kept'));
    }
  });

  it('a 200 refresh answer refused for its shape whose ID token the IdP signed for another user ends the session: its refresh token revoked', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'isolde', Date.now() - 1000);
    let rotated: string | undefined;
    resignedIdToken((claims) => { claims['sub'] = 'mallory'; }, (body) => {
      rotated = String(body['refresh_token']);
      delete body['access_token'];
    });
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 401, res.body);
    assert.equal(await env.store.getById(session.id), null, 'the session is over');
    const live = async () => (await env.idp.provider.RefreshToken.find(rotated!)) !== undefined;
    for (let i = 0; i < 50 && await live(); i++) await sleep(100);
    assert.equal(await live(), false, 'the refresh token the answer carried is revoked');
  });

  it('a 200 refresh answer refused for its shape whose ID token fails verification keeps nothing of it: 503, the session stays as it was', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'ingo', Date.now() - 1000);
    resignedIdToken(() => undefined, (body) => { delete body['access_token']; }, await generateSigningKey());
    const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
    assert.equal(res.status, 503, res.body);
    const stored = await env.store.getById(session.id);
    assert.ok(stored, 'the session stays');
    assert.equal(stored.secrets.refreshToken, session.secrets.refreshToken, 'the refresh token of an answer that fails verification is not kept');
  });

  it('an IdP that refuses the client at refresh (unauthorized_client) does not end the session: 503, an operator\'s log line, and the grant is not sent again at every request', async () => {
    const { cookie, session } = await loginExpiringAt(env, 'jack', Date.now() - 1000);
    refuseClient = true;
    for (let i = 0; i < 2; i++) {
      const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
      assert.equal(res.status, 503, res.body);
      assert.equal(JSON.parse(res.body).error, 'unavailable');
    }
    assert.deepEqual(grantErrors, ['unauthorized_client'], 'one refused grant, not two');
    const stored = await env.store.getById(session.id);
    assert.ok(stored, 'the session stays (the client\'s registration is wrong, not the user\'s grant)');
    assert.equal(stored.secrets.refreshToken, session.secrets.refreshToken);
    const line = logs.lines.find((l) => l.includes('refused goldpath\'s client'));
    assert.ok(line, 'an error line for operators');
    assert.match(line, /"level":"error"/);
    assert.match(line, /unauthorized_client/);
  });

  it('an IdP that asks for the user at refresh (interaction_required, as Entra ID answers when conditional access wants a second factor; login_required, consent_required, account_selection_required) ends the session: 401 login_required, not a 503 at every API call until the session\'s absolute end', async () => {
    for (const error of ['interaction_required', 'login_required', 'consent_required', 'account_selection_required']) {
      const { cookie, session } = await loginExpiringAt(env, `step-up-${error}`, Date.now() - 1000);
      askUser = error;
      for (let i = 0; i < 2; i++) {
        const res = await verify.verify('GET', '/api/orders/1', { Cookie: cookie });
        assert.equal(res.status, 401, `${error}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error, 'login_required');
        assert.equal(res.headers['authorization'], undefined);
      }
      assert.equal(await env.store.getById(session.id), null, `${error}: the session is over (a new sign-in is what the IdP asks for)`);
    }
    assert.deepEqual(grantErrors, ['interaction_required', 'login_required', 'consent_required', 'account_selection_required'], 'one grant each: the session ended at the first');
  });
});
