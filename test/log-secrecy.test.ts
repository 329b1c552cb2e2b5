// SPEC section 9 ("tokens and cookies redacted") and section 5 ("no token in any log line"), end to
// end: `goldpath dev-idp`, `goldpath bff` and `goldpath verify` as real child processes on a real
// redis-server, all at LOG_LEVEL=trace (the most verbose level src/config/env.ts accepts). A login
// through the dev IdP's pages (PAR, PKCE), /auth/session, allowed and denied /auth/verify calls,
// wrong CSRF tokens, a token refresh, an audience token, bad, replayed and refused callbacks, a
// JSON and a form logout, and the IdP's own back-channel logout (then replayed) are driven over
// HTTP while every secret seen along the way is collected. Then, with the processes stopped (so
// everything they wrote is flushed), no output of theirs, stdout or stderr, holds any of them,
// nor any 20 characters of one; every stdout line is JSON; and the lines of the events are there,
// so the test cannot pass because nothing was logged.
//
// Test-side parts: a store client with the processes' keys (to read the tokens the BFF stored, to
// read the PKCE verifier of a pending login, and to make an access token expire), and a pass-through
// recorder between the dev IdP and the BFF's /auth/backchannel-logout, which keeps the logout token
// the IdP sends.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { saveTransaction, takeTransaction } from '../src/bff/transaction.ts';
import { LOG_LEVELS, loadSettings } from '../src/config/env.ts';
import { silentLogger } from '../src/log.ts';
import { createSessionStore } from '../src/session/index.ts';
import type { Session, SessionStore } from '../src/session/types.ts';
import { devIdpsYaml } from './helpers/idp-bff.ts';
import { browserLogin, CookieJar, httpCall, parseForms, type HttpResponse, type LoginResult } from './helpers/login.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from './helpers/process.ts';
import { RedisServer, freePort } from './helpers/redis.ts';

/** The most verbose level LOG_LEVEL accepts (trace). */
const MOST_VERBOSE = LOG_LEVELS.filter((l) => l !== 'silent').reduce((a, b) => (pino.levels.values[a]! <= pino.levels.values[b]! ? a : b));

/** A window this long of a secret is a leak (long enough that a random match is impossible). */
const WINDOW = 20;

interface Logged {
  readonly name: string;
  readonly child: Child;
  stdout: string;
  stderr: string;
}

/** One goldpath subcommand as a child process, its stdout and stderr kept apart. */
function start(name: string, env: Record<string, string>): Logged {
  const child = runCli('node', [name], env);
  const logged: Logged = { name, child, stdout: '', stderr: '' };
  child.proc.stdout!.on('data', (d: Buffer) => { logged.stdout += d.toString('utf8'); });
  child.proc.stderr!.on('data', (d: Buffer) => { logged.stderr += d.toString('utf8'); });
  return logged;
}

