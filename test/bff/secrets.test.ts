// Nothing secret leaks: no token, code, state, cookie value or secret in any log line of a full
// login + refresh + logout (BFF and dev IdP logs, captured at debug level), and no raw cookie value
// or token in a Redis dump, during or after the login.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { decodeJwt } from 'jose';
import { capturingLogger, startIdpBff, TEST_CLIENT_SECRET, type IdpBff } from '../helpers/idp-bff.ts';
import { httpCall } from '../helpers/login.ts';
import type { RedisServer } from '../helpers/redis.ts';

async function redisDump(redis: RedisServer): Promise<string> {
  const c = redis.client();
  try {
    const out: string[] = [];
    for (const key of await c.keys('*')) {
      const type = await c.type(key);
      out.push(key);
      if (type === 'string') out.push(String(await c.get(key)));
      else if (type === 'hash') out.push(JSON.stringify(await c.hgetall(key)));
      else if (type === 'set') out.push(JSON.stringify(await c.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await c.zrange(key, '0', '-1')));
      else if (type === 'list') out.push(JSON.stringify(await c.lrange(key, '0', '-1')));
    }
    return out.join('\n');
  } finally {
    c.disconnect();
  }
}

describe('no secrets in logs or in Redis', function () {
  this.timeout(30_000);
  const captured = capturingLogger('debug');
  let env: IdpBff;

  before(async () => {
    env = await startIdpBff({
      log: captured.log, idpLog: captured.log,
      idps: [{ config: { dpop: true, par: 'never', audiences: { orders: { resource: 'https://api.example.test/orders', scopes: ['orders.read'] } } } }],
    });
  });
  after(() => env?.close());

  it('a full login, refresh, audience token and logout log nothing secret, and Redis holds nothing raw', async () => {
    // 1. Start the login and stop before the callback: the transaction is in Redis now.
    const started = await env.login('carol', { stopBefore: (u) => u.pathname === '/auth/callback' });
    const callbackUrl = new URL(started.hops.at(-1)!.location!);
    const code = callbackUrl.searchParams.get('code')!;
    const state = callbackUrl.searchParams.get('state')!;
    const txCookie = started.jar.get('goldpath_tx')!.value;
    const authorize = new URL(started.hops[0]!.location!);
    const challenge = authorize.searchParams.get('code_challenge')!;
    const midFlowDump = await redisDump(env.redis);

    // 2. Finish it like the browser would.
    const cb = await httpCall(callbackUrl, { jar: started.jar, headers: { accept: 'text/html' } });
    assert.equal(cb.status, 302, cb.body.slice(0, 200));
    const cookie = started.jar.get('goldpath')!.value;
    const s = (await env.store.get(cookie))!;
    const nonce = decodeJwt(s.secrets.idToken!)['nonce'] as string;
    const info = JSON.parse((await httpCall(`${env.url}/auth/session`, { jar: started.jar })).body);

    // 3. Refresh and an audience token, then dump Redis while logged in.
    const t = s.secrets.tokens['']!;
    await env.store.updateSecrets(s.id, { ...s.secrets, tokens: { '': { ...t, expiresAt: Date.now() - 1 } } });
    const fresh = (await env.bff.tokens.credentials((await env.store.getById(s.id))!, '', 'GET', 'https://api.example.test/'))!;
    const aud = (await env.bff.tokens.credentials((await env.store.getById(s.id))!, 'orders', 'GET', 'https://api.example.test/orders'))!;
    const s2 = (await env.store.getById(s.id))!;
    const loggedInDump = await redisDump(env.redis);

    // 4. Logout.
    const out = await httpCall(`${env.url}/auth/logout`, { method: 'POST', jar: started.jar, headers: { 'x-csrf-token': info.csrf_token, accept: 'application/json' } });
    assert.equal(out.status, 200);

    const secrets: Record<string, string> = {
      'session cookie': cookie,
      'tx cookie': txCookie,
      code, state, nonce,
      'PKCE challenge': challenge,
      'csrf token': info.csrf_token,
      'client secret': TEST_CLIENT_SECRET,
      'access token': t.value,
      'refreshed access token': fresh.authorization.slice(5),
      'audience token': aud.authorization.slice(5),
      'refresh token (login)': s.secrets.refreshToken!,
      'refresh token (rotated)': s2.secrets.refreshToken!,
      'id token': s.secrets.idToken!,
      'DPoP private key': String(s.secrets.dpopJwk!['d']),
      'session key': Buffer.from(env.settings.sessionKeys[0]!).toString('base64url'),
    };
    assert.ok(captured.lines.length > 10, 'logs were captured');
    assert.ok(captured.lines.some((l) => l.includes('"login succeeded"')));
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(value && value.length >= 16, `${name} is a real value`);
      const leak = captured.lines.find((l) => l.includes(value));
      assert.equal(leak, undefined, `${name} appears in a log line: ${leak?.slice(0, 200)}`);
    }
    for (const [name, dump, values] of [
      ['mid-flow', midFlowDump, ['tx cookie', 'state', 'nonce', 'PKCE challenge', 'client secret']],
      ['logged-in', loggedInDump, ['session cookie', 'access token', 'refreshed access token', 'audience token',
        'refresh token (login)', 'refresh token (rotated)', 'id token', 'csrf token', 'DPoP private key', 'client secret']],
    ] as const) {
      assert.ok(dump.length > 0, `${name} dump is not empty`);
      for (const v of values) assert.ok(!dump.includes(secrets[v]!), `${name} Redis dump contains the ${v}`);
    }
    assert.ok(!loggedInDump.includes('carol@example.test'), 'user claims are encrypted too');
  });
});
