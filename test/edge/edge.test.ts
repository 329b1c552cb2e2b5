// The development edge applies traefik/dynamic/goldpath.yml with Traefik's semantics. A fake auth
// server (ForwardAuth target) and header-echoing upstreams show what each side receives.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import { parseRule, sanitizeRequestTarget, startDevEdge, type DevEdge } from '../../src/dev/edge/index.ts';
import { startExampleApi, type RunningServer } from '../../src/dev/api.ts';
import { ConfigError } from '../../src/errors.ts';
import { goDuration, RateLimiter } from '../../src/dev/edge/rate-limit.ts';
import { closeServer } from '../helpers/close-server.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GOLDPATH_YML = join(ROOT, 'traefik', 'dynamic', 'goldpath.yml');
const TRAEFIK_YML = join(ROOT, 'traefik', 'traefik.yml');

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }
interface Fake { url: string; seen: Seen[]; close(): Promise<void> }

async function fakeServer(handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<Fake> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handle(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => closeServer(server),
  };
}

/** An upstream that answers with its name and everything it received. */
function echoUpstream(name: string): Promise<Fake> {
  return fakeServer((req, res, body) => {
    const out = Buffer.from(JSON.stringify({ service: name, method: req.method, url: req.url, headers: req.headers, bytes: body.length }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length, 'x-upstream': name });
    res.end(out);
  });
}

interface Reply { status: number; headers: IncomingHttpHeaders; text: string; json: () => any }

