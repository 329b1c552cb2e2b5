// The example API echoes what reached it (never a credential in full); the SPA server serves only
// the files of src/dev/spa; the SPA itself has the ids the browser tests use and no inline script.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { defaultSpaDir, exampleApiHandler, fingerprint, spaHandler, startExampleApi, startSpaServer } from '../../src/dev/api.ts';

describe('example API and SPA (src/dev/api.ts, src/dev/spa)', () => {
  const api = createServer(exampleApiHandler());

  describe('API echo', () => {
    it('echoes method, path, query and the identity headers', async () => {
      const r = await request(api)
        .get('/api/orders/42?x=1&x=2&y=3')
        .set('Authorization', 'Bearer abcdefghijklmnopqrstuvwxyz')
        .set('X-Auth-User', 'alice')
        .set('X-Auth-Roles', 'admin,reader')
        .set('X-Request-Id', 'rid-1')
        .set('Cookie', 'theme=dark; lang=en')
        .expect(200)
        .expect('Content-Type', /application\/json/)
        .expect('Cache-Control', 'no-store');
      assert.equal(r.body.method, 'GET');
      assert.equal(r.body.path, '/api/orders/42');
      assert.deepEqual(r.body.query, { x: ['1', '2'], y: '3' });
      assert.deepEqual(r.body.received, {
        authorization: 'Bearer abcdefgh…', dpop: null, user: 'alice', roles: ['admin', 'reader'],
        request_id: 'rid-1', cookies: ['theme', 'lang'], session_cookie_received: false,
      });
      assert.equal(r.body.headers.authorization, 'Bearer abcdefgh…');
      assert.equal(r.body.headers.cookie, 'theme=…; lang=…');
      assert.ok(!r.text.includes('abcdefghijklmnop'));
      assert.ok(!r.text.includes('dark'));
    });

    it('echoes query parameters named like Object.prototype\'s members as they were sent', async () => {
      const r = await request(api).get('/api/x?constructor=x&toString=1&__proto__=a&__proto__=b').expect(200);
      assert.deepEqual(JSON.parse(r.text).query, JSON.parse('{"constructor":"x","toString":"1","__proto__":["a","b"]}'));
    });

    it('reports a session cookie that should never have arrived, without its value', async () => {
      for (const name of ['goldpath', '__Host-goldpath']) {
        const r = await request(api).get('/api').set('Cookie', `${name}=s3cr3t-value`).expect(200);
        assert.equal(r.body.received.session_cookie_received, true);
        assert.ok(!r.text.includes('s3cr3t-value'));
      }
    });

    it('echoes a JSON body on POST/PUT/PATCH and refuses bad or oversized ones', async () => {
      const r = await request(api).post('/api/orders').set('X-CSRF-Token', 'csrf-secret-token').send({ item: 'coffee', quantity: 2 }).expect(200);
      assert.deepEqual(r.body.body, { item: 'coffee', quantity: 2 });
      assert.ok(!r.text.includes('csrf-secret-token'));
      await request(api).put('/api/orders/1').set('Content-Type', 'application/json').send('{nope').expect(400);
      await request(api).patch('/api/orders/1').set('Content-Type', 'application/json').send(JSON.stringify({ a: 'x'.repeat(20_000) })).expect(413);
      const text = await request(api).post('/api/x').set('Content-Type', 'text/plain').send('hello').expect(200);
      assert.deepEqual(text.body.body, { bytes: 5, content_type: 'text/plain' });
    });

    // Echoed with two spaces a level, a body nested n deep comes back ~2n² bytes long: 8 KB of
    // brackets (public routes take it with no login) came back as 32 MB after seconds of the demo's
    // only thread, and a deeper one overflowed JSON.stringify's stack: a 500.
    it('refuses a JSON body nested too deep (400), rather than a 500 or an answer thousands of times its size', async () => {
      for (const n of [2_000, 8_000]) {
        const r = await request(api).post('/api/public/hello').set('Content-Type', 'application/json').send('['.repeat(n) + ']'.repeat(n));
        assert.equal(r.status, 400, `depth ${n}: ${r.status}, ${r.text.length} bytes`);
        assert.equal(r.body.error, 'invalid_json');
        assert.ok(r.text.length < 1_000);
      }
      const ok = await request(api).post('/api/orders').send({ a: { b: [[{ c: 1 }]] } }).expect(200);
      assert.deepEqual(ok.body.body, { a: { b: [[{ c: 1 }]] } });
    });

    it('answers HEAD without a body and other paths with 404', async () => {
      const h = await request(api).head('/api/orders').expect(200);
      assert.equal(h.text, undefined);
      await request(api).get('/apix').expect(404);
      await request(api).get('/').expect(404);
    });

    it('fingerprints never show more than 8 characters, nor half of a short secret', () => {
      assert.equal(fingerprint('Bearer abcdefghijklmnop'), 'Bearer abcdefgh…');
      assert.equal(fingerprint('DPoP abcd'), 'DPoP ab…');
      assert.equal(fingerprint('abcdefghijklmnopqrst'), 'abcdefgh…');
      assert.equal(fingerprint('Bearer x'), 'Bearer …');
    });
  });

  describe('SPA files', () => {
    const spa = createServer(spaHandler(defaultSpaDir()));

    it('serves index.html, app.js and style.css with their types', async () => {
      const index = await request(spa).get('/').expect(200).expect('Content-Type', /text\/html/).expect('X-Content-Type-Options', 'nosniff');
      assert.match(index.text, /<script src="\/app\.js"/);
      await request(spa).get('/index.html').expect(200);
      await request(spa).get('/app.js').expect(200).expect('Content-Type', /text\/javascript/);
      await request(spa).get('/style.css?v=1').expect(200).expect('Content-Type', /text\/css/);
    });

    it('serves nothing outside the folder and only GET/HEAD', async () => {
      for (const path of ['/../api.ts', '/..%2fapi.ts', '/%2e%2e/api.ts', '/nope.html', '/.hidden', '//etc/passwd', '/api/orders']) {
        await request(spa).get(path).expect(404);
      }
      await request(spa).post('/').expect(405).expect('Allow', 'GET, HEAD');
    });

    it('the API process can serve the SPA too', async () => {
      const both = createServer(exampleApiHandler({ spaDir: defaultSpaDir() }));
      await request(both).get('/').expect(200).expect('Content-Type', /text\/html/);
      await request(both).get('/api/x').expect(200).expect('Content-Type', /json/);
    });

    it('has the stable ids for browser tests and no inline script or handler (CSP script-src \'self\')', () => {
      const html = readFileSync(join(defaultSpaDir(), 'index.html'), 'utf8');
      for (const id of ['login', 'logout', 'whoami', 'read', 'write', 'profile', 'public', 'result', 'status']) {
        assert.match(html, new RegExp(`id="${id}"`), id);
      }
      assert.match(html, /id="login"[^>]*href="\/auth\/login\?return_to=\/"/);
      for (const tag of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/g) ?? []) {
        assert.match(tag, /^<script src="[^"]+"[^>]*><\/script>$/, 'inline script');
      }
      assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'inline event handler');
      assert.doesNotMatch(html, /style\s*=/i, 'inline style');
      const js = readFileSync(join(defaultSpaDir(), 'app.js'), 'utf8');
      assert.doesNotMatch(js, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
      for (const path of ['/auth/session', '/api/orders/42', '/api/orders', '/api/profiles/', '/auth/logout', 'X-CSRF-Token', 'logout_url']) {
        assert.ok(js.includes(path), path);
      }
    });
  });

  it('startExampleApi and startSpaServer listen on a free port and close', async () => {
    const a = await startExampleApi({ port: 0 });
    const s = await startSpaServer({ port: 0 });
    try {
      assert.equal((await fetch(`${a.url}/api/ping`)).status, 200);
      assert.equal((await fetch(`${s.url}/`)).status, 200);
    } finally {
      await a.close();
      await s.close();
    }
  });
});
