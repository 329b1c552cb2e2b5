// idps.yaml settings against real oidc-provider IdPs set up as other products are: an IdP without
// DPoP, an issuer with a path spelled with(out) a trailing slash, EdDSA client assertions.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { capturingLogger, startIdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import { RedisServer } from '../helpers/redis.ts';

describe('BFF against IdPs set up otherwise', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.stop());

  describe('dpop: true at an IdP without DPoP (it ignores the proof and issues bearer tokens)', () => {
    for (const userinfo of [true, false]) {
      it(`no session with a bearer token; a 503 and an error line naming dpop (userinfo endpoint: ${userinfo})`, async () => {
        const cap = capturingLogger();
        const env = await startIdpBff({
          redis, log: cap.log,
          idps: [{ config: { dpop: true }, devIdp: { configure: (c) => { c['features'].dPoP = { enabled: false }; c['features'].userinfo = { enabled: userinfo }; } } }],
        });
        try {
          const r = await env.login('alice');
          assert.equal(r.status, 503, r.last.body.slice(0, 300));
          assert.equal(r.sessionCookie, undefined, 'no session holding a token that is not DPoP-bound');
          const errors = cap.lines.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'error');
          assert.ok(errors.some((l) => /dpop: true/.test(l.msg) && /not DPoP-bound/.test(l.msg)), JSON.stringify(errors));
        } finally {
          await env.close();
        }
      });
    }
  });

  describe('an issuer with a path (https://host/realms/corp) and idps.yaml spelling it with another trailing slash', () => {
    for (const [said, written] of [['/realms/corp', '/realms/corp/'], ['/realms/corp/', '/realms/corp']] as const) {
      it(`IdP says ${said}, idps.yaml ${written}: logs in, and /readyz is ready`, async () => {
        // The dev IdP behind a front that serves it under /realms/corp, as Keycloak serves a realm.
        const front: Server = createServer();
        await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
        const origin = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
        const env = await startIdpBff({ redis, idps: [{ devIdp: { issuer: `${origin}${said}` } }] });
        const handler = env.idp.provider.callback();
        front.on('request', (req, res) => {
          req.url = req.url!.replace(/^\/realms\/corp/, '') || '/';
          void handler(req, res);
        });
        const config = structuredClone(env.config);
        (config.idps.idps['dev'] as { issuer: string }).issuer = `${origin}${written}`;
        await env.bff.reload(config);
        try {
          const r = await env.login('alice');
          assert.equal(r.status, 302, r.last.body.slice(0, 300));
          assert.ok(r.sessionCookie);
          assert.equal((await httpCall(`${env.url}/readyz`)).status, 200);
        } finally {
          await env.close();
          front.closeAllConnections();
          front.close();
        }
      });
    }
  });

  it('private_key_jwt with an Ed25519 key ("alg": "EdDSA") at an IdP that accepts EdDSA client assertions (as Keycloak)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-eddsa-'));
    try {
      const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: true });
      const keyFile = join(dir, 'client.jwk.json');
      writeFileSync(keyFile, JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'ed-1', alg: 'EdDSA' }));
      const pub = { ...(await exportJWK(publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' };
      const env = await startIdpBff({
        redis,
        idps: [{
          config: { clientAuth: 'private_key_jwt', clientSecret: undefined, privateKey: keyFile },
          client: { jwks: { keys: [pub] } },
          devIdp: { configure: (c) => { c['enabledJWA'] = { clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'] }; } },
        }],
      });
      try {
        const r = await env.login('bob');
        assert.equal(r.status, 302, r.last.body.slice(0, 300));
        assert.ok(r.sessionCookie);
      } finally {
        await env.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