function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = request({ hostname: u.hostname, port: u.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

type AuthAnswer = (req: IncomingMessage, res: ServerResponse) => void;
const allowWith = (headers: Record<string, string | string[]>): AuthAnswer => (_req, res) => {
  res.writeHead(200, headers);
  res.end();
};

describe('development edge (src/dev/edge/)', () => {
  let auth: Fake;
  let answer: AuthAnswer;
  const up: Record<string, Fake> = {};
  let edge: DevEdge;

  before(async () => {
    auth = await fakeServer((req, res) => answer(req, res));
    for (const name of ['api', 'bff', 'spa', 'dev-idp']) up[name] = await echoUpstream(name);
    edge = await startDevEdge({
      port: 0,
      dynamicConfigPath: GOLDPATH_YML,
      staticConfigPath: TRAEFIK_YML,
      services: { api: up.api!.url, bff: up.bff!.url, spa: up.spa!.url, 'dev-idp': up['dev-idp']!.url, verify: auth.url },
    });
  });
  after(async () => {
    await edge?.close();
    await auth?.close();
    for (const f of Object.values(up)) await f.close();
  });
  beforeEach(() => {
    answer = allowWith({});
    auth.seen.length = 0;
    for (const f of Object.values(up)) f.seen.length = 0;
  });

  describe('routing', () => {
    it('sends /api/** through forwardAuth to the API, /auth/** to the BFF, the rest to the SPA', async () => {
      const cases: [string, string, boolean][] = [
        ['/api', 'api', true], ['/api/orders/42?x=1', 'api', true], ['/apifoo', 'spa', false],
        ['/auth/login?return_to=%2F', 'bff', false], ['/auth/session', 'bff', false],
        ['/', 'spa', false], ['/app.js', 'spa', false], ['/auth', 'spa', false],
      ];
      for (const [path, service, authed] of cases) {
        auth.seen.length = 0;
        const r = await send(edge.url, 'GET', path);
        assert.equal(r.status, 200, path);
        assert.equal(r.json().service, service, path);
        assert.equal(r.json().url, path, 'the upstream sees the path and query unchanged');
        assert.equal(auth.seen.length, authed ? 1 : 0, `${path}: forwardAuth calls`);
      }
    });

    it('routes Host(`idp.localhost`) to the dev IdP ahead of every path router, without forwardAuth', async () => {
      const r = await send(edge.url, 'GET', '/api/orders/42', { host: 'idp.localhost:8080' });
      assert.equal(r.json().service, 'dev-idp');
      assert.equal(r.json().headers.host, 'idp.localhost:8080', 'passHostHeader');
      assert.equal(auth.seen.length, 0);
    });

    it('orders routers by priority: explicit, else the rule length, as Traefik does', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'goldpath-edge-'));
      const file = join(dir, 'dyn.yml');
      writeFileSync(file, [
        'http:',
        '  routers:',
        '    short: { rule: "PathPrefix(`/a`)", service: one }',
        '    long: { rule: "PathPrefix(`/a/b`) && !Path(`/a/b/x`)", service: two }',
        '    pinned: { rule: "Path(`/a/b/y`)", priority: 1, service: three }',
        '    hosty: { rule: "Host(`h.example`) && (Path(`/a`) || PathPrefix(`/z/`))", service: three }',
        '    rest: { rule: "!PathPrefix(`/a`)", priority: 2, service: one }',
        '  services:',
        ...['one', 'two', 'three'].map((s) => `    ${s}: { loadBalancer: { servers: [ { url: "http://${s}:80" } ] } }`),
      ].join('\n'));
      const e = await startDevEdge({ port: 0, dynamicConfigPath: file, services: { one: up.api!.url, two: up.bff!.url, three: up.spa!.url } });
      try {
        const at = async (path: string, host?: string) => (await send(e.url, 'GET', path, host ? { host } : {})).json().service;
        assert.equal(await at('/a/b/c'), 'bff');      // long beats short
        assert.equal(await at('/a/b/x'), 'api');      // long excluded -> short
        assert.equal(await at('/a/b/y'), 'bff');      // pinned (priority 1) loses to long
        assert.equal(await at('/a'), 'api');
        assert.equal(await at('/a', 'H.Example:8080'), 'spa'); // Host is case-insensitive, port ignored
        assert.equal(await at('/z/1', 'h.example'), 'spa');
        assert.equal(await at('/z/1'), 'api');        // rest
        assert.deepEqual(e.config.routers.map((r) => r.name), ['hosty', 'long', 'short', 'rest', 'pinned']);
      } finally {
        await e.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('never reaches the verify sidecar or the BFF with /auth/verify, however it is spelled', async () => {
      for (const path of ['/auth/verify', '/auth/verify/', '/auth/verify/x', '/AUTH/verify', '/auth//verify',
        '/auth/./verify', '/api/../auth/verify', '/auth/%76erify', '/auth/verify?x=1']) {
        const r = await send(edge.url, 'GET', path, { cookie: 'goldpath=abc' });
        assert.equal(r.json().service, 'spa', path);
      }
      assert.equal(auth.seen.length, 0, 'the verify sidecar was reached');
      assert.equal(up.bff!.seen.length, 0, 'the BFF was reached');
    });

    it('refuses ambiguous encodings (400) and routes on the sanitised path', async () => {
      for (const path of ['/api/orders%2F42', '/api/orders%5c42', '/api/%00', '/api/a%3Bb', '/api/%25', '/api/%zz']) {
        assert.equal((await send(edge.url, 'GET', path)).status, 400, path);
      }
      assert.equal(auth.seen.length, 0);
      await send(edge.url, 'GET', '/%61pi/./orders//42/../43?q=%2F');
      assert.equal(auth.seen[0]!.headers['x-forwarded-uri'], '/api/orders/43?q=%2F');
      assert.equal(up.api!.seen[0]!.url, '/api/orders/43?q=%2F');
      assert.equal((await send(edge.url, 'GET', '/nothing')).status, 200);
    });

    it('escapes a path with a raw " < > ^ ` { | } anew, as Go\'s URL.EscapedPath does: the sidecar and the upstream get what Traefik sends', async () => {
      // Traefik forwards req.URL.RequestURI(): with any such character in the raw path, Go escapes
      // the whole decoded path (a browser's fetch('/api/orders/a|b') sends the | unencoded). The query
      // stays raw.
      const cases: [string, string][] = [
        ['/api/orders/a|b', '/api/orders/a%7Cb'],
        ['/api/orders/a^b`c', '/api/orders/a%5Eb%60c'],
        ['/api/orders/{x}"<>', '/api/orders/%7Bx%7D%22%3C%3E'],
        ['/api/orders/(1)|', '/api/orders/%281%29%7C'],
        ['/api/orders/a%2Cb%7e|', '/api/orders/a,b~%7C'],
        ['/%61pi/x/../y|?q={|}', '/api/y%7C?q={|}'],
        ['/api/orders/(1)', '/api/orders/(1)'],
      ];
      for (const [path, sent] of cases) {
        auth.seen.length = 0;
        up.api!.seen.length = 0;
        assert.equal((await send(edge.url, 'GET', path)).status, 200, path);
        assert.equal(auth.seen[0]!.headers['x-forwarded-uri'], sent, path);
        assert.equal(up.api!.seen[0]!.url, sent, path);
      }
      // A raw backslash becomes %5C, which the entry point's allowEncodedBackSlash: false refuses.
      auth.seen.length = 0;
      assert.equal((await send(edge.url, 'GET', '/api/orders/a\\b')).status, 400);
      assert.equal(auth.seen.length, 0);
    });
  });

  describe('forwardAuth', () => {
    it('asks with GET, the client headers and X-Forwarded-* set by the edge (client values overwritten)', async () => {
      await send(edge.url, 'POST', '/api/orders?a=1', {
        host: 'app.localhost:8080',
        cookie: 'goldpath=SESSION; theme=dark',
        'x-csrf-token': 'csrf-1',
        origin: 'http://app.localhost:8080',
        'content-type': 'application/json',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-method': 'GET',
        'x-forwarded-uri': '/api/public/x',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-port': '443',
        'x-real-ip': '6.6.6.6',
        forwarded: 'for=6.6.6.6',
      }, '{"item":"x"}');
      assert.equal(auth.seen.length, 1);
      const a = auth.seen[0]!;
      assert.equal(a.method, 'GET');
      assert.equal(a.url, '/auth/verify');
      assert.equal(a.body.length, 0);
      assert.equal(a.headers['content-length'], undefined);
      assert.equal(a.headers.host, 'verify:3002', 'Host is the forwardAuth address, as Traefik sends it');
      assert.equal(a.headers['x-forwarded-method'], 'POST');
      assert.equal(a.headers['x-forwarded-uri'], '/api/orders?a=1');
      assert.equal(a.headers['x-forwarded-host'], 'app.localhost:8080');
      assert.equal(a.headers['x-forwarded-proto'], 'http');
      assert.equal(a.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(a.headers['x-forwarded-port'], '8080');
      // trustForwardHeader: false deletes Traefik's whole list from the auth request, the entry
      // point's X-Real-Ip and X-Forwarded-Server included, and sets only For/Method/Proto/Port/Host/Uri.
      assert.equal(a.headers['x-real-ip'], undefined);
      assert.equal(a.headers['x-forwarded-server'], undefined);
      assert.equal(a.headers.forwarded, undefined, 'strip-forwarding (the web entry point) removes it');
      assert.equal(a.headers.cookie, 'goldpath=SESSION; theme=dark');
      assert.equal(a.headers['x-csrf-token'], 'csrf-1');
      assert.equal(a.headers.origin, 'http://app.localhost:8080');
    });

    it('on 2xx the upstream sees exactly the auth answer\'s authResponseHeaders, and the body streams through', async () => {
      answer = allowWith({
        Authorization: 'Bearer upstream-token',
        'X-Auth-User': 'alice',
        'X-Request-Id': 'req-1',
        Cookie: 'theme=dark',
        'X-Not-Listed': 'must-not-travel',
      });
      const body = Buffer.alloc(1024 * 1024, 'x');
      const r = await send(edge.url, 'PUT', '/api/orders/42', {
        authorization: 'Bearer client-token',
        cookie: 'goldpath=SESSION; theme=dark',
        'x-auth-user': 'mallory',
        'x-auth-roles': 'admin',
        dpop: 'client-proof',
        'x-request-id': 'client-chosen',
        'x-csrf-token': 'csrf-1',
        'content-type': 'application/octet-stream',
      }, body);
      assert.equal(r.status, 200);
      const h = up.api!.seen[0]!.headers;
      assert.equal(h.authorization, 'Bearer upstream-token');
      assert.equal(h['x-auth-user'], 'alice');
      assert.equal(h['x-auth-roles'], undefined, 'listed but absent from the auth answer: deleted');
      assert.equal(h.dpop, undefined);
      assert.equal(h['x-request-id'], 'req-1');
      assert.equal(h.cookie, 'theme=dark', 'the session cookie never reaches the upstream');
      assert.equal(h['x-not-listed'], undefined);
      assert.equal(h['x-csrf-token'], undefined, 'the sidecar checked it; the upstream never sees it');
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(up.api!.seen[0]!.body.length, body.length);
      assert.ok(up.api!.seen[0]!.body.equals(body));
    });

    it('without a Cookie in the auth answer, the upstream gets no Cookie at all', async () => {
      answer = allowWith({ 'X-Auth-User': 'alice' });
      await send(edge.url, 'GET', '/api/public/x', { cookie: 'goldpath=SESSION' });
      assert.equal(up.api!.seen[0]!.headers.cookie, undefined);
    });

    for (const [status, extra] of [
      [401, { 'WWW-Authenticate': 'Bearer' }],
      [403, {}],
      [302, { Location: 'http://localhost:8080/auth/login?return_to=%2Fapi%2Forders' }],
      [503, { 'Retry-After': '1' }],
    ] as const) {
      it(`on ${status} the client gets the auth answer verbatim and the upstream is never called`, async () => {
        const payload = JSON.stringify({ error: `e${status}`, login_url: 'http://localhost:8080/auth/login' });
        answer = (_req, res) => {
          res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Set-Cookie': 'a=b; Path=/', ...extra });
          res.end(payload);
        };
        const r = await send(edge.url, 'POST', '/api/orders', { 'content-type': 'application/json', cookie: 'goldpath=S' }, '{"a":1}');
        assert.equal(r.status, status);
        assert.equal(r.text, payload);
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.deepEqual(r.headers['set-cookie'], ['a=b; Path=/']);
        for (const [k, v] of Object.entries(extra)) assert.equal(r.headers[k.toLowerCase()], v);
        assert.equal(up.api!.seen.length, 0);
      });
    }

    it('a relative Location is made absolute against the auth address, like Traefik', async () => {
      answer = (_req, res) => { res.writeHead(302, { Location: '/auth/login' }); res.end(); };
      const r = await send(edge.url, 'GET', '/api/orders/1');
      assert.equal(r.headers.location, 'http://verify:3002/auth/login');
    });

    it('refuses an auth answer bigger than maxResponseBodySize with Traefik\'s bare 401 (fail closed)', async () => {
      // forward.go reads maxResponseBodySize + 1 bytes: one more than the limit is too large.
      const fa = edge.config.middlewares['goldpath-verify'];
      assert.ok(fa?.type === 'forwardAuth');
      const limit = fa.forwardAuth.maxResponseBodySize!;
      assert.equal(limit, 32768);
      for (const status of [200, 401]) {
        answer = (_req, res) => { res.writeHead(status, { 'content-type': 'text/plain', 'www-authenticate': 'x' }); res.end('x'.repeat(limit + 1)); };
        const r = await send(edge.url, 'GET', '/api/orders/1');
        assert.equal(r.status, 401, `auth answer ${status}`);
        assert.equal(r.text, '');
        assert.equal(r.headers['content-type'], undefined, 'nothing of the auth answer');
        assert.equal(r.headers['www-authenticate'], undefined, 'nothing of the auth answer');
      }
      assert.equal(up.api!.seen.length, 0);
      answer = (_req, res) => { res.writeHead(401, { 'content-type': 'text/plain' }); res.end('x'.repeat(limit)); };
      const atLimit = await send(edge.url, 'GET', '/api/orders/1');
      assert.equal(atLimit.status, 401);
      assert.equal(atLimit.text.length, limit, 'an answer of exactly maxResponseBodySize passes');
    });

    it('fails closed with 500 when the auth server is unreachable', async () => {
      const dead = await fakeServer(() => undefined);
      await dead.close();
      const e = await startDevEdge({
        port: 0, dynamicConfigPath: GOLDPATH_YML,
        services: { api: up.api!.url, bff: up.bff!.url, spa: up.spa!.url, 'dev-idp': up['dev-idp']!.url, verify: dead.url },
      });
      try {
        assert.equal((await send(e.url, 'GET', '/api/orders/1')).status, 500);
        assert.equal(up.api!.seen.length, 0);
      } finally {
        await e.close();
      }
    });

    it('answers 500 when the auth exchange outlasts its deadline, also while the answer trickles in (Traefik\'s client Timeout)', async function () {
      this.timeout(10_000);
      const slow = await fakeServer((req, res) => {
        if (req.url === '/auth/verify?never') return; // headers never come
        res.writeHead(200, { 'X-Auth-User': 'alice', 'Content-Type': 'text/plain' });
        const trickle = setInterval(() => res.write('.'), 50); // a byte every 50 ms, never the end
        res.once('close', () => clearInterval(trickle));
      });
      const file = join(mkdtempSync(join(tmpdir(), 'goldpath-edge-slow-')), 'dyn.yml');
      for (const address of ['http://verify:3002/auth/verify', 'http://verify:3002/auth/verify?never']) {
        writeFileSync(file, readFileSync(GOLDPATH_YML, 'utf8').replace('"http://verify:3002/auth/verify"', JSON.stringify(address)));
        const e = await startDevEdge({
          port: 0, dynamicConfigPath: file, omitRouters: ['idp'], authTimeoutMs: 300,
          services: { api: up.api!.url, bff: up.bff!.url, spa: up.spa!.url, verify: slow.url },
        });
        try {
          const t0 = Date.now();
          assert.equal((await send(e.url, 'GET', '/api/orders/1')).status, 500, address);
          assert.ok(Date.now() - t0 < 3000, `${address}: answered after ${Date.now() - t0} ms`);
          assert.equal(up.api!.seen.length, 0);
        } finally {
          await e.close();
        }
      }
      await slow.close();
      rmSync(dirname(file), { recursive: true, force: true });
    });

    it('client forwarding headers: Traefik replaces its own list, strip-forwarding removes Forwarded and the like, the entry point every "_" header', async () => {
      const client = {
        host: 'app.localhost:8080',
        forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
        'x-forwarded-prefix': '/admin',
        'x-forwarded-ssl': 'on',
        'x-forwarded-scheme': 'https',
        'x-url-scheme': 'https',
        'x-forwarded-host': 'evil.example',
        x_forwarded_host: 'evil.example',
        'x-real_ip': '6.6.6.6',
        x_auth_user: 'mallory',
        // Other gateways' identity headers (oauth2-proxy, Authelia): an API moved behind goldpath may read them.
        'x-forwarded-user': 'mallory',
        'x-auth-request-email': 'mallory@example.test',
        'remote-user': 'mallory',
        'remote-groups': 'admins',
        'x-forwarded-by-client': 'passes', // on no list: Traefik forwards it, so the dev edge does too
      };
      answer = allowWith({ 'X-Auth-User': 'alice' });
      assert.equal((await send(edge.url, 'GET', '/api/orders/1', client)).status, 200);
      await send(edge.url, 'GET', '/auth/session', client); // a router without forwardAuth
      const api = up.api!.seen[0]!.headers;
      for (const [who, h] of [['the sidecar', auth.seen[0]!.headers], ['the API', api], ['the BFF', up.bff!.seen[0]!.headers]] as const) {
        for (const name of ['forwarded', 'x-forwarded-prefix', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme',
          'x_forwarded_host', 'x-real_ip', 'x_auth_user', 'x-forwarded-user', 'x-auth-request-email', 'remote-user', 'remote-groups']) {
          assert.equal(h[name], undefined, `${who} got ${name}`);
        }
        assert.equal(h['x-forwarded-host'], 'app.localhost:8080', who);
        assert.equal(h['x-forwarded-by-client'], 'passes', who);
      }
      assert.equal(api['x-auth-user'], 'alice');
      assert.equal(api['x-real-ip'], '127.0.0.1', 'the entry point\'s own, on the way upstream');
      assert.ok(api['x-forwarded-server'], 'the entry point\'s own, on the way upstream');
    });

    it('without the bundled entry point, as Traefik alone: only its own list (and its "_" spellings) is replaced, the rest passes', async () => {
      const e = await startDevEdge({
        port: 0, dynamicConfigPath: GOLDPATH_YML,
        services: { api: up.api!.url, bff: up.bff!.url, spa: up.spa!.url, 'dev-idp': up['dev-idp']!.url, verify: auth.url },
      });
      try {
        assert.deepEqual(e.entryPoint.middlewares, []);
        await send(e.url, 'GET', '/api/orders/1', {
          forwarded: 'for=6.6.6.6', 'x-forwarded-ssl': 'on', x_auth_user: 'mallory',
          x_forwarded_host: 'evil.example', 'x-forwarded-prefix': '/admin', 'x_real-ip': '6.6.6.6',
        });
        for (const h of [auth.seen[0]!.headers, up.api!.seen[0]!.headers]) {
          assert.equal(h.forwarded, 'for=6.6.6.6');
          assert.equal(h['x-forwarded-ssl'], 'on');
          assert.equal(h.x_auth_user, 'mallory');
          assert.equal(h.x_forwarded_host, undefined);
          assert.equal(h['x_real-ip'], undefined);
          assert.equal(h['x-forwarded-prefix'], undefined);
        }
      } finally {
        await e.close();
      }
    });

    it('turns ";" in the query into "&" before forwardAuth and the upstream, as Traefik does (http.AllowQuerySemicolons, the proxy director)', async () => {
      await send(edge.url, 'POST', '/api/orders?a=1;_method=DELETE');
      assert.equal(auth.seen[0]!.headers['x-forwarded-uri'], '/api/orders?a=1&_method=DELETE');
      assert.equal(up.api!.seen[0]!.url, '/api/orders?a=1&_method=DELETE');
      const bff = await send(edge.url, 'GET', '/auth/session?a=1;b=2');
      assert.equal(bff.json().url, '/auth/session?a=1&b=2');
      // With encodeQuerySemicolons the entry point encodes them instead.
      const dir = mkdtempSync(join(tmpdir(), 'goldpath-edge-ep-'));
      const file = join(dir, 'traefik.yml');
      writeFileSync(file, 'entryPoints:\n  web:\n    address: ":8080"\n    http:\n      encodeQuerySemicolons: true\n');
      const e = await startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, staticConfigPath: file, omitRouters: ['idp'],
        services: { api: up.api!.url, bff: up.bff!.url, spa: up.spa!.url, verify: auth.url } });
      try {
        assert.equal((await send(e.url, 'GET', '/auth/session?a=1;b=2')).json().url, '/auth/session?a=1%3Bb=2');
      } finally {
        await e.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a client cannot name the auth answer\'s headers in Connection to strip them from the upstream request', async () => {
      answer = allowWith({ Authorization: 'Bearer upstream-token', 'X-Auth-User': 'alice', 'X-Auth-Roles': 'reader', 'X-Request-Id': 'req-1' });
      const r = await send(edge.url, 'GET', '/api/orders/1', { connection: 'keep-alive, X-Auth-User, Authorization, X-Auth-Roles, X-Request-Id' });
      assert.equal(r.status, 200);
      const h = up.api!.seen[0]!.headers;
      assert.equal(h['x-auth-user'], 'alice');
      assert.equal(h.authorization, 'Bearer upstream-token');
      assert.equal(h['x-auth-roles'], 'reader');
      assert.equal(h['x-request-id'], 'req-1');
    });

    it('strips hop-by-hop headers, including those named by Connection', async () => {
      await send(edge.url, 'GET', '/api/orders/1', { connection: 'keep-alive, X-Hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5', te: 'trailers' });
      for (const seen of [auth.seen[0]!, up.api!.seen[0]!]) {
        assert.equal(seen.headers['x-hop'], undefined);
        assert.equal(seen.headers['keep-alive'], undefined);
        assert.equal(seen.headers.te, undefined);
      }
    });

    for (const method of ['GET', 'DELETE', 'OPTIONS', 'POST']) {
      it(`a chunked ${method} body goes on chunked: its bytes never reach the upstream as a request that met no forwardAuth`, async () => {
        answer = allowWith({ 'X-Auth-User': 'alice' });
        const inner = 'GET /api/smuggled HTTP/1.1\r\nHost: localhost\r\nX-Auth-User: admin\r\n\r\n';
        const client = connect(edge.port, '127.0.0.1');
        let got = '';
        client.on('data', (d: Buffer) => { got += d.toString('latin1'); });
        try {
          await new Promise<void>((r) => client.once('connect', r));
          client.write(`${method} /api/orders/1 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n` +
            `${Buffer.byteLength(inner).toString(16)}\r\n${inner}\r\n0\r\n\r\n`);
          for (let i = 0; i < 100 && !got.includes('"service":"api"'); i++) await new Promise((r) => setTimeout(r, 20));
          await new Promise((r) => setTimeout(r, 200)); // time for a second request to arrive, if any
        } finally {
          client.destroy();
        }
        assert.match(got, /^HTTP\/1\.1 200 /);
        assert.deepEqual(up.api!.seen.map((s) => s.url), ['/api/orders/1'], 'the upstream read the body as a request of its own');
        assert.equal(up.api!.seen[0]!.body.toString('latin1'), inner);
        assert.equal(up.api!.seen[0]!.headers['x-auth-user'], 'alice');
        assert.equal(auth.seen.length, 1);
      });
    }

    it('a client gone while forwardAuth is asked leaves no request to the upstream holding a socket (Traefik cancels it)', async () => {
      // An upstream that counts the connections it holds open.
      const open = new Set<Socket>();
      const upstream = createServer((_req, res) => { res.end('ok'); });
      upstream.on('connection', (s: Socket) => { open.add(s); s.once('close', () => open.delete(s)); });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
      const e = await startDevEdge({
        port: 0, dynamicConfigPath: GOLDPATH_YML, omitRouters: ['idp'],
        services: { api: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, bff: up.bff!.url, spa: up.spa!.url, verify: auth.url },
      });
      // The auth server answers 200 only once the client has gone.
      const asked = new Promise<ServerResponse>((r) => { answer = (_req, res) => r(res); });
      try {
        const client = connect(e.port, '127.0.0.1');
        await new Promise<void>((r) => client.once('connect', r));
        client.write(`GET /api/public/x HTTP/1.1\r\nHost: localhost:${e.port}\r\n\r\n`);
        const res = await asked;
        client.destroy();
        await new Promise((r) => setTimeout(r, 50));
        res.writeHead(200);
        res.end();
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(open.size, 0, 'the edge holds a connection to the upstream for a request no one waits for');
      } finally {
        await e.close();
        upstream.closeAllConnections();
        await new Promise((r) => upstream.close(r));
      }
    });
  });

  describe('CORS (headers middleware, ahead of forwardAuth)', () => {
    const preflight = (origin: string) => send(edge.url, 'OPTIONS', '/api/orders', {
      origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-csrf-token',
    });

    it('answers a preflight from an allowed origin at the edge', async () => {
      const r = await preflight('http://localhost:5173');
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], 'http://localhost:5173');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.match(String(r.headers['access-control-allow-headers']), /X-CSRF-Token/);
      assert.match(String(r.headers['access-control-allow-methods']), /POST/);
      assert.equal(r.headers['access-control-max-age'], '600');
      assert.equal(auth.seen.length, 0);
      assert.equal(up.api!.seen.length, 0);
    });

    it('does not grant a preflight from any other origin', async () => {
      for (const origin of ['http://evil.example', 'http://localhost:5174', 'null']) {
        const r = await preflight(origin);
        assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
      }
      assert.equal(auth.seen.length, 0);
      assert.equal(up.api!.seen.length, 0);
    });

    it('reads a repeated Origin or Access-Control-Request-Method as Traefik does: its first value (Go\'s Header.Get)', async () => {
      const raw = (method: string, path: string, pairs: [string, string][]) => new Promise<Reply>((resolve, reject) => {
        const u = new URL(edge.url);
        const req = request({ hostname: u.hostname, port: u.port, method, path, agent: false, headers: ['Host', u.host, ...pairs.flat()] as unknown as Record<string, string> }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: '', json: () => undefined }));
        });
        req.on('error', reject);
        req.end();
      });
      // An empty first Access-Control-Request-Method is no preflight to Traefik: forwardAuth decides.
      answer = (_req, res) => { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"error":"login_required"}'); };
      const passed = await raw('OPTIONS', '/api/orders/1', [['Origin', 'http://localhost:5173'], ['Access-Control-Request-Method', ''], ['Access-Control-Request-Method', 'POST']]);
      assert.equal(passed.status, 401);
      assert.equal(auth.seen.length, 1, 'asked the sidecar, as Traefik does');
      assert.equal(up.api!.seen.length, 0);
      // The first Origin decides Access-Control-Allow-Origin, whatever follows it.
      answer = allowWith({});
      const first = await raw('GET', '/api/orders/1', [['Origin', 'http://localhost:5173'], ['Origin', 'http://evil.example']]);
      assert.equal(first.headers['access-control-allow-origin'], 'http://localhost:5173');
      const other = await raw('GET', '/api/orders/1', [['Origin', 'http://evil.example'], ['Origin', 'http://localhost:5173']]);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    });

    it('only the allowed origins may read an answer: an upstream (or the sidecar) that echoes any Origin is overruled', async () => {
      // Express's cors({ origin: true, credentials: true }): every Origin is echoed back as allowed.
      const reflecting = await fakeServer((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': req.headers.origin ?? '*', 'access-control-allow-credentials': 'true' });
        res.end('{"secret":"the user\'s orders"}');
      });
      const own = await startDevEdge({
        port: 0, dynamicConfigPath: GOLDPATH_YML, staticConfigPath: TRAEFIK_YML,
        services: { api: reflecting.url, bff: reflecting.url, spa: up.spa!.url, 'dev-idp': up['dev-idp']!.url, verify: auth.url },
      });
      try {
        // Same-site to the app (another port of localhost): the SameSite=Strict cookie comes along.
        for (const path of ['/api/orders/1', '/auth/session']) {
          const sibling = await send(own.url, 'GET', path, { origin: 'http://localhost:3000' });
          assert.equal(sibling.status, 200);
          assert.equal(sibling.headers['access-control-allow-origin'], undefined, `${path}: the upstream's echo is gone`);
          const spa = await send(own.url, 'GET', path, { origin: 'http://localhost:5173' });
          assert.equal(spa.headers['access-control-allow-origin'], 'http://localhost:5173', path);
        }
        answer = (req, res) => { res.writeHead(401, { 'content-type': 'application/json', 'access-control-allow-origin': String(req.headers.origin) }); res.end('{}'); };
        const refused = await send(own.url, 'GET', '/api/orders/1', { origin: 'http://localhost:3000' });
        assert.equal(refused.status, 401);
        assert.equal(refused.headers['access-control-allow-origin'], undefined);
      } finally {
        await own.close();
        await reflecting.close();
      }
    });

    it('lets an allowed origin read /auth/session and preflight a logout: a cross-origin SPA needs its CSRF token', async () => {
      const session = await send(edge.url, 'GET', '/auth/session', { origin: 'http://localhost:5173' });
      assert.equal(session.json().service, 'bff');
      assert.equal(session.headers['access-control-allow-origin'], 'http://localhost:5173');
      assert.equal(session.headers['access-control-allow-credentials'], 'true');
      const logout = await send(edge.url, 'OPTIONS', '/auth/logout', {
        origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-csrf-token',
      });
      assert.equal(logout.status, 200);
      assert.equal(logout.headers['access-control-allow-origin'], 'http://localhost:5173');
      assert.match(String(logout.headers['access-control-allow-headers']), /X-CSRF-Token/);
      assert.equal(up.bff!.seen.length, 1, 'the preflight is answered at the edge');
      const other = await send(edge.url, 'GET', '/auth/session', { origin: 'http://evil.example' });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    });

    it('adds the CORS headers, nosniff and a no-script CSP to upstream answers and to the sidecar\'s refusals', async () => {
      const ok = await send(edge.url, 'GET', '/api/orders/1', { origin: 'http://localhost:5173' });
      assert.equal(ok.headers['access-control-allow-origin'], 'http://localhost:5173');
      assert.equal(ok.headers['access-control-expose-headers'], 'X-Request-Id');
      assert.match(String(ok.headers.vary), /Origin/);
      assert.equal(ok.headers['x-content-type-options'], 'nosniff');
      answer = (_req, res) => { res.writeHead(401, { 'content-type': 'application/json' }); res.end('{"error":"login_required"}'); };
      const refused = await send(edge.url, 'GET', '/api/orders/1', { origin: 'http://localhost:5173' });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers['access-control-allow-origin'], 'http://localhost:5173');
      // The sidecar's refusals reach the browser as the answer to an /api call: never sniffed,
      // with no header of the sidecar's own to pay for on every refusal (its 401 is a target).
      assert.equal(refused.headers['x-content-type-options'], 'nosniff');
      // Nor run as a page: no script, whichever answered (the upstream or the sidecar).
      for (const r of [ok, refused]) assert.match(String(r.headers['content-security-policy']), /^default-src 'none';/);
      const other = await send(edge.url, 'GET', '/api/orders/1', { origin: 'http://evil.example' });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      assert.equal(other.headers['x-content-type-options'], 'nosniff', 'whatever the origin');
    });
  });

  it('adds the security headers to the SPA, without HSTS on plain http', async () => {
    const r = await send(edge.url, 'GET', '/');
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.equal(r.headers['strict-transport-security'], undefined);
    const api = await send(edge.url, 'GET', '/api/orders/1');
    assert.doesNotMatch(String(api.headers['content-security-policy']), /'self'/, 'the SPA headers belong to the SPA router');
    assert.equal(api.headers['x-frame-options'], undefined, 'the SPA headers belong to the SPA router');
  });

  it('with the example API behind it, no credential is ever echoed in full', async () => {
    const api: RunningServer = await startExampleApi({ port: 0 });
    const token = 'eyJhbGciOiJSUzI1NiJ9.' + 'p'.repeat(120) + '.signature-part';
    const proof = 'eyJ0eXAiOiJkcG9wK2p3dCJ9.' + 'q'.repeat(80);
    const e = await startDevEdge({
      port: 0, dynamicConfigPath: GOLDPATH_YML,
      services: { api: api.url, bff: up.bff!.url, spa: up.spa!.url, 'dev-idp': up['dev-idp']!.url, verify: auth.url },
    });
    try {
      answer = allowWith({ Authorization: `DPoP ${token}`, DPoP: proof, 'X-Auth-User': 'alice', 'X-Auth-Roles': 'admin,reader', 'X-Request-Id': 'rid-7', Cookie: 'theme=dark' });
      const r = await send(e.url, 'POST', '/api/orders', { cookie: 'goldpath=SESSION-SECRET-VALUE; theme=dark', 'content-type': 'application/json', 'x-csrf-token': 'csrf-secret-value' }, '{"item":"coffee"}');
      assert.equal(r.status, 200);
      for (const secret of [token, token.slice(0, 20), proof.slice(0, 20), 'SESSION-SECRET-VALUE', 'csrf-secret-value', 'dark']) {
        assert.ok(!r.text.includes(secret), `the echo shows ${secret.slice(0, 12)}…`);
      }
      const j = r.json();
      assert.equal(j.received.authorization, `DPoP ${token.slice(0, 8)}…`);
      assert.equal(j.received.dpop, `${proof.slice(0, 8)}…`);
      assert.equal(j.received.user, 'alice');
      assert.deepEqual(j.received.roles, ['admin', 'reader']);
      assert.equal(j.received.request_id, 'rid-7');
      assert.deepEqual(j.received.cookies, ['theme']);
      assert.equal(j.received.session_cookie_received, false);
      assert.deepEqual(j.body, { item: 'coffee' });
    } finally {
      await e.close();
      await api.close();
    }
  });

  describe('startup', () => {
    let dir: string;
    before(() => { dir = mkdtempSync(join(tmpdir(), 'goldpath-edge-bad-')); });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const base = ['http:', '  services:', '    s: { loadBalancer: { servers: [ { url: "http://s:1" } ] } }'];
    const cases: [string, string[], RegExp][] = [
      ['an unsupported matcher', [...base, '  routers:', '    r: { rule: "HostRegexp(`.+`)", service: s }'], /http\.routers\.r\.rule.*HostRegexp/],
      ['v2 multi-argument syntax', [...base, '  routers:', '    r: { rule: "Path(`/a`, `/b`)", service: s }'], /exactly one argument/],
      ['an unsupported middleware', [...base, '  routers:', '    r: { rule: "Path(`/a`)", service: s, middlewares: [m] }',
        '  middlewares:', '    m: { stripPrefix: { prefixes: [/a] } }'], /http\.middlewares\.m\.stripPrefix.*not supported/],
      ['an unknown forwardAuth option', [...base, '  routers:', '    r: { rule: "Path(`/a`)", service: s, middlewares: [m] }',
        '  middlewares:', '    m: { forwardAuth: { address: "http://s:1/x", forwardBody: true } }'], /forwardBody/],
      ['trustForwardHeader: true', [...base, '  routers:', '    r: { rule: "Path(`/a`)", service: s, middlewares: [m] }',
        '  middlewares:', '    m: { forwardAuth: { address: "http://s:1/x", trustForwardHeader: true } }'], /trustForwardHeader/],
      ['an undefined middleware', [...base, '  routers:', '    r: { rule: "Path(`/a`)", service: s, middlewares: [nope] }'], /nope is not defined/],
      ['an undefined service', [...base, '  routers:', '    r: { rule: "Path(`/a`)", service: other }'], /other is not defined/],
      ['a tcp section', [...base, 'tcp: {}'], /tcp.*only http/],
      ['a broken rule', [...base, '  routers:', '    r: { rule: "Path(`/a`) ||", service: s }'], /http\.routers\.r\.rule/],
    ];
    for (const [what, lines, message] of cases) {
      it(`refuses ${what}, naming the key`, async () => {
        const file = join(dir, `${what.replace(/\W+/g, '-')}.yml`);
        writeFileSync(file, lines.join('\n'));
        await assert.rejects(startDevEdge({ port: 0, dynamicConfigPath: file, services: { s: 'http://127.0.0.1:1' } }), (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, message);
          assert.ok(err.problems.every((p) => p.file === file));
          return true;
        });
      });
    }

    const staticCases: [string, string[], RegExp][] = [
      ['trusted forwarded headers', ['      maxHeaderBytes: 32768', '    forwardedHeaders: { trustedIPs: [10.0.0.1] }'], /entryPoints\.web\.forwardedHeaders/],
      ['an allowed encoded character', ['      encodedCharacters: { allowEncodedSlash: true }'], /encodedCharacters/],
      ['an unknown underscore strategy', ['      underscoreHeadersStrategy: drop'], /underscoreHeadersStrategy.*keep, delete or reject/],
      ['an entry-point middleware the dynamic file lacks', ['      middlewares: [nope@file]'], /nope is not defined/],
      ['an entry-point middleware of another provider', ['      middlewares: [auth@docker]'], /name@file/],
    ];
    for (const [what, lines, message] of staticCases) {
      it(`refuses a static file with ${what}, naming the key`, async () => {
        const file = join(dir, `static-${what.replace(/\W+/g, '-')}.yml`);
        writeFileSync(file, ['entryPoints:', '  web:', '    address: ":8080"', '    http:', ...lines].join('\n'));
        await assert.rejects(startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, staticConfigPath: file,
          services: { api: 'http://127.0.0.1:1', bff: 'http://127.0.0.1:1', spa: 'http://127.0.0.1:1', 'dev-idp': 'http://127.0.0.1:1', verify: 'http://127.0.0.1:1' } }),
        (err: unknown) => err instanceof ConfigError && message.test(err.message));
      });
    }

    it('underscoreHeadersStrategy: reject answers 400 to any header with "_", as Traefik does', async () => {
      const file = join(dir, 'static-reject.yml');
      writeFileSync(file, 'entryPoints:\n  web:\n    http:\n      underscoreHeadersStrategy: reject\n');
      const api = await echoUpstream('api');
      const e = await startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, staticConfigPath: file, omitRouters: ['idp'],
        services: { api: api.url, bff: api.url, spa: api.url, verify: api.url } });
      try {
        assert.equal((await send(e.url, 'GET', '/', { x_auth_user: 'mallory' })).status, 400);
        assert.equal((await send(e.url, 'GET', '/', { 'x-auth-user': 'mallory' })).status, 200);
        assert.equal(api.seen.length, 1);
      } finally {
        await e.close();
        await api.close();
      }
    });

    it('routes only what Traefik attaches to its plain-HTTP entry point: no router of another entry point, none with tls:', async () => {
      const file = join(dir, 'entry-points.yml');
      writeFileSync(file, ['http:', '  services:', '    s: { loadBalancer: { servers: [ { url: "http://s:1" } ] } }', '  routers:',
        '    on-web: { rule: "Path(`/a`)", entryPoints: [web], service: s }',
        '    internal: { rule: "Path(`/b`)", entryPoints: [traefik], service: s }',
        '    secure: { rule: "Path(`/c`)", entryPoints: [web], tls: {}, service: s }',
        '    everywhere: { rule: "Path(`/d`)", service: s }'].join('\n'));
      const s = await echoUpstream('s');
      const e = await startDevEdge({ port: 0, dynamicConfigPath: file, services: { s: s.url } }); // entry point "web"
      try {
        const status = async (path: string) => (await send(e.url, 'GET', path)).status;
        assert.deepEqual([await status('/a'), await status('/b'), await status('/c'), await status('/d')], [200, 404, 404, 200]);
        assert.deepEqual(s.seen.map((x) => x.url), ['/a', '/d']);
      } finally {
        await e.close();
        await s.close();
      }
    });

    it('refuses a router service or forwardAuth host missing from the services map', async () => {
      await assert.rejects(startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, services: { api: 'http://127.0.0.1:1', bff: 'http://127.0.0.1:1', spa: 'http://127.0.0.1:1' } }),
        (err: unknown) => err instanceof ConfigError && /"verify"/.test(err.message) && /"dev-idp"/.test(err.message));
      // Leaving a router out is explicit.
      const e = await startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, omitRouters: ['idp'],
        services: { api: 'http://127.0.0.1:1', bff: 'http://127.0.0.1:1', spa: 'http://127.0.0.1:1', verify: 'http://127.0.0.1:1' } });
      assert.ok(!e.config.routers.some((r) => r.name === 'idp'));
      await e.close();
    });
  });

  describe('rule parser and path sanitiser (units)', () => {
    it('rateLimit: a token bucket per source; a short wait is waited, a long one refused (Traefik\'s maxDelay)', () => {
      let now = 0;
      const rl = new RateLimiter({ average: 60, period: '1m', burst: 2 }, () => now);
      assert.deepEqual(rl.admit('a'), { wait: 0 });
      assert.deepEqual(rl.admit('a'), { wait: 0 });
      const r = rl.admit('a');
      assert.ok('refused' in r && r.retryInMs > 500, JSON.stringify(r));
      assert.deepEqual(rl.admit('b'), { wait: 0 }, 'another source has its own bucket');
      assert.deepEqual([goDuration(816.2), goDuration(1400), goDuration(62_500), goDuration(1000)], ['816.2ms', '1.4s', '1m2.5s', '1s'], 'X-Retry-In as Go prints a Duration');
      now = 600; // 0.6 token back: the next is 400 ms away, within maxDelay (500 ms at 1/s)
      const w = rl.admit('a');
      assert.ok('wait' in w && Math.round(w.wait) === 400, JSON.stringify(w));
    });

    it('rateLimit: a source idle for Traefik\'s TTL (2 s at 1/s, whole seconds) is forgotten and gets a full bucket back', () => {
      let now = 10_000;
      const rl = new RateLimiter({ average: 60, period: '1m', burst: 60 }, () => now);
      const taken = (n: number) => {
        let ok = 0;
        for (let i = 0; i < n; i++) if ('wait' in rl.admit('a')) ok++;
        return ok;
      };
      assert.equal(taken(100), 60, 'the burst');
      now = 11_500; // within the TTL (the entry, last set at second 10, lives to second 12): the refill only
      assert.equal(taken(10), 2, '1.5 tokens back: one now, one 500 ms away (within maxDelay), no more');
      now = 14_000; // no request since second 11: forgotten at second 13
      assert.equal(taken(100), 60, 'a full bucket again after the pause, as Traefik gives it');
      // At 1 a minute the TTL is 1 + 60 s: an address idle for 30 s is still remembered.
      let t = 0;
      const slow = new RateLimiter({ average: 1, period: '1m', burst: 1 }, () => t);
      assert.ok('wait' in slow.admit('b'));
      t = 30_000;
      assert.ok('refused' in slow.admit('b'), 'remembered: its bucket is still empty');
      t = 92_000; // 62 s after its last request: forgotten
      assert.deepEqual(slow.admit('b'), { wait: 0 });
    });

    it('parses Traefik v3 rules with precedence ! > && > ||', () => {
      const m = parseRule('Path(`/a`) || PathPrefix(`/b/`) && !Path(`/b/x`)');
      const at = (path: string) => m({ host: 'h', path });
      assert.equal(at('/a'), true);
      assert.equal(at('/b/y'), true);
      assert.equal(at('/b/x'), false);
      assert.equal(at('/bx'), false);
      assert.equal(parseRule('(Path(`/a`) || Path(`/b`)) && Host("h")')({ host: 'h', path: '/b' }), true);
      for (const bad of ['', 'Path(/a)', 'Path(`a`)', 'Method(`GET`)', 'Path(`/a`) &&', 'Path(`/a`)) ', 'Path(`/a']) {
        assert.throws(() => parseRule(bad), Error, bad);
      }
    });

    it('sanitises like Traefik', () => {
      assert.deepEqual(sanitizeRequestTarget('/a//b/./c/../d/?x=%2F'), { path: '/a/b/d/', query: '?x=%2F' });
      assert.deepEqual(sanitizeRequestTarget('/%7e%41%c3%a9'), { path: '/~A%C3%A9', query: '' });
      assert.deepEqual(sanitizeRequestTarget('/../../etc'), { path: '/etc', query: '' });
      assert.deepEqual(sanitizeRequestTarget('/a|(b)/%7e?q=|'), { path: '/a%7C%28b%29/~', query: '?q=|' });
      assert.equal(sanitizeRequestTarget('/a\\b'), undefined);
      for (const bad of ['a', 'http://x/a', '/a%2fb', '/a%5Cb', '/%00', '/a b', '/a\u00e9', '/%2', '/a#b']) {
        assert.equal(sanitizeRequestTarget(bad), undefined, bad);
      }
    });
  });
  // Last: it spends this edge's sign-in budget (mocha runs a suite's own tests before its sub-suites).
  describe('rateLimit on /auth/login', () => {
    it('limits sign-in starts per client address (rateLimit): 429 with Retry-After past the burst; other paths unaffected', async () => {
      let ok = 0;
      let refused: Awaited<ReturnType<typeof send>> | undefined;
      const t0 = Date.now();
      for (let i = 0; i < 200 && refused === undefined; i++) {
        const r = await send(edge.url, 'GET', '/auth/login');
        if (r.status === 200) ok++;
        else refused = r;
      }
      assert.ok(refused, 'a client past its burst is refused');
      assert.equal(refused.status, 429);
      assert.match(String(refused.headers['retry-after']), /^[1-9]\d*$/);
    assert.match(String(refused.headers['x-retry-in']), /^\d+(\.\d+)?(ms|s)$/);
      // The burst (2, less the routing test's one), and a token a second while the loop ran.
      const refilled = Math.ceil((Date.now() - t0) / 1000);
      assert.ok(ok >= 1 && ok <= 2 + refilled, `${ok} sign-in starts let through before the first 429 in ${Date.now() - t0} ms`);
      assert.equal((await send(edge.url, 'GET', '/auth/session')).status, 200, 'only /auth/login is limited');
    });

    it('an address that pauses past Traefik\'s 2 s TTL between bursts gets no more than the refill (the bundled burst is 2)', async () => {
      let ok = 0;
      for (let round = 0; round < 2; round++) {
        await new Promise((r) => setTimeout(r, 2200)); // forgotten: a full bucket
        const t0 = Date.now();
        for (let i = 0; i < 20; i++) if ((await send(edge.url, 'GET', '/auth/login')).status === 200) ok++;
        assert.ok(Date.now() - t0 < 2000, 'the burst was sent within the TTL');
      }
      // Two full buckets of 2 and what refills while each burst runs; with a burst of 60 it was 120.
      assert.ok(ok <= 8, `${ok} sign-in starts in two bursts 2.2 s apart`);
    });
  });
});
