// Configurations `goldpath check` used to pass although they cannot work: a route only letter case
// sets apart (always 400), issuers discovery can never confirm, audiences without the refresh token
// their tokens come from; and environment values that start a process that cannot work as meant.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { ConfigError } from '../../src/errors.ts';
import { loadSettings } from '../../src/config/env.ts';
import { unknownVariableWarnings } from '../../src/config/env-names.ts';
import { validateConfig } from '../../src/config/load.ts';
import { BASE_IDPS, BASE_ROUTES, cleanupConfigDirs, configDir, problemsFor, where } from './helpers.ts';

const KEY1 = Buffer.alloc(32, 1).toString('base64url');
const KEY2 = Buffer.alloc(32, 2).toString('base64url');

function envProblems(env: Record<string, string>): string[] {
  try {
    loadSettings(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.key}: ${p.message}`);
  }
  return [];
}

describe('config: what check used to pass', () => {
  after(cleanupConfigDirs);

  it('refuses a route prefix that differs from another only in letter case, at the later one', async () => {
    const routes = `${BASE_ROUTES}  - name: shouting\n    prefix: /api/Orders\n    auth: public\n`;
    const problems = await problemsFor({ routes });
    assert.deepEqual(where(problems), [['routes.yaml', 8, 'routes[2].prefix']], JSON.stringify(problems));
    assert.match(problems[0]!.message,
      /^"\/api\/Orders" differs from the prefix of the route at line 3 only in letter case; the sidecar answers 400 to every request under it/);
    // Nested prefixes that differ in case stay legal: each matches its own spelling.
    assert.deepEqual(await problemsFor({ routes: `${BASE_ROUTES}  - name: sub\n    prefix: /api/Orders/archive\n` }), []);
  });

  for (const [issuer, message] of [
    ['https://*.example.com', /an issuer must be an exact URL; wildcards are not allowed/],
    ['https://idp.example.com:0', /an issuer has an invalid port \(expected 1-65535/],
    ['https://idp.example.com/%2e%2e/', /an issuer has a dot segment \(\. or \.\., maybe percent-encoded as %2e\)/],
    ['https://idp.example.com/realms/./main', /an issuer has a dot segment/],
    ['"https://idp.example.com/ ../"', /an issuer has a space or backslash in its path/],
    ['https://idp_.example.com', /an issuer has an invalid host name/],
  ] as const) {
    it(`refuses the issuer ${issuer}`, async () => {
      const problems = await problemsFor({ idps: BASE_IDPS.replace('https://idp.example.com', issuer) });
      assert.deepEqual(where(problems), [['idps.yaml', 4, 'idps.dev.issuer']], JSON.stringify(problems));
      assert.match(problems[0]!.message, message);
      assert.match(problems[0]!.message, /discovery compares it exactly/);
    });
  }

  it('accepts issuers with a path, a port, a trailing slash or dots inside a segment, but no dot segment after them', async () => {
    for (const issuer of ['https://login.example.com/realms/corp', 'https://idp.example.com:8443/', 'https://login.example.com/tenant/v2.0']) {
      assert.deepEqual(await problemsFor({ idps: BASE_IDPS.replace('https://idp.example.com', issuer) }), [], issuer);
      const dotted = `${issuer.replace(/\/$/, '')}/..`;
      assert.deepEqual(where(await problemsFor({ idps: BASE_IDPS.replace('https://idp.example.com', dotted) })), [['idps.yaml', 4, 'idps.dev.issuer']], dotted);
    }
  });

  it('warns of audiences when the scopes leave out offline_access (their tokens come from the refresh token; Keycloak issues one anyway)', async () => {
    const idps = `${BASE_IDPS}    scopes: [openid, profile]\n    audiences:\n      orders: { resource: https://api.example.com/orders }\n`;
    const { problems, warnings } = await validateConfig(await configDir({ idps }), {});
    assert.deepEqual(problems, []);
    assert.deepEqual(where(warnings), [['idps.yaml', 7, 'idps.dev.scopes']], JSON.stringify(warnings));
    assert.match(warnings[0]!.message, /^lacks offline_access, which audiences need unless the IdP issues refresh tokens without it/);
    // Without audiences, a login without offline_access is fine (the session ends with its token).
    assert.deepEqual(await problemsFor({ idps: `${BASE_IDPS}    scopes: [openid, profile]\n` }), []);
  });

  it('warns (without failing, without the value) of an unquoted client secret a " #" cut short', async () => {
    const secret = 'Xyz #secret9-tail';
    const { problems, warnings } = await validateConfig(await configDir({ idps: BASE_IDPS.replace('client_secret: secret', `client_secret: ${secret}`) }), {});
    assert.deepEqual(problems, []);
    assert.deepEqual(where(warnings), [['idps.yaml', 6, 'idps.dev.client_secret']]);
    assert.match(warnings[0]!.message, /YAML ends an unquoted value at " #"/);
    assert.ok(!warnings[0]!.message.includes('secret9') && !warnings[0]!.message.includes('Xyz'), warnings[0]!.message);
    const quiet = async (line: string) => (await validateConfig(await configDir({ idps: BASE_IDPS.replace('client_secret: secret', line) }), { S: 'x' })).warnings;
    assert.deepEqual(await quiet(`client_secret: '${secret}' # quoted`), []);
    assert.deepEqual(await quiet('client_secret: ${S} # from the environment'), []);
  });
});

