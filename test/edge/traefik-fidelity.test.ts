// Points where the development edge differed from Traefik v3 as its source reads:
// - rateLimit (pkg/middlewares/ratelimiter, New): maxDelay = time.Second / (time.Duration(rtl) * 2),
//   the rate truncated to whole requests a second before halving;
// - Host matcher (pkg/muxer/http/matcher.go, host): a trailing "." on the request's host, or on the
//   rule's, still matches.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRule, startDevEdge } from '../../src/dev/edge/index.ts';
import { RateLimiter } from '../../src/dev/edge/rate-limit.ts';
import { closeServer } from '../helpers/close-server.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GOLDPATH_YML = join(ROOT, 'traefik', 'dynamic', 'goldpath.yml');
const TRAEFIK_YML = join(ROOT, 'traefik', 'traefik.yml');

function get(base: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = request({ hostname: u.hostname, port: u.port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('development edge: fidelity to Traefik v3 (rateLimit maxDelay, Host matcher)', () => {
  it('rateLimit at a rate that is not a whole number a second waits up to Traefik\'s maxDelay (500 ms at 1.5/s), not 1/(2·rate)', () => {
    // average 3 per 2 s: rtl = 1.5, so Traefik's maxDelay is 1 s / (1 * 2) = 500 ms.
    let now = 0;
    const rl = new RateLimiter({ average: 3, period: '2s', burst: 1 }, () => now);
    assert.deepEqual(rl.admit('a'), { wait: 0 });
    now = 250; // 0.375 token back: the next is (1 - 0.375) / 1.5 s = ~417 ms away
    const r = rl.admit('a');
    assert.ok('wait' in r, `Traefik waits ~417 ms (under its 500 ms maxDelay) rather than refusing: ${JSON.stringify(r)}`);
    assert.equal(Math.round(r.wait), 417);
    // Past 500 ms it refuses, as before.
    let t = 0;
    const rl2 = new RateLimiter({ average: 3, period: '2s', burst: 1 }, () => t);
    rl2.admit('b');
    assert.ok('refused' in rl2.admit('b'), '667 ms away: over maxDelay');
    // At 2.9/s Traefik truncates to 2: maxDelay 250 ms (not 172 ms).
    let u = 0;
    const rl3 = new RateLimiter({ average: 29, period: '10s', burst: 1 }, () => u);
    rl3.admit('c');
    u = 150; // 0.435 token back: the next is ~195 ms away
    const r3 = rl3.admit('c');
    assert.ok('wait' in r3 && Math.round(r3.wait) === 195, JSON.stringify(r3));
  });

  it('Host(`x`) matches a request host with a trailing dot, and Host(`x.`) one without, as Traefik\'s host matcher does', () => {
    assert.equal(parseRule('Host(`idp.localhost`)')({ host: 'idp.localhost.', path: '/' }), true);
    assert.equal(parseRule('Host(`idp.localhost.`)')({ host: 'idp.localhost', path: '/' }), true);
    assert.equal(parseRule('Host(`idp.localhost`)')({ host: 'idp.localhostx', path: '/' }), false);
    assert.equal(parseRule('Host(`idp.localhost`)')({ host: 'idp.localhost..', path: '/' }), false);
  });

  it('a request for idp.localhost. (trailing dot) reaches the dev-IdP router over HTTP, as in Traefik, never the API\'s forwardAuth', async () => {
    const seen: { service: string; url: string }[] = [];
    const servers = await Promise.all(['api', 'bff', 'spa', 'dev-idp', 'verify'].map(async (name) => {
      const s = createServer((req, res) => {
        seen.push({ service: name, url: req.url! });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(name);
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return [name, s] as const;
    }));
    const url = (s: ReturnType<typeof createServer>) => `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    const services = Object.fromEntries(servers.map(([n, s]) => [n, url(s)]));
    const edge = await startDevEdge({ port: 0, dynamicConfigPath: GOLDPATH_YML, staticConfigPath: TRAEFIK_YML, services });
    try {
      const r = await get(edge.url, '/api/orders/1', { host: 'idp.localhost.:8080' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'dev-idp');
      assert.deepEqual(seen.map((s) => s.service), ['dev-idp'], 'no forwardAuth call, no API');
    } finally {
      await edge.close();
      for (const [, s] of servers) await closeServer(s);
    }
  });
});
