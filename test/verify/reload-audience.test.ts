// A SIGHUP that changes what an audience of idps.yaml is (its `resource`, RFC 8707, or its
// `scopes`) under the same name: the sidecar must not go on handing the upstream the tokens minted
// for the old definition until they expire. Real dev IdP, real BFF sign-in, real redis-server,
// the sidecar's own token provider; the route keeps its audience name across the reload.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { silentLogger } from '../../src/log.ts';
import { startVerify, type VerifyProcess } from '../../src/verify/server.ts';
import { devIdpsYaml, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { TEST_KEYS } from '../helpers/sessions.ts';
import { send } from '../helpers/verify-app.ts';

const OLD = 'https://api.example.test/reports';
const NEW = 'https://reports-v2.example.test/';

/** idps.yaml with the `reports` audience at `resource`, with `scopes`. */
const idpsYaml = devIdpsYaml;

describe('verify reload: an audience given another resource or scopes', function () {
  this.timeout(30_000);
  let env: IdpBff;
  let dir: string;
  let sidecar: VerifyProcess | undefined;

  before(async () => {
    // The dev IdP knows both resources (and both scopes of the old one).
    env = await startIdpBff({
      settings: { sessionKeys: TEST_KEYS.map((k) => new Uint8Array(Buffer.from(k, 'base64url'))) },
      idps: [{ config: { audiences: { reports: { resource: OLD, scopes: ['reports.read', 'reports.write'] }, v2: { resource: NEW, scopes: ['reports.read'] } } } }],
    });
  });
  after(() => env?.close());
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'goldpath-reload-audience-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
  });
  afterEach(async () => {
    await sidecar?.close();
    sidecar = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(idps: string): Promise<VerifyProcess> {
    writeFileSync(join(dir, 'idps.yaml'), idps);
    return startVerify({
      env: { GOLDPATH_CONFIG_DIR: dir, REDIS_URL: env.redis.url, GOLDPATH_PUBLIC_URL: env.url, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET },
      port: 0, host: '127.0.0.1', log: silentLogger,
    });
  }

  /** The access token the upstream of /api/reports receives, decoded. */
  async function reportsToken(p: VerifyProcess, cookie: string): Promise<{ aud: unknown; scope: unknown; raw: string }> {
    const res = await send(p.port, '/auth/verify', {
      'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/reports', 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http', Cookie: cookie,
    });
    assert.equal(res.status, 200, res.body);
    const raw = String(res.headers['authorization']).replace(/^Bearer /, '');
    const claims = decodeJwt(raw);
    return { aud: claims.aud, scope: claims['scope'], raw };
  }

  async function signIn(user: string): Promise<string> {
    const r = await env.login(user);
    assert.equal(r.status, 302);
    return `goldpath=${r.sessionCookie}`;
  }

  it('a new resource: the next request carries a token for it, not the one minted for the old resource', async () => {
    const p = sidecar = await start(idpsYaml(env.idp.issuer, OLD, 'reports.read'));
    const cookie = await signIn('aud-resource');
    const before = await reportsToken(p, cookie);
    assert.equal(before.aud, OLD);
    // Asked again: now answered from what the sidecar keeps with the cached session.
    assert.equal((await reportsToken(p, cookie)).raw, before.raw);
    writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer, NEW, 'reports.read'));
    assert.equal(await p.reload(), true);
    const after = await reportsToken(p, cookie);
    assert.equal(after.aud, NEW, 'the upstream of the reloaded audience gets a token for its new resource');
  });

  it('fewer scopes: the next request carries a token with the scopes idps.yaml now grants the route, not the broader old one', async () => {
    const p = sidecar = await start(idpsYaml(env.idp.issuer, OLD, 'reports.read, reports.write'));
    const cookie = await signIn('aud-scopes');
    const before = await reportsToken(p, cookie);
    assert.match(String(before.scope), /reports\.write/);
    assert.equal((await reportsToken(p, cookie)).raw, before.raw);
    writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer, OLD, 'reports.read'));
    assert.equal(await p.reload(), true);
    const after = await reportsToken(p, cookie);
    assert.doesNotMatch(String(after.scope), /reports\.write/, 'a scope taken away by the reload is not handed on');
  });

  it('two sidecars whose configurations differ (a rollout in progress) do not refresh in turn at every request', async () => {
    const a = sidecar = await start(idpsYaml(env.idp.issuer, OLD, 'reports.read'));
    writeFileSync(join(dir, 'idps.yaml'), idpsYaml(env.idp.issuer, NEW, 'reports.read'));
    const b = await startVerify({
      env: { GOLDPATH_CONFIG_DIR: dir, REDIS_URL: env.redis.url, GOLDPATH_PUBLIC_URL: env.url, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET },
      port: 0, host: '127.0.0.1', log: silentLogger,
    });
    try {
      const cookie = await signIn('aud-rollout');
      const seen = new Set<string>();
      // As Traefik would send one session's requests to the replicas in turn.
      for (let i = 0; i < 8; i++) seen.add((await reportsToken(i % 2 === 0 ? a : b, cookie)).raw);
      // The session's token minted before B's configuration was loaded is refreshed there once, for
      // B's grant; from then on both serve that one.
      assert.ok(seen.size <= 2, `${seen.size} tokens for 8 requests: the two sidecars refreshed in turn`);
    } finally {
      await b.close();
    }
  });

  it('a token stored without a grant (by a goldpath before grants were kept) is served until it expires', async () => {
    const p = sidecar = await start(idpsYaml(env.idp.issuer, NEW, 'reports.read'));
    const cookie = await signIn('aud-legacy');
    const s = (await env.store.get(cookie.slice('goldpath='.length)))!;
    const legacy = { value: 'legacy-token', type: 'Bearer' as const, expiresAt: Date.now() + 10 * 60_000, scope: 'reports.read' };
    assert.ok(await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { ...s.secrets.tokens, reports: legacy } }));
    const res = await send(p.port, '/auth/verify', {
      'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/reports', 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http', Cookie: cookie,
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['authorization'], 'Bearer legacy-token');
  });

  it('an unchanged audience keeps its token across a reload (no needless refresh)', async () => {
    const p = sidecar = await start(idpsYaml(env.idp.issuer, OLD, 'reports.read'));
    const cookie = await signIn('aud-same');
    const before = await reportsToken(p, cookie);
    assert.equal(await p.reload(), true);
    assert.equal((await reportsToken(p, cookie)).raw, before.raw);
  });
});