describe('config: environment values that cannot work as meant', () => {
  it('refuses a session key listed twice, naming both places, never the key', () => {
    const problems = envProblems({ GOLDPATH_SESSION_KEYS: `${KEY1},${KEY2},${KEY1}` });
    assert.deepEqual(problems, ['GOLDPATH_SESSION_KEYS: key #3 is the same as key #1; list each key once']);
  });

  it('refuses the all-zero key (a placeholder)', () => {
    const problems = envProblems({ GOLDPATH_SESSION_KEYS: Buffer.alloc(32).toString('base64url') });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^GOLDPATH_SESSION_KEYS: the key is all zero bytes, a placeholder, not a random key; generate one with/);
  });

  it('refuses an idle timeout under 60 s, and takes 60 s', () => {
    for (const idle of ['1ms', '59s', '59999ms']) {
      const problems = envProblems({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: idle });
      assert.equal(problems.length, 1, idle);
      assert.match(problems[0]!, /^GOLDPATH_SESSION_IDLE: is shorter than 60s, the least accepted/);
    }
    assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_SESSION_IDLE: '60s' }).sessionIdleMs, 60_000);
  });

  it('takes HOST=[::1] (a bracketed IPv6 literal) as ::1', () => {
    assert.equal(loadSettings({ GOLDPATH_SESSION_KEYS: KEY1, HOST: '[::1]' }).host, '::1');
  });

  it('says "invalid port" of GOLDPATH_PUBLIC_URL with port 65536, as of port 0', () => {
    for (const port of ['0', '65536', '99999']) {
      const problems = envProblems({ GOLDPATH_SESSION_KEYS: KEY1, GOLDPATH_PUBLIC_URL: `https://app.example.com:${port}` });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /^GOLDPATH_PUBLIC_URL: has an invalid port \(expected 1-65535/, port);
    }
  });

  it('names GOLDPATH_* variables nothing reads, and the known one a typo is closest to', () => {
    const warnings = unknownVariableWarnings({
      GOLDPATH_SESION_KEYS: 'secret-value', GOLDPATH_PUBLICURL: 'https://app.example.com', GOLDPATH_CONFIGDIR: '/x',
      GOLDPATH_SOMETHING_ELSE_ENTIRELY: '1', GOLDPATH_CLIENT_SECRET: 's', GOLDPATH_SESSION_KEYS: KEY1, OTHER: '1',
    }, new Set(['GOLDPATH_CLIENT_SECRET']));
    assert.deepEqual(warnings, [
      'GOLDPATH_CONFIGDIR is set, but goldpath reads no such variable (did you mean GOLDPATH_CONFIG_DIR?); it is ignored',
      'GOLDPATH_PUBLICURL is set, but goldpath reads no such variable (did you mean GOLDPATH_PUBLIC_URL?); it is ignored',
      'GOLDPATH_SESION_KEYS is set, but goldpath reads no such variable (did you mean GOLDPATH_SESSION_KEYS?); it is ignored',
      'GOLDPATH_SOMETHING_ELSE_ENTIRELY is set, but goldpath reads no such variable; it is ignored',
    ]);
  });
});
