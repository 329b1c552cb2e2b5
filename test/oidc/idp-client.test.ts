// IdpClient against a real dev IdP whose answers a test fetch spoils: a userinfo endpoint that is
// down or answers garbage is "try again later" (503), as at the token endpoint, not a 400 that
// blames the sign-in; an IdP answer larger than any IdP document is refused whatever fetch carries it.
import assert from 'node:assert/strict';
import { startIdpBff, testIdpConfig, type IdpBff } from '../helpers/idp-bff.ts';
import { RedisServer } from '../helpers/redis.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import * as oidc from 'openid-client';
import { IdpClient } from '../../src/oidc/idp-client.ts';
import { errorSummary } from '../../src/oidc/idp-errors.ts';
import { silentLogger } from '../../src/log.ts';

type Spoil = (url: string) => Response | undefined;

describe('IdpClient: IdP answers that are not answers', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let env: IdpBff;
  let spoil: Spoil | undefined;
  const fetch: FetchLike = async (url, init) => spoil?.(String(url)) ?? globalThis.fetch(url, init as RequestInit);
  const isUserinfo = (url: string) => new URL(url).pathname === '/me';

  before(async () => {
    redis = await RedisServer.start();
    env = await startIdpBff({ redis, fetch });
  });
  after(async () => {
    await env?.close();
    await redis?.stop();
  });
  afterEach(() => { spoil = undefined; });

  const outages: Array<[string, () => Response]> = [
    ['answers 502 with an HTML page', () => new Response('<h1>Bad gateway</h1>', { status: 502, headers: { 'content-type': 'text/html' } })],
    ['answers 200 with HTML (a proxy\'s error page)', () => new Response('<h1>maintenance</h1>', { status: 200, headers: { 'content-type': 'text/html' } })],
  ];
  for (const [what, answer] of outages) {
    it(`a userinfo endpoint that ${what} is a 503 page (try again), not a 400, and no session`, async () => {
      spoil = (url) => (isUserinfo(url) ? answer() : undefined);
      const r = await env.login('alice');
      assert.equal(r.status, 503, `${r.status}: ${r.last.body.slice(0, 200)}`);
      assert.match(String(r.last.headers['content-type']), /text\/html/);
      assert.equal(r.sessionCookie, undefined);
    });
  }

  it('a token endpoint answer over 1 MiB is a 503 (the IdP is not answering as one), not a 400 blaming the sign-in', async () => {
    spoil = (url) => {
      if (new URL(url).pathname !== '/token') return undefined;
      return new Response(JSON.stringify({ padding: 'x'.repeat(2 * 1024 * 1024) }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const r = await env.login('alice');
    assert.equal(r.status, 503, `${r.status}: ${r.last.body.slice(0, 200)}`);
    assert.equal(r.sessionCookie, undefined);
  });

  it('an IdP answer over 1 MiB (userinfo) is refused: no session holding it', async () => {
    spoil = (url) => {
      if (!isUserinfo(url)) return undefined;
      const body = JSON.stringify({ sub: 'alice', name: 'Alice', padding: 'x'.repeat(4 * 1024 * 1024) });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const r = await env.login('alice');
    assert.equal(r.status, 503, `${r.status}: ${r.last.body.slice(0, 200)}`);
    assert.equal(r.sessionCookie, undefined, 'no session with a 4 MiB claim in it');
  });
});

describe('errorSummary: what a log line keeps of an IdP error', function () {
  it('keeps the error and a plain error_description, without any run that could be a token the IdP quoted back', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const err = new oidc.ResponseBodyError('server responded with an error', {
      cause: { error: 'invalid_grant', error_description: `refresh token ${token} is unknown; redirect_uri http://localhost:8080/auth/callback` },
      response: new Response(null, { status: 400 }),
    });
    const s = errorSummary(err);
    assert.equal(s['error'], 'invalid_grant');
    assert.equal(s['status'], 400);
    const d = String(s['error_description']);
    for (const part of token.split('.')) assert.ok(!d.includes(part.slice(0, 16)), d);
    assert.match(d, /^refresh token .* is unknown; redirect_uri http:\/\/localhost:8080\/auth\/callback$/);
    // Not plain short text: left out.
    const long = new oidc.ResponseBodyError('x', { cause: { error: 'invalid_request', error_description: 'a'.repeat(400) }, response: new Response(null, { status: 400 }) });
    assert.equal(errorSummary(long)['error_description'], undefined);
  });

  it('leaves out an error_description that quotes a configured client secret, however it was sent', () => {
    // A secret people chose: punctuation, no long run of token characters for the shape filter.
    const secret = 'Sup3r.S3cret/Value!2024#corp';
    new IdpClient(testIdpConfig('corp', 'https://idp.example.test', { clientSecret: secret, clientAuth: 'client_secret_post' }), { log: silentLogger });
    const form = new URLSearchParams({ client_id: 'goldpath', client_secret: secret }).toString();
    const strict = encodeURIComponent(secret).replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const basic = Buffer.from(`goldpath:${strict}`).toString('base64');
    const quoting = [
      `client authentication failed: secret ${secret} does not match`,
      `got grant_type=refresh_token&${form}`,
      `got client_secret=${strict}`,
      `auth Basic ${basic}`,
      // As an IdP may quote it back: JSON-escaped, HTML-escaped, percent-encoded twice, cut short.
      `secret ${JSON.stringify(secret).slice(1, -1).replace(/\//g, '\\/')} refused`,
      `secret ${secret.replace(/\//g, '&#x2F;').replace(/#/g, '&#35;')} refused`,
      `got client_secret=${encodeURIComponent(encodeURIComponent(secret))}`,
      `secret starting ${secret.slice(0, 12)}... does not match`,
    ];
    for (const d of quoting) {
      const err = new oidc.ResponseBodyError('x', { cause: { error: 'invalid_client', error_description: d }, response: new Response(null, { status: 401 }) });
      const s = errorSummary(err);
      assert.equal(s['error'], 'invalid_client');
      assert.equal(s['error_description'], '[left out: it quotes the client secret]', d);
    }
    // Text that does not quote it is kept.
    const plain = new oidc.ResponseBodyError('x', { cause: { error: 'invalid_client', error_description: 'client authentication failed' }, response: new Response(null, { status: 401 }) });
    assert.equal(errorSummary(plain)['error_description'], 'client authentication failed');
  });
});
