// Hostile input against the real sidecar over real HTTP (createVerifyApp on node:http with the
// process's limits, and the `goldpath verify` process itself): fuzzed cookies, huge and many
// cookies, huge and many headers, latin1 bytes, duplicated X-Forwarded-* headers, and raw byte
// garbage in the request head. Every answer is a 2xx/3xx/4xx: never a 5xx, a hang or a crash,
// and never a 200 on a session route without exactly one valid session cookie.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { CookieCodec, type KvSessionStore, type SessionSecrets } from '../../src/session/index.ts';
import { newSession } from '../helpers/sessions.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { runCli, waitHealthy } from '../helpers/process.ts';
import { send, startVerifyOnRedis, verifyEnv, VERIFY_CONFIG_DIR, type RunningVerify, type VerifyResponse } from '../helpers/verify-app.ts';

const FORWARDED = { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-For': '127.0.0.1' };

/** Whether Node's HTTP client would send this header value (it refuses CR, LF, NUL and chars > 0xff). */
function sendable(value: string): boolean {
  try {
    http.validateHeaderValue('x-test', value);
    return true;
  } catch {
    return false;
  }
}

/** An independent reading of RFC 6265 Cookie pairs: the values of every pair named `name`. */
function cookieValues(header: string, name: string): string[] {
  return header.split(';').map((p) => p.trim()).filter((p) => p !== '').flatMap((p) => {
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).trim();
    return key === name ? [p.slice(eq + 1).trim()] : [];
  });
}

function noServerError(res: VerifyResponse, what: string): void {
  assert.ok(res.status >= 200 && res.status < 500, `${what}: ${res.status} ${res.body.slice(0, 200)}`);
  assert.ok(res.ms < 2000, `${what}: took ${Math.round(res.ms)} ms`);
}

/** A valid request head for /auth/verify, with `extra` header lines (each ending in CRLF). */
const head = (extra = '') => `GET /auth/verify HTTP/1.1\r\nHost: verify\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /api/orders/1\r\n${extra}\r\n`;

/** Writes raw bytes, half-closes, and collects what comes back until the server closes (or 3 s). */
function raw(port: number, bytes: Buffer): Promise<{ status: number | undefined; text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; sock.destroy(); }, 3000);
    sock.on('connect', () => sock.end(bytes));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => { /* a reset is an answer too */ });
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : undefined, text, timedOut });
    });
  });
}

