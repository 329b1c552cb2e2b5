// listen(): what a request Node itself refuses (before any handler runs) gets back.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { listen, type Listening } from '../../src/http/serve.ts';

/** Sends raw bytes, reads until the server closes. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(bytes);
  });
}

describe('listen: requests Node refuses', function () {
  let server: Listening;
  before(async () => {
    server = await listen((_req, res) => res.end('ok'), 0, '127.0.0.1');
  });
  after(() => server.close());

  const answer = (text: string) => {
    const [head, body] = text.split('\r\n\r\n');
    return { status: Number(head!.split(' ')[1]), head: head!.toLowerCase(), body: JSON.parse(body!) as Record<string, string> };
  };

  it('headers over 32 KiB (e.g. a URI far past the 8 KiB limit) get 431 JSON, no-store', async () => {
    const r = answer(await raw(server.port, `GET /auth/verify HTTP/1.1\r\nHost: x\r\nX-Forwarded-Uri: /api/${'a'.repeat(40_000)}\r\n\r\n`));
    assert.equal(r.status, 431);
    assert.deepEqual(r.body, { error: 'headers_too_large', error_description: 'the request headers are larger than 32 KiB' });
    assert.match(r.head, /cache-control: no-store/);
    assert.match(r.head, /content-type: application\/json/);
  });

  it('a request that is not HTTP gets 400 JSON', async () => {
    const r = answer(await raw(server.port, 'HELLO\r\n\r\n'));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
    assert.match(r.head, /cache-control: no-store/);
  });

  it('a client that stops sending its headers gets 408 JSON once the 10 s headers timeout passes, not up to 30 s later', async function () {
    this.timeout(30_000);
    const started = Date.now();
    const r = answer(await raw(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'));
    const waited = Date.now() - started;
    assert.equal(r.status, 408);
    assert.deepEqual(r.body, { error: 'request_timeout', error_description: 'the request took too long to arrive' });
    assert.ok(waited >= 9_000 && waited < 13_000, `answered after ${waited} ms`);
  });

  it('a sound request is not affected', async () => {
    const text = await raw(server.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 OK/);
  });

  it('a refused connection is closed for good once answered, even when the client keeps its end open', async () => {
    const s = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve) => s.once('connect', resolve));
    const answered = new Promise<void>((resolve) => s.once('end', resolve));
    s.resume();
    s.write('HELLO\r\n\r\n');
    await answered; // the server's answer and FIN; our end stays open
    const open = () => new Promise<number>((resolve, reject) => server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    const until = Date.now() + 3_000;
    while ((await open()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await open(), 0, 'the server still holds the socket');
    s.destroy();
  });

  it('every header field reaches the handler, however many (Node kept ~1,000 and dropped the rest unseen)', async () => {
    const counting = await listen((req, res) => res.end(String(req.rawHeaders.length / 2)), 0, '127.0.0.1');
    try {
      const padding = Array.from({ length: 1_500 }, (_, i) => `X-Pad-${i}: a\r\n`).join('');
      const text = await raw(counting.port, `GET / HTTP/1.1\r\nHost: x\r\n${padding}X-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 200 OK/);
      assert.equal(text.split('\r\n\r\n')[1], '1503');
    } finally {
      await counting.close();
    }
  });
});
