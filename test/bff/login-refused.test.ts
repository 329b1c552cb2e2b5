// The IdP refuses the pushed authorization request: the redirect URI registered there is not the
// one goldpath sends (README "Swap the IdP": a second IdP's is /auth/callback/<name>, and a dev IdP
// started without GOLDPATH_PUBLIC_URL registers http://localhost:8080's). The user gets a 503 page;
// the operator's log line is the only place that tells what is wrong. It said `invalid_request,
// 400` and nothing else: it must carry the IdP's own description, the redirect URI that was sent,
// and what to check.
import assert from 'node:assert/strict';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { captureLogger } from '../pdp/log-capture.ts';

describe('BFF login refused by the IdP (real dev IdP + redis)', function () {
  this.timeout(20_000);
  let env: IdpBff;
  const { log, lines, text } = captureLogger();

  before(async () => {
    env = await startIdpBff({ idps: [{ name: 'dev', redirectPaths: ['/somewhere/else'] }], log });
  });
  after(() => env?.close());

  it('is a 503 for the user and a log line that says what the IdP objected to and what to check', async () => {
    const r = await fetch(`${env.url}/auth/login?return_to=/`, { redirect: 'manual', headers: { accept: 'application/json' } });
    assert.equal(r.status, 503);
    const line = lines().find((l) => l['msg'] === undefined ? false : /refused the authorization request/.test(String(l['msg'])));
    assert.ok(line, text());
    assert.equal(line['level'], 'error');
    const err = line['err'] as Record<string, unknown>;
    assert.equal(err['error'], 'invalid_request');
    assert.match(String(err['error_description']), /redirect_uri/);
    assert.equal(line['redirect_uri'], `${env.url}/auth/callback`);
    assert.match(String(line['msg']), /register/);
    assert.match(String(line['msg']), /client/);
    assert.doesNotMatch(text(), /goldpath-test-client-secret/);
  });
});