describe('verify: hostile input over real HTTP', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: KvSessionStore;
  let sidecar: RunningVerify;
  let stop: (() => Promise<void>) | undefined;
  let name: string;
  let value: string; // a valid session cookie value
  let forged: string;
  let unknown: string;

  before(async function () {
    ({ redis, store, sidecar, stop } = await startVerifyOnRedis());
    name = sidecar.cookieName;
    const { cookie } = await sidecar.login({ sub: 'victim', roles: ['reader', 'admin'], csrf: 'csrf-ok' });
    value = cookie.slice(name.length + 1);
    forged = new CookieCodec([new Uint8Array(32).fill(1)]).issue().cookieValue;
    unknown = new CookieCodec(sidecar.settings.sessionKeys).issue().cookieValue;
  });
  after(async function () {
    await stop?.();
  });
  afterEach(async function () {
    // Whatever a test threw at it, the server is alive and still right.
    assert.equal((await sidecar.get('/healthz')).status, 200);
    assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: `${name}=${value}` })).status, 200);
  });

  describe('cookies', function () {
    it('fuzz: 200 on a session route exactly when one valid session cookie is present; never a 5xx', async function () {
      const piece = fc.oneof(
        fc.constantFrom(name, `${name}_tx`, `${name}=`, '=', ';', '; ', ' ', '\t', '"', ',', '\\', 'theme=dark', '$Version=1', 'a=b=c'),
        fc.constantFrom(value, forged, unknown, `${value}x`, value.slice(1), value.toLowerCase()),
        fc.string({ unit: 'binary-ascii', maxLength: 8 }),
        fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
      );
      let sent = 0;
      await fc.assert(fc.asyncProperty(fc.array(piece, { maxLength: 12 }), fc.boolean(), async (parts, publicRoute) => {
        const header = parts.join('');
        fc.pre(sendable(header));
        sent++;
        const uri = publicRoute ? '/api/public/x' : '/api/orders/1';
        const res = await sidecar.verify('GET', uri, header === '' ? {} : { Cookie: header });
        noServerError(res, `Cookie ${JSON.stringify(header)}`);
        const sessions = cookieValues(header, name);
        const valid = sessions.length === 1 && sessions[0] === value;
        if (publicRoute) {
          assert.equal(res.status, 200);
          assert.equal(res.headers['x-auth-user'], valid ? 'victim' : undefined, JSON.stringify(header));
        } else {
          assert.equal(res.status, valid ? 200 : 401, JSON.stringify(header));
        }
        // No session cookie travels upstream (a nameless pair is just the client's own junk).
        assert.deepEqual(cookieValues(String(res.headers.cookie ?? ''), name), [], 'session cookie passed upstream');
      }), { numRuns: 300 });
      assert.ok(sent >= 250, `only ${sent} requests were sent`);
    });

    it('a session whose stored secrets this version cannot use (no CSRF token) is a 401 for every method, never a 500', async function () {
      const n = newSession({ sub: 'odd-shape' });
      const { cookieValue } = await store.create({ ...n, secrets: { ...n.secrets, csrf: undefined } as unknown as SessionSecrets });
      const cookie = `${name}=${cookieValue}`;
      for (const method of ['GET', 'POST', 'DELETE']) {
        const res = await sidecar.verify(method, '/api/orders/1', { Cookie: cookie, 'X-CSRF-Token': 'anything', Origin: 'http://localhost:8080' });
        assert.equal(res.status, 401, `${method}: ${res.status} ${res.body}`);
        assert.equal(JSON.parse(res.body).error, 'login_required');
      }
    });

    it('a huge cookie (30 KiB) beside the session is fine; past the header limit it is a 431', async function () {
      const big = 'x'.repeat(30 * 1024);
      const ok = await sidecar.verify('GET', '/api/orders/1', { Cookie: `big=${big}; ${name}=${value}` });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.cookie, `big=${big}`);
      const tooBig = await sidecar.verify('GET', '/api/orders/1', { Cookie: `big=${big}${big}${big}; ${name}=${value}` });
      assert.equal(tooBig.status, 431);
    });

    it('the largest request Traefik lets through (32 KiB: a 24 KiB URI and 8 KiB of cookies) gets the 414 of a URI over 8 KiB, not a 431', async function () {
      // forwardAuth sends the client's headers on and the URI again, as X-Forwarded-Uri.
      const uri = `/api/orders/${'a'.repeat(24 * 1024)}`;
      const r = await sidecar.verify('GET', uri, { Cookie: `big=${'x'.repeat(8 * 1024)}; ${name}=${value}`, Referer: `http://localhost:8080${uri}` });
      assert.equal(r.status, 414, r.body);
      assert.equal(JSON.parse(r.body).error, 'uri_too_long');
    });

    it('1000 cookies: the session among them is found; the same with the session twice is refused', async function () {
      const many = Array.from({ length: 1000 }, (_, i) => `c${i}=v${i}`);
      const withSession = [...many.slice(0, 500), `${name}=${value}`, ...many.slice(500)].join('; ');
      const ok = await sidecar.verify('GET', '/api/orders/1', { Cookie: withSession });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.cookie, many.join('; '));
      const twice = await sidecar.verify('GET', '/api/orders/1', { Cookie: `${name}=${value}; ${many.join('; ')}; ${name}=${value}` });
      assert.equal(twice.status, 401, 'an ambiguous session cookie is no session');
      const forgedMany = await sidecar.verify('GET', '/api/orders/1', { Cookie: many.slice(0, 300).map(() => `${name}=${forged}`).join('; ') });
      assert.equal(forgedMany.status, 401);
    });

    it('two Cookie headers are read as one list: a second session cookie makes it ambiguous', async function () {
      const both = await send(sidecar.port, '/auth/verify', [...Object.entries(FORWARDED), ['X-Forwarded-Uri', '/api/orders/1'],
        ['Cookie', `${name}=${value}`], ['Cookie', `${name}=${forged}`]]);
      assert.equal(both.status, 401);
      const split = await send(sidecar.port, '/auth/verify', [...Object.entries(FORWARDED), ['X-Forwarded-Uri', '/api/orders/1'],
        ['Cookie', 'theme=dark'], ['Cookie', `${name}=${value}`]]);
      assert.equal(split.status, 200);
    });
  });

  describe('headers', function () {
    it('a 96 KiB header is a 431 (or a closed connection), not a 5xx or a hang', async function () {
      const r = await raw(sidecar.port, Buffer.from(head(`X-Junk: ${'j'.repeat(96 * 1024)}\r\nCookie: ${name}=${value}\r\n`), 'latin1'));
      assert.equal(r.timedOut, false);
      // The server answers 431 as soon as the limit is crossed and closes; with the rest of our
      // bytes still unread, the kernel may turn that close into a reset that eats the answer.
      assert.ok(r.status === 431 || r.status === undefined, String(r.status));
    });

    it('500 headers are answered normally', async function () {
      const headers: Record<string, string> = { Cookie: `${name}=${value}` };
      for (let i = 0; i < 500; i++) headers[`X-H${i}`] = `v${i}`;
      assert.equal((await sidecar.verify('GET', '/api/orders/1', headers)).status, 200);
      delete headers.Cookie;
      assert.equal((await sidecar.verify('GET', '/api/orders/1', headers)).status, 401);
    });

    it('latin1 bytes: 400 in X-Forwarded-Uri or -Method, 401 in a cookie, 403 in a CSRF token', async function () {
      const cookie = `${name}=${value}`;
      assert.equal((await sidecar.verify('GET', '/api/orders/caf\xe9', { Cookie: cookie })).status, 400);
      assert.equal((await sidecar.verify('GET', '/api/orders/1?q=\xff', { Cookie: cookie })).status, 400);
      assert.equal((await sidecar.verify('G\xc9T', '/api/orders/1', { Cookie: cookie })).status, 400);
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: `${name}=${value}\xe9` })).status, 401);
      assert.equal((await sidecar.verify('GET', '/api/orders/1', { Cookie: `${name}\xe9=${value}` })).status, 401);
      const csrf = await sidecar.verify('POST', '/api/orders/1', { Cookie: cookie, 'X-CSRF-Token': 'csrf-ok\xe9' });
      assert.equal(csrf.status, 403);
      assert.equal(JSON.parse(csrf.body).error, 'csrf');
      // UTF-8 bytes arrive as latin1 characters too: still refused, never decoded into a path.
      assert.equal((await sidecar.verify('GET', Buffer.from('/api/orders/é').toString('latin1'), { Cookie: cookie })).status, 400);
    });

    it('duplicated X-Forwarded-Uri or -Method: 400, whichever comes first', async function () {
      const cookie = `${name}=${value}`;
      for (const uris of [['/api/public/x', '/api/orders/1'], ['/api/orders/1', '/api/public/x'], ['/api/orders/1', '/api/orders/1']]) {
        const res = await send(sidecar.port, '/auth/verify', [...Object.entries(FORWARDED), ['X-Forwarded-Uri', uris[0]!], ['X-Forwarded-Uri', uris[1]!], ['Cookie', cookie]]);
        assert.equal(res.status, 400, JSON.stringify(uris));
        assert.equal(JSON.parse(res.body).error, 'invalid_request', 'refused by the sidecar, not by the HTTP parser');
      }
      const methods = await send(sidecar.port, '/auth/verify', [['X-Forwarded-Method', 'GET'], ['X-Forwarded-Method', 'DELETE'], ['X-Forwarded-Uri', '/api/orders/1'], ['Cookie', cookie]]);
      assert.equal(methods.status, 400);
      assert.equal(JSON.parse(methods.body).error, 'invalid_request');
    });

    it('no X-Forwarded-Method: 400, not read as the GET to /auth/verify (a POST would skip the CSRF check)', async function () {
      const cookie = `${name}=${value}`;
      const res = await send(sidecar.port, '/auth/verify', [['X-Forwarded-Uri', '/api/orders/1'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', 'localhost:8080'], ['Cookie', cookie]]);
      assert.equal(res.status, 400, res.body);
      assert.deepEqual(JSON.parse(res.body), { error: 'invalid_request', error_description: 'X-Forwarded-Method is missing' });
      assert.equal(res.headers.authorization, undefined);
    });

    it('a browser navigation with a hostile URI gets a 400, or a 302 to a clean login URL', async function () {
      for (const uri of ['/api/orders/1?next=%0d%0aSet-Cookie:x', '/api/orders/1?a=%22%3E%3Cscript%3E', '/api/orders/%0d%0a']) {
        const res = await sidecar.verify('GET', uri, { 'Sec-Fetch-Mode': 'navigate' });
        noServerError(res, uri);
        if (res.status === 302) {
          const location = String(res.headers.location);
          assert.ok(location.startsWith('http://localhost:8080/auth/login?return_to='), location);
          assert.match(location, /^[\x21-\x7e]+$/, 'no raw control, space or quote in Location');
        } else {
          assert.equal(res.status, 400, uri);
        }
      }
    });

    it('fuzz: random X-Forwarded-*, cookies, CSRF, Origin and Sec-Fetch-* headers never give a 5xx', async function () {
      const headerName = fc.constantFrom('X-Forwarded-Method', 'X-Forwarded-Uri', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'X-Forwarded-For',
        'Cookie', 'X-CSRF-Token', 'Origin', 'Sec-Fetch-Mode', 'Sec-Fetch-Site', 'Access-Control-Request-Method', 'X-Request-Id',
        'Authorization', 'Content-Length', 'Transfer-Encoding', 'Host', 'Connection', 'Expect', 'Accept');
      const headerValue = fc.oneof(
        fc.constantFrom('GET', 'POST', 'OPTIONS', 'get', '', ' ', '/api/orders/1', '/api/public/x', '/api/orders/%2e%2e', '/api/orders/1?x=1',
          `${name}=${value}`, `${name}=${forged}`, 'csrf-ok', 'http://localhost:5173', 'https://evil.example', 'navigate', 'same-origin',
          'cross-site', 'chunked', '0', '-1', '99999999999999999999', '100-continue', 'close', 'keep-alive', 'null', 'a'.repeat(9000)),
        fc.string({ unit: 'binary-ascii', maxLength: 40 }),
        fc.array(fc.integer({ min: 0x20, max: 0xff }), { maxLength: 20 }).map((cs) => String.fromCharCode(...cs)),
      );
      let answered = 0;
      await fc.assert(fc.asyncProperty(fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }), async (pairs) => {
        fc.pre(pairs.every(([, v]) => sendable(v)));
        // Duplicates allowed: they are sent as separate header lines.
        let res: VerifyResponse;
        try {
          res = await send(sidecar.port, '/auth/verify', [['X-Forwarded-Uri', '/api/orders/1'], ...pairs], 3000);
        } catch (err) {
          // The server may refuse a malformed framing (e.g. a bad Content-Length) by closing.
          assert.match(String(err), /socket hang up|ECONNRESET|Parse Error/, String(err));
          return;
        }
        noServerError(res, JSON.stringify(pairs));
        answered++;
        const sessions = pairs.filter(([k]) => k === 'Cookie').flatMap(([, v]) => cookieValues(v, name));
        if (res.status === 200 && sessions.length === 0) {
          assert.equal(res.headers.authorization, undefined, 'identity without a session cookie');
        }
      }), { numRuns: 300 });
      assert.ok(answered >= 150, `only ${answered} requests were answered`);
    });
  });

  describe('raw bytes in the request head', function () {

    it('NUL, CR, LF and bare control bytes in header values: 400 or a closed connection, never a 5xx', async function () {
      for (const bad of ['X-Forwarded-Uri: /api/orders/1\0\r\n', 'Cookie: a=\0\r\n', 'X-Forwarded-Uri: /api/\rorders\r\n',
        'X-Forwarded-Uri: /api/orders/1\r\n X-Folded: continued\r\n', 'X-Bad Name: v\r\n', ': no-name\r\n', 'X-Forwarded-Uri:\x01\r\n',
        `Cookie: ${'c'.repeat(40_000)}\r\n`, 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n']) {
        const r = await raw(sidecar.port, Buffer.from(head(bad), 'latin1'));
        assert.equal(r.timedOut, false, `no answer and no close for ${JSON.stringify(bad.slice(0, 60))}`);
        if (r.status !== undefined) assert.ok(r.status >= 400 && r.status < 500, `${JSON.stringify(bad.slice(0, 60))}: ${r.status}`);
      }
    });

    it('fuzz: random bytes spliced into a valid request head never give a 5xx or a hang', async function () {
      const base = Buffer.from(head(`Cookie: ${name}=${value}\r\n`), 'latin1');
      const seen = new Map<string, number>();
      await fc.assert(fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: base.length }), fc.uint8Array({ minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 4 }),
        async (splices) => {
          let bytes = base;
          for (const [at, ins] of splices) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(ins), bytes.subarray(at)]);
          const r = await raw(sidecar.port, bytes);
          assert.equal(r.timedOut, false, `hang on ${JSON.stringify(bytes.toString('latin1'))}`);
          if (r.status !== undefined) assert.ok(r.status < 500, `${r.status} for ${JSON.stringify(bytes.toString('latin1'))}`);
          seen.set(String(r.status), (seen.get(String(r.status)) ?? 0) + 1);
        },
      ), { numRuns: 150 });
      // Both kinds of outcome occur: refused by the parser, and parsed and answered by the sidecar.
      assert.ok((seen.get('400') ?? 0) > 0 && ((seen.get('200') ?? 0) + (seen.get('401') ?? 0)) > 0, JSON.stringify([...seen]));
    });
  });

  describe('the goldpath verify process', function () {
    it('answers the same hostile requests the same way, and keeps running', async function () {
      const port = await freePort();
      const env = { ...verifyEnv(redis.url), GOLDPATH_CONFIG_DIR: VERIFY_CONFIG_DIR, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
      const child = runCli('node', ['verify'], env);
      try {
        await waitHealthy(`http://127.0.0.1:${port}/healthz`, child);
        const v = (uri: string, headers: Record<string, string> | [string, string][] = {}) => send(port, '/auth/verify',
          Array.isArray(headers) ? [...Object.entries(FORWARDED), ['X-Forwarded-Uri', uri], ...headers] : { ...FORWARDED, 'X-Forwarded-Uri': uri, ...headers });
        const cookie = `${name}=${value}`;
        assert.equal((await v('/api/orders/1', { Cookie: cookie })).status, 200);
        const huge = await raw(port, Buffer.from(head(`X-Junk: ${'j'.repeat(96 * 1024)}\r\nCookie: ${cookie}\r\n`), 'latin1'));
        assert.ok(!huge.timedOut && (huge.status === 431 || huge.status === undefined), String(huge.status));
        // What Traefik lets through (32 KiB of a client's request, the URI again in X-Forwarded-Uri) is read.
        const long = `/api/orders/${'a'.repeat(24 * 1024)}`;
        assert.equal((await v(long, { Cookie: `big=${'x'.repeat(8 * 1024)}; ${cookie}`, Referer: long })).status, 414);
        const many: Record<string, string> = { Cookie: cookie };
        for (let i = 0; i < 500; i++) many[`X-H${i}`] = `v${i}`;
        assert.equal((await v('/api/orders/1', many)).status, 200);
        assert.equal((await v('/api/orders/caf\xe9', { Cookie: cookie })).status, 400);
        assert.equal((await v('/api/orders/1', [['X-Forwarded-Uri', '/api/public/x'], ['Cookie', cookie]])).status, 400);
        assert.equal((await v('/api/orders/1', { Cookie: Array.from({ length: 1000 }, (_, i) => `c${i}=v`).join('; ') })).status, 401);
        const r = await raw(port, Buffer.from(`GET /auth/verify HTTP/1.1\r\nHost: v\r\nX-Forwarded-Uri: /api/\0\r\n\r\n`, 'latin1'));
        assert.ok(r.status === undefined || r.status === 400);
        assert.equal((await v('/api/orders/1', { Cookie: cookie })).status, 200);
        assert.equal(child.proc.exitCode, null, 'still running');
        assert.doesNotMatch(child.output(), new RegExp(value), 'the session cookie is never logged');
      } finally {
        await child.stop();
      }
    });
  });
});