function isJwt(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 3) return false;
  try {
    return typeof (JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/**
 * The strings that must never be logged for one secret: the whole value, and every WINDOW-long
 * piece of it. For a JWT also header.payload and the signature on their own, and pieces of the
 * payload and of the signature only: a JWT header ({"alg":"RS256","typ":…,"kid":…}) is public.
 */
function needles(value: string): { whole: string[]; pieces: string[] } {
  const windows = (s: string) => Array.from({ length: Math.max(0, s.length - WINDOW + 1) }, (_, i) => s.slice(i, i + WINDOW));
  if (isJwt(value)) {
    const [header, payload, signature] = value.split('.') as [string, string, string];
    return { whole: [value, `${header}.${payload}`, payload, signature], pieces: [...windows(payload), ...windows(signature)] };
  }
  return { whole: [value], pieces: windows(value) };
}

describe(`no secret in any log line of the dev IdP, BFF and verify processes at LOG_LEVEL=${MOST_VERBOSE}`, function () {
  this.timeout(60_000);
  const clientSecret = randomBytes(24).toString('base64url');
  const sessionKeys = [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')];
  let redis: RedisServer;
  let dir: string;
  let recorder: Server;
  let store: SessionStore;
  const procs: Logged[] = [];
  /** Bodies the dev IdP posted to the BFF's back-channel logout endpoint. */
  const backchannel: string[] = [];
  let issuer: string;
  let bff: string;
  let verifyUrl: string;
  let bffHost: string;

  before(async function () {
    redis = await RedisServer.start();
    const [idpPort, bffPort, verifyPort] = [await freePort(), await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${idpPort}`;
    bff = `http://127.0.0.1:${bffPort}`;
    bffHost = `127.0.0.1:${bffPort}`;
    verifyUrl = `http://127.0.0.1:${verifyPort}`;

    // The dev IdP's back-channel logouts pass through here on their way to the BFF.
    recorder = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        backchannel.push(body);
        fetch(`${bff}${req.url}`, { method: req.method, headers: { 'content-type': String(req.headers['content-type'] ?? '') }, body })
          .then(async (r) => {
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
            res.end(await r.text());
          })
          .catch(() => { res.writeHead(502); res.end(); });
      });
    });
    await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', () => resolve()));
    const recorderOrigin = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;

    dir = mkdtempSync(join(tmpdir(), 'goldpath-logsecrecy-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
    writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(issuer));
    const env = {
      GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: bff, GOLDPATH_SESSION_KEYS: sessionKeys.join(','),
      TEST_CLIENT_SECRET: clientSecret, HOST: '127.0.0.1', LOG_LEVEL: MOST_VERBOSE,
    };
    const idp = start('dev-idp', { ...env, PORT: String(idpPort), GOLDPATH_IDP_ISSUER: issuer, GOLDPATH_DEV_IDP_BACKCHANNEL_URL: recorderOrigin });
    procs.push(idp);
    await waitHealthy(`${issuer}/.well-known/openid-configuration`, idp.child);
    const bffProc = start('bff', { ...env, PORT: String(bffPort) });
    const verifyProc = start('verify', { ...env, PORT: String(verifyPort) });
    procs.push(bffProc, verifyProc);
    await Promise.all([waitHealthy(`${bff}/readyz`, bffProc.child), waitHealthy(`${verifyUrl}/readyz`, verifyProc.child)]);
    store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
  });

  after(async function () {
    await Promise.all(procs.map((p) => p.child.stop()));
    await store?.close();
    await new Promise<void>((resolve) => (recorder ? recorder.close(() => resolve()) : resolve()));
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a whole journey through all three processes logs no token, code, state, nonce, PKCE verifier, cookie, CSRF token, key or secret', async function () {
    const secrets = new Map<string, string>();
    const secret = (name: string, value: string | undefined): string => {
      assert.ok(typeof value === 'string' && value.length >= 16, `${name}: a real value (${String(value).length} characters)`);
      secrets.set(name, value);
      return value;
    };
    secret('client secret', clientSecret);
    // As it travels to the token and revocation endpoints (client_secret_basic, RFC 6749 2.3.1).
    secret('client credentials (HTTP Basic)', Buffer.from(`goldpath:${clientSecret}`).toString('base64'));
    sessionKeys.forEach((k, i) => secret(`GOLDPATH_SESSION_KEYS #${i + 1}`, k));

    const verify = (method: string, uri: string, cookie: string | undefined, extra: Record<string, string> = {}): Promise<HttpResponse> =>
      httpCall(`${verifyUrl}/auth/verify`, {
        headers: {
          'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': bffHost, 'x-forwarded-proto': 'http', 'x-forwarded-for': '203.0.113.9',
          cookie: `theme=dark${cookie === undefined ? '' : `; goldpath=${cookie}`}`, ...extra,
        },
      });
    const sessionOf = async (cookie: string): Promise<Session> => {
      const s = await store.get(cookie);
      assert.ok(s, 'the session is stored');
      return s;
    };
    /** Records the IdP's own cookies (its session and interaction ids) of a browser. */
    const idpCookies = (jar: CookieJar, label: string) => {
      for (const c of jar.cookies) {
        if (!c.name.startsWith('goldpath') && c.value.length >= 16) secret(`${label}: IdP cookie ${c.name}`, c.value);
      }
    };
    /** A login stopped before the callback: its code, state, PAR request_uri, transaction cookie. */
    const pending = async (user: string, label: string, opts: { jar?: CookieJar } = {}): Promise<{ r: LoginResult; callback: URL }> => {
      const r = await browserLogin({ start: `${bff}/auth/login?return_to=/orders`, user, jar: opts.jar, stopBefore: (u) => u.pathname === '/auth/callback' });
      const callback = new URL(r.hops.at(-1)!.location!);
      assert.equal(callback.origin + callback.pathname, `${bff}/auth/callback`, `${label}: the IdP sent the browser back`);
      const authorize = new URL(r.hops[0]!.location!);
      const requestUri = authorize.searchParams.get('request_uri');
      assert.ok(requestUri, `${label}: the BFF used PAR (the dev IdP offers it)`);
      secret(`${label}: PAR request_uri`, requestUri);
      secret(`${label}: authorization code`, callback.searchParams.get('code')!);
      secret(`${label}: state`, callback.searchParams.get('state')!);
      secret(`${label}: login-transaction cookie`, r.jar.get('goldpath_tx')?.value);
      secret(`${label}: browser cookie`, r.jar.get('goldpath_browser')?.value);
      return { r, callback };
    };
    /** A login through to the BFF's 302: the session cookie, its CSRF token and its tokens. */
    const loggedIn = async (user: string, label: string, opts: { jar?: CookieJar } = {}) => {
      const { r, callback } = await pending(user, label, opts);
      // The PKCE verifier and nonce live only in the stored transaction: read it, put it back.
      const txCookie = r.jar.get('goldpath_tx')!.value;
      const taken = await takeTransaction(store, callback.searchParams.get('state')!, txCookie);
      assert.ok(taken.ok, `${label}: the login transaction is stored`);
      const { binding: _binding, ...tx } = taken.tx;
      await saveTransaction(store, txCookie, tx);
      secret(`${label}: PKCE verifier`, tx.codeVerifier);
      secret(`${label}: nonce`, tx.nonce);
      const done = await httpCall(callback, { jar: r.jar, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
      assert.equal(done.status, 302, `${label}: ${done.body.slice(0, 300)}`);
      const cookie = secret(`${label}: session cookie`, r.jar.get('goldpath')?.value);
      idpCookies(r.jar, label);
      const info = await httpCall(`${bff}/auth/session`, { jar: r.jar });
      assert.equal(info.status, 200, info.body);
      const csrf = secret(`${label}: CSRF token`, (JSON.parse(info.body) as { csrf_token: string }).csrf_token);
      const s = await sessionOf(cookie);
      secret(`${label}: access token`, s.secrets.tokens['']!.value);
      secret(`${label}: refresh token`, s.secrets.refreshToken);
      secret(`${label}: ID token`, s.secrets.idToken);
      assert.equal(decodeJwt(s.secrets.idToken!)['nonce'], tx.nonce);
      return { jar: r.jar, cookie, csrf, session: s, callback };
    };

    // 1. alice signs in (authorization code + PKCE through PAR and the dev IdP's pages).
    const a = await loggedIn('alice', 'alice');

    // 2. /auth/verify, allowed: the login token, then an audience token (a refresh grant with
    // `resource`, which rotates the refresh token).
    const read = await verify('GET', '/api/orders/1', a.cookie);
    assert.equal(read.status, 200, read.body);
    assert.equal(read.headers['authorization'], `Bearer ${a.session.secrets.tokens['']!.value}`);
    assert.equal(read.headers['cookie'], 'theme=dark', 'the session cookie never reaches the upstream');
    const reports = await verify('GET', '/api/reports', a.cookie);
    assert.equal(reports.status, 200, reports.body);
    const audience = secret('alice: audience (reports) access token', String(reports.headers['authorization']).replace(/^Bearer /, ''));
    assert.ok(isJwt(audience), 'the dev IdP issues JWT audience tokens');
    const rotated = secret('alice: refresh token after the audience grant', (await sessionOf(a.cookie)).secrets.refreshToken);
    assert.notEqual(rotated, a.session.secrets.refreshToken, 'the dev IdP rotates refresh tokens');

    // 3. /auth/verify, denied: the PDP (alice is no admin), a wrong CSRF token, a throwing policy,
    // no session, a forged cookie, a confusing URI, an unknown route, a navigation to log in.
    const post = (cookie: string, csrf: string) => verify('POST', '/api/orders/1', cookie, { 'x-csrf-token': csrf, origin: bff, 'sec-fetch-site': 'same-origin' });
    const forbidden = await post(a.cookie, a.csrf);
    assert.deepEqual([forbidden.status, (JSON.parse(forbidden.body) as { error: string }).error], [403, 'forbidden']);
    const wrongCsrf = secret('a wrong CSRF token', randomBytes(32).toString('base64url'));
    const csrfDenied = await post(a.cookie, wrongCsrf);
    assert.deepEqual([csrfDenied.status, (JSON.parse(csrfDenied.body) as { error: string }).error], [403, 'csrf']);
    assert.equal((await verify('GET', '/api/boom', a.cookie)).status, 403);
    assert.equal((await verify('GET', '/api/orders/1', undefined)).status, 401);
    const forged = secret('a forged session cookie', `${randomBytes(32).toString('base64url')}.${randomBytes(16).toString('base64url')}`);
    assert.equal((await verify('GET', '/api/orders/1', forged)).status, 401);
    assert.equal((await verify('GET', '/api/orders/%2e%2e/1', a.cookie)).status, 400);
    assert.equal((await verify('GET', '/api/nowhere', a.cookie)).status, 404);
    assert.equal((await verify('GET', '/api/orders/1', undefined, { 'sec-fetch-mode': 'navigate' })).status, 302);

    // 4. The BFF refuses a logout with a wrong CSRF token, as JSON and as a form; the session stays.
    const wrongJson = await httpCall(`${bff}/auth/logout`, { method: 'POST', jar: a.jar, headers: { 'x-csrf-token': wrongCsrf, accept: 'application/json' } });
    assert.deepEqual([wrongJson.status, (JSON.parse(wrongJson.body) as { error: string }).error], [403, 'csrf']);
    const wrongForm = await httpCall(`${bff}/auth/logout`, {
      method: 'POST', jar: a.jar, body: new URLSearchParams({ csrf_token: wrongCsrf }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', accept: 'text/html' },
    });
    assert.equal(wrongForm.status, 403);
    assert.equal((await httpCall(`${bff}/auth/session`, { jar: a.jar })).status, 200, 'the session survives');

    // 5. A refresh: the login access token expires in the store; the sidecar refreshes it at the
    // dev IdP (the refresh token rotates) and hands the upstream the new one.
    const before = await sessionOf(a.cookie);
    const oldAccess = before.secrets.tokens['']!;
    assert.ok(await store.updateSecrets(before.id, { ...before.secrets, tokens: { ...before.secrets.tokens, '': { ...oldAccess, expiresAt: Date.now() - 1000 } } }));
    let refreshed: HttpResponse | undefined;
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      // The sidecar drops its cached copy when the store announces the change (pub/sub).
      refreshed = await verify('GET', '/api/orders/1', a.cookie);
      if (refreshed.status !== 200 || refreshed.headers['authorization'] !== `Bearer ${oldAccess.value}`) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(refreshed!.status, 200, refreshed!.body);
    const newAccess = secret('alice: refreshed access token', String(refreshed!.headers['authorization']).replace(/^Bearer /, ''));
    const afterRefresh = await sessionOf(a.cookie);
    assert.equal(afterRefresh.secrets.tokens['']!.value, newAccess);
    assert.notEqual(secret('alice: refresh token after the refresh', afterRefresh.secrets.refreshToken), rotated);

    // 6. Bad callbacks, all 400 pages: alice's callback replayed; an unknown state with a
    // real-looking code; a pending login whose code is swapped for a forged one (the dev IdP's
    // token endpoint refuses it); a sign-in cancelled at the IdP (error=access_denied).
    const replay = await httpCall(a.callback, { jar: a.jar, headers: { accept: 'text/html' } });
    assert.equal(replay.status, 400, 'a replayed callback');
    const bogus = new URL(`${bff}/auth/callback`);
    bogus.searchParams.set('code', secret('a forged code', randomBytes(32).toString('base64url')));
    bogus.searchParams.set('state', secret('a forged state', randomBytes(32).toString('base64url')));
    bogus.searchParams.set('iss', issuer);
    assert.equal((await httpCall(bogus, { jar: a.jar, headers: { accept: 'text/html' } })).status, 400, 'an unknown state');
    const d = await pending('dave', 'dave (code swapped)');
    const swapped = new URL(d.callback);
    swapped.searchParams.set('code', secret('a forged code for a live state', randomBytes(32).toString('base64url')));
    const refused = await httpCall(swapped, { jar: d.r.jar, headers: { accept: 'text/html' } });
    assert.equal(refused.status, 400, refused.body.slice(0, 300));
    assert.match(refused.body, /did not accept the sign-in code/);
    const cancelled = await browserLogin({ start: `${bff}/auth/login`, cancelLogin: true });
    assert.equal(cancelled.status, 400, cancelled.last.body.slice(0, 300));
    secret('cancelled: state', new URL(cancelled.callbackUrl!).searchParams.get('state')!);
    secret('cancelled: login-transaction cookie', cancelled.jar.get('goldpath_tx')?.value);

    // 7. alice logs out as a fetch: 200 {logout_url} (with the ID token as id_token_hint).
    const out = await httpCall(`${bff}/auth/logout`, { method: 'POST', jar: a.jar, headers: { 'x-csrf-token': a.csrf, accept: 'application/json', origin: bff } });
    assert.equal(out.status, 200, out.body);
    assert.ok((JSON.parse(out.body) as { logout_url: string }).logout_url.startsWith(`${issuer}/session/end?`));
    assert.equal((await verify('GET', '/api/orders/1', a.cookie)).status, 401);

    // 8. carol signs in twice in one browser's IdP session (two BFF sessions, one IdP sid), logs
    // one out with a form: 302 to the IdP's end-session page; she confirms there, and the IdP's
    // back-channel logout ends the other session too. Replayed, its logout token is refused.
    const b = await loggedIn('carol', 'carol #1');
    const idpOnly = new CookieJar();
    idpOnly.cookies.push(...b.jar.cookies.filter((c) => !c.name.startsWith('goldpath')));
    const c = await loggedIn('carol', 'carol #2', { jar: idpOnly });
    assert.equal(c.session.sid, b.session.sid, 'one IdP session');
    assert.equal((await verify('GET', '/api/orders/2', c.cookie)).status, 200);
    const form = await httpCall(`${bff}/auth/logout`, {
      method: 'POST', jar: b.jar, body: new URLSearchParams({ csrf_token: b.csrf }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate', accept: 'text/html', origin: bff },
    });
    assert.equal(form.status, 302, form.body);
    const endSession = new URL(String(form.headers.location));
    assert.equal(endSession.origin + endSession.pathname, `${issuer}/session/end`);
    assert.equal(endSession.searchParams.get('id_token_hint'), b.session.secrets.idToken);
    const page = await httpCall(endSession, { jar: b.jar, headers: { accept: 'text/html' } });
    const confirm = parseForms(page.body).find((f) => f.id === 'op.logoutForm');
    assert.ok(confirm, `the IdP's sign-out page: ${page.body.slice(0, 300)}`);
    if (confirm.fields['xsrf']) secret('carol: IdP sign-out xsrf', confirm.fields['xsrf']);
    const signedOut = await httpCall(new URL(confirm.action, issuer), {
      method: 'POST', jar: b.jar, body: new URLSearchParams({ ...confirm.fields, logout: 'yes' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.ok([200, 302, 303].includes(signedOut.status), `the IdP answered ${signedOut.status}`);
    for (const deadline = Date.now() + 5000; backchannel.length === 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    assert.equal(backchannel.length, 1, 'the dev IdP sent one back-channel logout');
    const logoutToken = secret('logout token', new URLSearchParams(backchannel[0]).get('logout_token')!);
    assert.equal(decodeJwt(logoutToken)['sid'], b.session.sid);
    assert.equal((await verify('GET', '/api/orders/2', c.cookie)).status, 401, 'the back-channel logout ended carol #2');
    assert.equal((await httpCall(`${bff}/auth/session`, { jar: c.jar })).status, 401);
    const replayed = await httpCall(`${bff}/auth/backchannel-logout`, {
      method: 'POST', body: backchannel[0], headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.deepEqual([replayed.status, (JSON.parse(replayed.body) as { error: string }).error], [400, 'invalid_request']);

    // Stop the processes: what they buffered is flushed, and shutdown is logged too.
    await Promise.all(procs.map((p) => p.child.stop()));

    // Logging was on, at the most verbose level, and logged these events (not vacuous).
    const lines = new Map<string, Record<string, unknown>[]>();
    for (const p of procs) {
      const out = p.stdout.split('\n').filter((l) => l.trim() !== '');
      assert.ok(out.length > 0, `${p.name} logged something`);
      lines.set(p.name, out.map((l) => {
        let v: unknown;
        try {
          v = JSON.parse(l);
        } catch {
          assert.fail(`${p.name}: a stdout line that is not JSON: ${l.slice(0, 200)}`);
        }
        assert.ok(v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)['msg'] === 'string' && typeof (v as Record<string, unknown>)['level'] === 'string',
          `${p.name}: a log line without msg and level: ${l.slice(0, 200)}`);
        return v as Record<string, unknown>;
      }));
    }
    const has = (name: string, msg: string, fields: Record<string, unknown> = {}) => {
      const found = lines.get(name)!.some((l) => l['msg'] === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
      assert.ok(found, `${name} logged ${JSON.stringify(msg)} ${JSON.stringify(fields)}; it logged:\n${lines.get(name)!.map((l) => `${String(l['level'])} ${String(l['msg'])}`).join('\n')}`);
    };
    has('dev-idp', 'dev IdP listening', { url: issuer }); // where it listens, beside the issuer
    has('dev-idp', 'dev IdP interaction finished', { level: 'debug', step: 'login' });
    has('dev-idp', 'dev IdP interaction finished', { level: 'debug', step: 'confirm' });
    has('bff', 'goldpath bff listening');
    has('bff', 'login started', { level: 'debug' });
    has('bff', 'login succeeded', { sub: 'alice' });
    has('bff', 'login failed', { reason: 'unknown' });
    has('bff', 'login failed', { reason: 'token_error' });
    has('bff', 'login failed', { reason: 'idp_error' });
    has('bff', 'request', { path: '/auth/logout', status: 403 });
    has('bff', 'the logged-out session\'s refresh token is revoked', { level: 'info' });
    has('bff', 'logout', { sub: 'carol' });
    has('bff', 'back-channel logout', { by: 'sid+sub', deleted: 1 });
    has('bff', 'back-channel logout refused', { reason: 'replayed jti' });
    has('bff', 'shutting down');
    has('verify', 'goldpath verify listening');
    has('verify', 'token refreshed', { level: 'debug', audience: '(login)', rotated: true });
    has('verify', 'pdp: policy error, request denied (logged once per rule and error)');
    has('verify', 'shutting down');
    for (const l of lines.get('bff')!.filter((x) => x['msg'] === 'request')) assert.ok(l['reqId'], 'BFF request lines carry a request id');

    // No secret, whole or in part, in anything any process wrote (stdout and stderr).
    const everything = procs.map((p) => `${p.stdout}\n${p.stderr}`).join('\n');
    const windows = new Set<string>();
    for (let i = 0; i + WINDOW <= everything.length; i++) windows.add(everything.slice(i, i + WINDOW));
    assert.ok(secrets.size >= 40, `${secrets.size} secrets collected`);
    const lineWith = (needle: string): string | undefined => {
      for (const p of procs) {
        const line = `${p.stdout}\n${p.stderr}`.split('\n').find((l) => l.includes(needle));
        if (line !== undefined) return `${p.name}: ${line.slice(0, 400)}`;
      }
      return undefined;
    };
    for (const [name, value] of secrets) {
      const { whole, pieces } = needles(value);
      for (const n of whole) {
        const line = lineWith(n);
        assert.equal(line, undefined, `the ${name} is in a log line of ${line}`);
      }
      const piece = pieces.find((n) => windows.has(n));
      assert.equal(piece, undefined, `${WINDOW} characters of the ${name} (${piece}) are in a log line of ${piece === undefined ? '' : lineWith(piece)}`);
    }
  });
});
