// A reload (SIGHUP: BffApp.reload) reaches every BFF endpoint, not only /readyz and the token
// provider: handlers read the IdPs and config per request. Real dev IdPs, real redis-server.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capturingLogger, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import type { GoldpathConfig } from '../../src/config/types.ts';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { ConfigError } from '../../src/errors.ts';
import { freePort } from '../helpers/redis.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

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
    await env.bff.reload(without('other'));
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
    await env.bff.reload({ ...env.config });
    const ready = await httpCall(`${env.url}/readyz`);
    assert.equal(ready.status, 200, ready.body);
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
      await Promise.all([e.bff.reload({ ...e.config }), e.bff.reload({ ...e.config })]);
      const ready = await httpCall(`${e.url}/readyz`);
      assert.equal(ready.status, 200, ready.body);
    } finally {
      await e.close();
    }
  });

  it('a new default IdP takes the logins without ?idp=, at /auth/callback', async () => {
    await env.bff.reload({ ...env.config, idps: { default: 'other', idps: env.config.idps.idps } });
    const res = await httpCall(`${env.url}/auth/login`);
    assert.equal(res.status, 302);
    assert.ok(res.headers.location!.startsWith(`${env.idps['other']!.issuer}/`), res.headers.location);
    const r = await env.login('olga');
    assert.equal(r.status, 302, r.last.body.slice(0, 300));
    assert.equal(new URL(r.callbackUrl!).pathname, '/auth/callback');
    assert.equal((await env.store.get(r.sessionCookie!))?.idp, 'other');
  });

  it('a reload that turns on dangerously_trust_unverified_email says so loudly, as startup does', async () => {
    const captured = capturingLogger('info');
    const e = await startIdpBff({ log: captured.log });
    try {
      assert.ok(!captured.lines.some((l) => l.includes('dangerously_trust_unverified_email')));
      const dev = { ...e.config.idps.idps['dev']!, dangerouslyTrustUnverifiedEmail: true };
      await e.bff.reload({ ...e.config, idps: { default: 'dev', idps: { dev } } });
      assert.ok(captured.lines.some((l) => l.includes('dangerously_trust_unverified_email') && l.includes('"idp":"dev"')), 'a warning at the reload');
    } finally {
      await e.close();
    }
  });

  it('logout trusts an origin the reload added to routes.yaml', async () => {
    const r = await env.login('alice');
    const { csrf_token: csrf } = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: r.jar })).body) as { csrf_token: string };
    const origin = 'http://spa.test:5173';
    const before = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: r.jar, headers: { origin, 'x-csrf-token': csrf } });
    assert.equal(before.status, 403);
    await env.bff.reload({ ...env.config, routes: { ...env.config.routes, cors: { allowedOrigins: [origin] } } });
    const after = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: r.jar, headers: { origin, 'x-csrf-token': csrf } });
    assert.equal(after.status, 200);
  });

  describe('an issuer the reload adds', () => {
    /** env.config with `dev` given `issuer`, or with an IdP `corp` at `issuer` beside the others. */
    function devAt(issuer: string): GoldpathConfig {
      return { ...env.config, idps: { default: 'dev', idps: { ...env.config.idps.idps, dev: { ...env.config.idps.idps['dev']!, issuer } } } };
    }
    function corpAt(issuer: string): GoldpathConfig {
      const corp = { ...env.config.idps.idps['dev']!, name: 'corp', issuer };
      return { ...env.config, idps: { default: 'dev', idps: { ...env.config.idps.idps, corp } } };
    }

    it('that cannot be discovered rejects the reload, naming the IdP and the cause: the old IdPs keep signing in, /readyz stays 200', async () => {
      const closed = `http://127.0.0.1:${await freePort()}`;
      for (const [name, next] of [['corp', corpAt(closed)], ['dev', devAt(closed)]] as const) {
        await assert.rejects(async () => env.bff.reload(next), (err: Error) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, new RegExp(`idps\\.yaml: idps\\.${name}\\.issuer: ${closed} cannot be discovered \\(.*ECONNREFUSED`), err.message);
          assert.ok(!err.message.includes(TEST_CLIENT_SECRET), 'no client secret');
          return true;
        });
        assert.equal(env.bff.idps.get('dev')!.idp.issuer, env.idps['dev']!.issuer, 'the old IdPs serve');
        assert.equal(env.bff.idps.get('corp'), undefined);
        const ready = await httpCall(`${env.url}/readyz`);
        assert.equal(ready.status, 200, ready.body);
        const r = await env.login('alice');
        assert.equal(r.status, 302, r.last.body.slice(0, 300));
      }
    });

    it('that never answers rejects the reload within the discovery timeout', async () => {
      // Takes connections and never answers (a host gone, packets dropped).
      const hanging = await TcpProxy.start(Number(new URL(env.idp.issuer).port));
      hanging.stall();
      try {
        const t0 = Date.now();
        await assert.rejects(async () => env.bff.reload(devAt(`http://127.0.0.1:${hanging.port}`)), /idps\.dev\.issuer: .*operation timed out/);
        assert.ok(Date.now() - t0 < 8_000, `bounded: ${Date.now() - t0} ms`);
      } finally {
        await hanging.close();
      }
      assert.equal((await env.login('alice')).status, 302, 'dev at its old issuer');
    });

    it('whose key file is not JSON (rewritten since it was vetted): the rejection and the log name the file, never what it holds', async () => {
      // Validation read the file before; the IdP client reads it again (client-auth.ts), and a
      // rotation half done, or the wrong file copied in, may leave a bare secret there meanwhile.
      const dir = mkdtempSync(join(tmpdir(), 'goldpath-reload-key-'));
      const keyFile = join(dir, 'client-key.json');
      writeFileSync(keyFile, 'hunter2xyz');
      const captured = capturingLogger('info');
      const e = await startIdpBff({ log: captured.log });
      try {
        const corp = { ...e.config.idps.idps['dev']!, name: 'corp', issuer: `http://127.0.0.1:${await freePort()}`, clientAuth: 'private_key_jwt' as const, clientSecret: undefined, privateKey: keyFile };
        await assert.rejects(async () => e.bff.reload({ ...e.config, idps: { default: 'dev', idps: { ...e.config.idps.idps, corp } } }), (err: Error) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, /idps\.yaml: idps\.corp\.issuer: /, err.message);
          assert.ok(!err.message.includes('hunter2'), `quotes what the file holds: ${err.message}`);
          assert.ok(err.message.includes(keyFile), `names the file: ${err.message}`);
          return true;
        });
        assert.ok(!captured.lines.some((l) => l.includes('hunter2')), `a log line quotes what the file holds:\n${captured.lines.join('\n')}`);
      } finally {
        await e.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('that answers is discovered during the reload, which is accepted: its sign-ins work at once', async () => {
      await env.bff.reload(without('other'));
      await env.bff.reload(env.config);
      assert.equal(env.bff.idps.get('other')!.ready, true, 'discovered by the time the reload is done');
      const r = await env.login('olga', { idp: 'other' });
      assert.equal(r.status, 302, r.last.body.slice(0, 300));
    });
  });

  it('an IdP that is away and unchanged does not block a reload of routes.yaml, and is asked nothing', async () => {
    const asked: string[] = [];
    const fetch: FetchLike = (url, init) => {
      asked.push(String(url));
      return globalThis.fetch(url, init as RequestInit);
    };
    const e = await startIdpBff({ fetch, idps: [{ name: 'dev' }, { name: 'other' }] });
    try {
      assert.equal((await httpCall(`${e.url}/readyz`)).status, 200, 'metadata loaded');
      await e.idps['other']!.close();
      const [before, old] = [asked.length, e.bff.idps];
      await e.bff.reload({ ...e.config, routes: { ...e.config.routes, cors: { allowedOrigins: ['http://spa.test:5173'] } } });
      assert.notEqual(e.bff.idps, old, 'reloaded');
      const ready = await httpCall(`${e.url}/readyz`);
      assert.equal(ready.status, 200, ready.body);
      assert.deepEqual(asked.slice(before), [], 'no request to any IdP');
    } finally {
      await e.close();
    }
  });
});
