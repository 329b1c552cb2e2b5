// A reload (SIGHUP: BffApp.reload) reaches every BFF endpoint, not only /readyz and the token
// provider: handlers read the IdPs and config per request. Real dev IdPs, real redis-server.
import assert from 'node:assert/strict';
import { startIdpBff, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import type { GoldpathConfig } from '../../src/config/types.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';

describe('BFF reload', function () {
  this.timeout(30_000);
  let env: IdpBff;
  beforeEach(async () => {
    // `other` is registered at both addresses it can have: /auth/callback/other, and
    // /auth/callback once it becomes the default (callback-path.ts).
    env = await startIdpBff({ idps: [{ name: 'dev' }, { name: 'other', redirectPaths: ['/auth/callback/other', '/auth/callback'] }] });
  });
  afterEach(() => env?.close());

  function without(name: string): GoldpathConfig {
    const idps = { ...env.config.idps.idps };
    delete (idps as Record<string, unknown>)[name];
    return { ...env.config, idps: { default: 'dev', idps } };
  }

  it('an IdP removed from idps.yaml can no longer start or finish a login', async () => {
    // A login started at `other` before the reload, its callback after.
    const started = await env.login('alice', { idp: 'other', stopBefore: (u) => u.pathname.startsWith('/auth/callback') });
    env.bff.reload(without('other'));
    const login = await httpCall(`${env.url}/auth/login?idp=other`);
    assert.equal(login.status, 400);
    assert.match(login.body, /unknown IdP/);
    const last = started.hops[started.hops.length - 1]!;
    const callback = await httpCall(last.location!, { jar: started.jar, headers: { accept: 'text/html' } });
    assert.equal(callback.status, 400);
    assert.match(callback.body, /no longer configured/);
    assert.equal(callback.headers['set-cookie']?.some((c) => c.startsWith('goldpath=') && !c.startsWith('goldpath=;')) ?? false, false);
  });

  it('a reload while an IdP is away keeps the metadata it had discovered: /readyz stays 200', async () => {
    assert.equal((await httpCall(`${env.url}/readyz`)).status, 200, 'metadata loaded');
    await env.idps['dev']!.close();
    env.bff.reload({ ...env.config });
    const ready = await httpCall(`${env.url}/readyz`);
    assert.equal(ready.status, 200, ready.body);
    // A reload naming another issuer for it starts afresh (nothing to fall back on).
    const idps = { ...env.config.idps.idps, dev: { ...env.config.idps.idps['dev']!, issuer: 'http://127.0.0.1:1' } };
    env.bff.reload({ ...env.config, idps: { default: 'dev', idps } });
    assert.equal((await httpCall(`${env.url}/readyz`)).status, 503);
  });

  it('two reloads in quick succession while the IdP hangs keep the metadata discovered before them: /readyz stays 200', async () => {
    // An IdP that takes connections and never answers (a host gone, packets dropped): each
    // discovery waits for its timeout. A second SIGHUP comes while the first reload's still waits.
    let hang = false;
    const fetch: FetchLike = (url, init) => hang
      ? new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(init.signal!.reason)))
      : globalThis.fetch(url, init as RequestInit);
    const e = await startIdpBff({ fetch });
    try {
      assert.equal((await httpCall(`${e.url}/readyz`)).status, 200, 'metadata loaded');
      hang = true;
      e.bff.reload({ ...e.config });
      e.bff.reload({ ...e.config });
      const ready = await httpCall(`${e.url}/readyz`);
      assert.equal(ready.status, 200, ready.body);
    } finally {
      await e.close();
    }
  });

  it('a new default IdP takes the logins without ?idp=, at /auth/callback', async () => {
    env.bff.reload({ ...env.config, idps: { default: 'other', idps: env.config.idps.idps } });
    const res = await httpCall(`${env.url}/auth/login`);
    assert.equal(res.status, 302);
    assert.ok(res.headers.location!.startsWith(`${env.idps['other']!.issuer}/`), res.headers.location);
    const r = await env.login('olga');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    assert.equal(new URL(r.callbackUrl!).pathname, '/auth/callback');
    assert.equal((await env.store.get(r.sessionCookie!))?.idp, 'other');
  });

  it('logout trusts an origin the reload added to routes.yaml', async () => {
    const r = await env.login('alice');
    const { csrf_token: csrf } = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body) as { csrf_token: string };
    const origin = 'http://spa.test:5173';
    const before = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: r.jar, headers: { origin, 'x-csrf-token': csrf } });
    assert.equal(before.status, 403);
    env.bff.reload({ ...env.config, routes: { ...env.config.routes, cors: { allowedOrigins: [origin] } } });
    const after = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: r.jar, headers: { origin, 'x-csrf-token': csrf } });
    assert.equal(after.status, 200);
  });
});
