// Requests Node's HTTP server refuses before goldpath's handlers see them (a head over the limit,
// malformed HTTP, no Host, a stalled head, an Expect other than 100-continue, a CONNECT): the real `goldpath verify` and `goldpath bff`
// processes, under Node and Deno, answer them as before, count them in /metrics and log them,
// a line a second at most, without a byte of the request.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, devIdpClientFor, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { devIdpsYaml } from '../helpers/idp-bff.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child, type Runtime } from '../helpers/process.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { spawnVerify } from '../helpers/verify-process.ts';

const LINE = 'request refused by the HTTP server';
const SECRET_COOKIE = `goldpath=${randomBytes(32).toString('base64url')}`;
const SECRET_BEARER = randomBytes(32).toString('base64url');

/** Writes raw bytes; resolves with what came back once the server closed (or `ms` passed). */
function raw(port: number, bytes: string, opts: { halfClose?: boolean; ms?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => { s.destroy(); resolve({ text, closed: false }); }, opts.ms ?? 20_000);
    s.on('data', (d) => { text += d; });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ text, closed: true }); });
    s.write(bytes);
    if (opts.halfClose) s.end();
  });
}
const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1]);

async function refusedCounts(port: number): Promise<Record<string, number>> {
  const r = await raw(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const out: Record<string, number> = {};
  for (const m of r.text.matchAll(/^goldpath_http_refused_total\{reason="([a-z_]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

function refusalLines(child: Child): Record<string, unknown>[] {
  return child.output().split('\n').filter((l) => l.includes(LINE)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Past the log's one-second window of an earlier refusal: the next one is said at once, by its own reason. */
const logWindowEnds = () => new Promise((r) => setTimeout(r, 1_100));

interface Target { readonly port: number; readonly child: Child; stop(): Promise<void> }

/** The BFF process with a dev IdP and its own redis-server. */
async function spawnBff(runtime: Runtime, redisUrl: string): Promise<Target> {
  const secret = randomBytes(24).toString('base64url');
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const idp: DevIdp = await startDevIdp({
    port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true,
    clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: secret, origin })],
    audiences: { 'https://api.example.test/reports': { scopes: ['reports.read'] } },
  });
  const dir = mkdtempSync(join(tmpdir(), 'goldpath-refused-'));
  cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
  writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(idp.issuer));
  const child = runCli(runtime, ['bff'], {
    GOLDPATH_CONFIG_DIR: dir, REDIS_URL: redisUrl, GOLDPATH_PUBLIC_URL: origin,
    GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'), TEST_CLIENT_SECRET: secret,
    PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info',
  });
  const stop = async () => {
    await child.stop();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(`${origin}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, stop };
}

const processes: Record<string, (runtime: Runtime, redisUrl: string) => Promise<Target>> = {
  verify: async (runtime, url) => {
    const v = await spawnVerify(runtime, url); // LOG_LEVEL=warn
    return { port: v.port, child: v.child, stop: () => v.stop() };
  },
  bff: spawnBff,
};

for (const runtime of ['node', 'deno'] as Runtime[]) {
  for (const [name, spawn] of Object.entries(processes)) {
    describe(`goldpath ${name} under ${runtime}: requests the HTTP server refuses itself`, function () {
      this.timeout(90_000);
      let redis: RedisServer;
      let target: Target;
      before(async () => {
        redis = await RedisServer.start();
        target = await spawn(runtime, redis.url);
      });
      after(async () => {
        await target?.stop();
        await redis?.stop();
      });

      it('answers each as Node does, counts it by reason, logs one line a second without the request\'s bytes', async () => {
        const port = target.port;
        const before = await refusedCounts(port);
        assert.deepEqual(before, {
          header_too_large: 0, bad_request: 0, incomplete: 0, timeout: 0, chunk_extensions_too_large: 0, missing_host: 0, expectation_failed: 0, connect: 0,
        });
        // Stalled in its head from the start: the 10 s headers timeout runs while the rest is sent.
        const stalled = raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
        const t0 = Date.now();
        const big = await raw(port, `GET /auth/verify HTTP/1.1\r\nHost: x\r\nCookie: ${SECRET_COOKIE}\r\nAuthorization: Bearer ${SECRET_BEARER}\r\n` +
          `X-Pad: ${'p'.repeat(100_000)}\r\n\r\n`);
        const badMethod = await raw(port, 'HELLO / HTTP/1.1\r\nHost: x\r\n\r\n');
        const badHeader = await raw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: ${SECRET_COOKIE}\x01\r\n\r\n`);
        const noHost = await raw(port, 'GET /healthz HTTP/1.1\r\n\r\n');
        const burstMs = Date.now() - t0;
        assert.deepEqual([big, badMethod, badHeader, noHost].map((r) => [statusOf(r.text), r.closed]), [[431, true], [400, true], [400, true], [400, true]]);
        assert.match(big.text, /\r\ncache-control: no-store\r\n/i);
        // The first refusal is said at once; the three after it, inside its second, are held.
        if (burstMs < 800) {
          await new Promise((r) => setTimeout(r, 150));
          const first = refusalLines(target.child);
          assert.equal(first.length, 1, JSON.stringify(first));
          assert.equal(first[0]!.level, 'warn');
          assert.equal(first[0]!.reason, 'header_too_large');
          assert.equal(first[0]!.status, 431);
          assert.equal(first[0]!.peer, '127.0.0.1');
        }
        // ...and said when that second ends: the last one, standing for the two before it.
        await new Promise((r) => setTimeout(r, 1_500));
        const counts = await refusedCounts(port);
        assert.deepEqual(counts, { ...before, header_too_large: 1, bad_request: 2, missing_host: 1 });
        const lines = refusalLines(target.child);
        if (burstMs < 800) {
          assert.equal(lines.length, 2, JSON.stringify(lines));
          assert.deepEqual([lines[1]!.reason, lines[1]!.status, lines[1]!.alsoRefused], ['missing_host', 400, 2]);
        } else {
          // A loaded machine spread the four over more than one window: each still said, once.
          assert.equal(lines.reduce((n, l) => n + 1 + Number(l.alsoRefused ?? 0), 0), 4, JSON.stringify(lines));
          assert.equal(lines.at(-1)!.reason, 'missing_host');
        }

        const timedOut = await stalled;
        assert.equal(statusOf(timedOut.text), 408, timedOut.text);
        assert.ok(timedOut.closed);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal((await refusedCounts(port)).timeout, 1);
        const last = refusalLines(target.child).at(-1)!;
        assert.deepEqual([last.reason, last.status, last.errCode], ['timeout', 408, 'ERR_HTTP_REQUEST_TIMEOUT']);

        const out = target.child.output();
        assert.ok(!out.includes(SECRET_COOKIE.split('=')[1]!), 'the cookie is in the output');
        assert.ok(!out.includes(SECRET_BEARER), 'the bearer token is in the output');
        assert.ok(!out.includes('ppppp'), 'header bytes are in the output');
      });

      it('a peer that resets its connection mid-request is no refusal: not counted, not logged', async () => {
        const before = await refusedCounts(target.port);
        const lines = refusalLines(target.child).length;
        await new Promise<void>((resolve) => {
          const s = connect({ port: target.port, host: '127.0.0.1' });
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ', () => setTimeout(() => s.resetAndDestroy(), 100));
        });
        await new Promise((r) => setTimeout(r, 1_200));
        assert.deepEqual(await refusedCounts(target.port), before);
        assert.equal(refusalLines(target.child).length, lines);
      });

      it(runtime === 'node'
        ? 'a peer that half-closes mid-request gets Node\'s 400 and counts as incomplete'
        : 'a peer that half-closes mid-request: Deno reports no error, so nothing is answered or counted (the socket is closed)', async () => {
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ', { halfClose: true, ms: 5_000 });
        await new Promise((res) => setTimeout(res, 200));
        if (runtime === 'node') {
          assert.equal(statusOf(r.text), 400, r.text);
          assert.ok(r.closed);
          assert.deepEqual(await refusedCounts(target.port), { ...before, incomplete: before.incomplete! + 1 });
        } else {
          assert.equal(r.text, '');
          assert.ok(r.closed, 'the connection hangs');
          assert.deepEqual(await refusedCounts(target.port), before);
        }
      });

      // Node, left to itself, answers a bare 417 and keeps the connection; Deno 2's node:http does
      // the same, and emits 'checkExpectation' as Node does: the same answer under both.
      it('an Expect other than 100-continue: 417 in the error shape, connection closed, counted as expectation_failed and logged', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, `POST /auth/logout HTTP/1.1\r\nHost: x\r\nCookie: ${SECRET_COOKIE}\r\nExpect: x-${SECRET_BEARER}\r\n` +
          'Content-Length: 2\r\n\r\n', { ms: 5_000 });
        assert.equal(statusOf(r.text), 417, r.text);
        assert.ok(r.closed, `the connection stays open: ${JSON.stringify(r.text)}`);
        assert.match(r.text, /\r\ncache-control: no-store\r\n/i);
        assert.match(r.text, /\r\ncontent-type: application\/json\r\n/i);
        assert.deepEqual(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)),
          { error: 'expectation_failed', error_description: 'the only expectation this server meets is 100-continue' });
        // Node checks Host before Expect: a request without either is the 400 it always was.
        const noHost = await raw(target.port, 'GET /healthz HTTP/1.1\r\nExpect: x-nothing\r\n\r\n', { ms: 5_000 });
        assert.deepEqual([statusOf(noHost.text), noHost.closed], [400, true], noHost.text);
        await new Promise((res) => setTimeout(res, 1_200));
        assert.deepEqual(await refusedCounts(target.port),
          { ...before, expectation_failed: before.expectation_failed! + 1, missing_host: before.missing_host! + 1 });
        const lines = refusalLines(target.child);
        assert.ok(lines.some((l) => l.reason === 'expectation_failed' && l.status === 417 && l.peer === '127.0.0.1'), JSON.stringify(lines));
        const out = target.child.output();
        assert.ok(!out.includes(SECRET_BEARER), 'the Expect value is in the output');
        assert.ok(!out.includes(SECRET_COOKIE.split('=')[1]!), 'the cookie is in the output');
      });

      it('Expect: 100-continue is met as Node meets it: 100 Continue, then the handler\'s answer; no refusal', async () => {
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', { ms: 5_000 });
        assert.match(r.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, r.text);
        assert.deepEqual(await refusedCounts(target.port), before);
      });

      it('Expect: 100-continue without Host: the 400 alone, no 100 Continue inviting a body first (Node\'s own order)', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, 'POST /auth/logout HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', { ms: 5_000 });
        assert.match(r.text, /^HTTP\/1\.1 400 /, `a 100 Continue came first: ${JSON.stringify(r.text)}`);
        assert.ok(r.closed);
        assert.deepEqual(await refusedCounts(target.port), { ...before, missing_host: before.missing_host! + 1 });
      });

      // Node, left to itself, cuts a CONNECT's connection without a byte of answer (and Deno 2's
      // node:http does the same, and emits 'connect' as Node does): the same answer under both.
      it('CONNECT: 405 in the error shape with an empty Allow, connection closed, counted as connect and logged', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, `CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n` +
          `Proxy-Authorization: Basic ${SECRET_BEARER}\r\n\r\n\x16\x03\x01tunnel bytes`, { ms: 5_000 });
        assert.equal(statusOf(r.text), 405, JSON.stringify(r.text));
        assert.ok(r.closed);
        assert.match(r.text, /\r\nallow: \r\n/i);
        assert.match(r.text, /\r\ncache-control: no-store\r\n/i);
        assert.deepEqual(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)),
          { error: 'method_not_allowed', error_description: 'this server opens no tunnels: CONNECT is for proxies' });
        await new Promise((res) => setTimeout(res, 1_200));
        assert.deepEqual(await refusedCounts(target.port), { ...before, connect: before.connect! + 1 });
        const lines = refusalLines(target.child);
        // Answered, so not cut (the line of a cut one says cut: true, below).
        assert.ok(lines.some((l) => l.reason === 'connect' && l.status === 405 && l.peer === '127.0.0.1' && l.cut === undefined), JSON.stringify(lines));
        const out = target.child.output();
        assert.ok(!out.includes(SECRET_BEARER), 'the Proxy-Authorization value is in the output');
        assert.ok(!out.includes('internal.example'), 'the CONNECT target is in the output');
        // The process is still answering.
        assert.equal(statusOf((await raw(target.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).text), 200);
      });

      // A CONNECT pipelined behind a request whose answer is still owed cannot be answered in
      // order: the connection is cut, as Node cuts it. Counted, and the line says it was cut.
      it('a CONNECT pipelined behind an unanswered request: no 405, the connection cut, counted, logged as cut', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n' +
          'CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n', { ms: 5_000 });
        assert.ok(r.closed, `the connection stays open: ${JSON.stringify(r.text)}`);
        assert.ok(!/ 405 /.test(r.text), `a 405 was written after (or into) the pending answer: ${JSON.stringify(r.text)}`);
        await new Promise((res) => setTimeout(res, 1_200));
        assert.deepEqual(await refusedCounts(target.port), { ...before, connect: before.connect! + 1 });
        const lines = refusalLines(target.child);
        const last = lines.at(-1);
        assert.deepEqual([last?.reason, last?.status, last?.cut], ['connect', 405, true], JSON.stringify(lines));
      });

      // The same for a malformed request behind one whose answer is owed: Node's own handler (and
      // this one, before) wrote its 400 at once, and the client read it as the answer to /readyz.
      it('a malformed request pipelined behind an unanswered one: no 400 overtaking its answer, the connection cut, counted, logged as cut', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const r = await raw(target.port, 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nHELLO / HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 5_000 });
        assert.ok(r.closed, `the connection stays open: ${JSON.stringify(r.text)}`);
        assert.ok(!/ 400 /.test(r.text), `a 400 was written before (or into) the pending answer: ${JSON.stringify(r.text)}`);
        await new Promise((res) => setTimeout(res, 1_200));
        assert.deepEqual(await refusedCounts(target.port), { ...before, bad_request: before.bad_request! + 1 });
        const last = refusalLines(target.child).at(-1);
        assert.deepEqual([last?.reason, last?.status, last?.cut], ['bad_request', 400, true], JSON.stringify(last));
        // A body malformed in the request whose answer is owed is that request's own 400.
        const own = await raw(target.port, 'POST /auth/logout HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', { ms: 5_000 });
        assert.equal(statusOf(own.text), 400, JSON.stringify(own.text));
      });

      // Node's parser lets an absolute-form target through whose authority is no valid host; Koa's
      // url.parse (parseurl) threw on it: a 500 and an error line a request (in the BFF a bare
      // text/plain 500). Now the 400 of any malformed request, counted and logged as one. Deno's
      // url.parse reads these without throwing: there the handlers answer them (404), as before.
      it(runtime === 'node'
        ? 'an absolute-form target whose host url.parse refuses (http://[::1/, http://%@a/): 400 in the error shape, counted, no 500'
        : 'an absolute-form target whose host Node\'s url.parse refuses: Deno reads it, and the handlers answer it (a 4xx, no 500)', async () => {
        await logWindowEnds();
        const before = await refusedCounts(target.port);
        const targets = ['http://[::1/healthz', 'http://%@a/healthz', 'http://[::1/auth/verify', 'http://[::1/auth/session'];
        const answers = [];
        for (const t of targets) answers.push(await raw(target.port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { ms: 5_000 }));
        // With Expect: 100-continue the request reaches the server's other listener: no 100 first.
        answers.push(await raw(target.port, 'POST http://[::1/auth/logout HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', { ms: 5_000 }));
        if (runtime === 'deno') {
          for (const r of answers) assert.match(r.text, /^HTTP\/1\.1 (100 Continue\r\n\r\nHTTP\/1\.1 )?4\d\d /, JSON.stringify(r.text));
          assert.ok(!target.child.output().includes('request failed'), 'a request failed (500) and was logged as one');
          return;
        }
        for (const r of answers) {
          assert.match(r.text, /^HTTP\/1\.1 400 /, JSON.stringify(r.text));
          assert.ok(r.closed);
          assert.match(r.text, /\r\ncache-control: no-store\r\n/i);
          assert.deepEqual(JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)),
            { error: 'invalid_request', error_description: 'the request is not valid HTTP/1.1' });
        }
        // A readable absolute-form target is served as ever (RFC 9112 3.2.2: a server accepts one).
        const sound = await raw(target.port, 'GET http://x/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { ms: 5_000 });
        assert.equal(statusOf(sound.text), 200, sound.text);
        await new Promise((res) => setTimeout(res, 1_200));
        assert.deepEqual(await refusedCounts(target.port), { ...before, bad_request: before.bad_request! + answers.length });
        assert.ok(!target.child.output().includes('request failed'), 'a request failed (500) and was logged as one');
      });

      // No 'upgrade' listener: Node 20 and Deno 2 hand the request to the handler, which answers it
      // as a plain request (an Upgrade a server may ignore, RFC 9110 7.8); nothing is refused.
      it('an Upgrade request (websocket, h2c) is answered as a plain request, not upgraded, not counted', async () => {
        const before = await refusedCounts(target.port);
        const ws = await raw(target.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', { ms: 5_000 });
        const h2c = await raw(target.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, close\r\n' +
          'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', { ms: 5_000 });
        assert.deepEqual([statusOf(ws.text), statusOf(h2c.text)], [200, 200], ws.text + h2c.text);
        assert.deepEqual(await refusedCounts(target.port), before);
      });
    });
  }
}
