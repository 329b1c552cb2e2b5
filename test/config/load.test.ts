import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { checkConfig, formatProblems, loadConfig } from '../../src/config/index.ts';
import { loadSettingsAndConfig } from '../../src/config/load.ts';
import type { GoldpathConfig } from '../../src/config/types.ts';
import { substitute } from '../../src/config/env-substitution.ts';
import { BASE_IDPS, BASE_PDP, cleanupConfigDirs, configDir, FIXTURES, only, problemsFor, REPO, where } from './helpers.ts';

const VALID = path.join(FIXTURES, 'valid');
const BROKEN = path.join(FIXTURES, 'broken');
const VALID_ENV = { IDP_HOST: 'idp.example.com', MAIN_SECRET: 'main-secret-value' };

function isDeepFrozen(v: unknown, seen = new Set<unknown>()): boolean {
  if (v === null || typeof v !== 'object' || seen.has(v)) return true;
  seen.add(v);
  return Object.isFrozen(v) && Object.values(v).every((x) => isDeepFrozen(x, seen));
}

async function configError(dir: string, env: Record<string, string | undefined>): Promise<ConfigError> {
  try {
    await loadConfig(dir, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config: loadConfig', () => {
  after(cleanupConfigDirs);

  it('loads a valid folder into the expected deep-frozen object', async () => {
    const c = await loadConfig(VALID, VALID_ENV);
    const abs = (p: string) => path.join(VALID, p);
    const expected: GoldpathConfig = {
      routes: {
        routes: [
          { name: 'orders', prefix: '/api/orders', audience: 'orders', auth: 'session' },
          { name: 'orders-admin', prefix: '/api/orders/admin', audience: undefined, auth: 'session' },
          { name: 'docs', prefix: '/api/public/docs', audience: undefined, auth: 'public' },
        ],
        // Origins are normalised the way browsers send them.
        cors: { allowedOrigins: ['http://localhost:5173', 'https://app.example.com'] },
      },
      pdp: {
        policies: [abs('policies/app.polar'), abs('policies/extra.polar')],
        rules: [
          { methods: ['GET', 'HEAD'], pattern: '/api/orders/:id', segments: ['api', 'orders', ':id'], action: 'read', resource: { type: 'Order', id: ':id' }, line: 3 },
          { methods: '*', pattern: '/api/orders/admin/*', segments: ['api', 'orders', 'admin', '*'], action: 'admin', resource: { type: 'AdminArea', id: '42' }, line: 6 },
          { methods: ['POST'], pattern: '/api/orders', segments: ['api', 'orders'], action: 'create', resource: { type: 'OrderList', id: undefined }, line: 11 },
        ],
      },
      idps: {
        default: 'main',
        idps: {
          main: {
            name: 'main', issuer: 'https://idp.example.com/realms/main', clientId: 'goldpath', clientSecret: 'main-secret-value',
            clientAuth: 'client_secret_post', privateKey: undefined, mtls: undefined, scopes: ['openid', 'email', 'offline_access'], par: 'always',
            dpop: true, audiences: { orders: { resource: 'https://api.example.com/orders', scopes: ['orders.read', 'orders.write'] } },
            claims: { roles: 'realm_access.roles', groups: 'groups' }, dangerouslyAllowInsecureHttp: false, dangerouslyTrustUnverifiedEmail: false,
          },
          partner: {
            name: 'partner', issuer: 'https://partner.example.com', clientId: '12345', clientSecret: undefined,
            clientAuth: 'private_key_jwt', privateKey: abs('keys/fake-private.jwk.json'), mtls: undefined,
            scopes: ['openid', 'profile', 'email', 'offline_access'], par: 'auto', dpop: false,
            audiences: { orders: { resource: 'urn:partner:orders', scopes: [] } },
            claims: { roles: 'roles', groups: 'groups' }, dangerouslyAllowInsecureHttp: false, dangerouslyTrustUnverifiedEmail: false,
          },
          corp: {
            name: 'corp', issuer: 'http://localhost:4000', clientId: 'corp', clientSecret: undefined,
            clientAuth: 'tls_client_auth', privateKey: undefined,
            mtls: { cert: abs('keys/client.crt'), key: abs('keys/client.key'), ca: undefined },
            scopes: ['openid', 'profile', 'email', 'offline_access'], par: 'never', dpop: false,
            audiences: { orders: { resource: 'https://orders.corp.example', scopes: [] } },
            claims: { roles: 'roles', groups: 'groups' }, dangerouslyAllowInsecureHttp: true, dangerouslyTrustUnverifiedEmail: false,
          },
        },
      },
    };
    assert.deepEqual(c, expected);
    assert.ok(isDeepFrozen(c), 'config is not deep-frozen');
    assert.throws(() => { (c.routes.routes as unknown[]).push({}); }, TypeError);
    assert.throws(() => { (c.idps.idps.main!.scopes as string[])[0] = 'x'; }, TypeError);
    assert.deepEqual(await checkConfig(VALID, VALID_ENV), []);
  });

  it('reports every problem of a broken folder at once, with file, line and key', async () => {
    const env = { GOOD_SECRET: 'good-secret-value' };
    const err = await configError(BROKEN, env);
    assert.deepEqual(where(err.problems), [
      ['routes.yaml', 2, 'routes[0].name'],
      ['routes.yaml', 3, 'routes[0].prefix'],
      ['routes.yaml', 4, 'routes[0].audience'],
      ['routes.yaml', 6, 'routes[1].prefix'],
      ['routes.yaml', 7, 'routes[2].name'],
      ['routes.yaml', 8, 'routes[2].prefix'],
      ['routes.yaml', 9, 'routes[2].auth'],
      ['routes.yaml', 10, 'routes[2].colour'],
      ['routes.yaml', 12, 'routes[3].prefix'],
      ['routes.yaml', 14, 'cors.allowed_origins[0]'],
      ['routes.yaml', 14, 'cors.allowed_origins[1]'],
      ['routes.yaml', 15, 'extra'],
      ['pdp.yaml', 2, 'policies[0]'],
      ['pdp.yaml', 3, 'policies[1]'],
      ['pdp.yaml', 5, 'rules[0].match'],
      ['pdp.yaml', 7, 'rules[0].resource.type'],
      ['pdp.yaml', 8, 'rules[1].match'],
      ['pdp.yaml', 9, 'rules[1].action'],
      ['pdp.yaml', 10, 'rules[1].resource.type'],
      ['pdp.yaml', 11, 'rules[2].action'],
      ['pdp.yaml', 12, 'rules[2].resource.kind'],
      ['pdp.yaml', 12, 'rules[2].resource.id'],
      ['pdp.yaml', 13, 'rules[3].match'],
      ['pdp.yaml', 16, 'rules[4].match'],
      ['pdp.yaml', 18, 'rules[4].resource.id'],
      ['pdp.yaml', 19, 'rules[5].match'],
      ['idps.yaml', 1, 'default'],
      ['idps.yaml', 10, 'idps.plain.issuer'],
      ['idps.yaml', 10, 'idps.plain.client_id'],
      ['idps.yaml', 12, 'idps.plain.scopes'],
      ['idps.yaml', 13, 'idps.plain.par'],
      ['idps.yaml', 14, 'idps.plain.dpop'],
      ['idps.yaml', 15, 'idps.plain.claims.roles'],
      ['idps.yaml', 17, 'idps.jwt.private_key'],
      ['idps.yaml', 20, 'idps.jwt.client_secret'],
      ['idps.yaml', 22, 'idps.jwt.audiences.orders.resource'],
      ['idps.yaml', 22, 'idps.jwt.audiences.orders.scopes[0]'],
      ['idps.yaml', 23, 'idps.Bad_Name'],
      ['idps.yaml', 24, 'idps.Bad_Name.issuer'],
      ['idps.yaml', 26, 'idps.Bad_Name.client_secret'],
      ['idps.yaml', 27, 'idps.Bad_Name.mtls'],
    ]);
    const text = formatProblems(err.problems);
    const lines = text.split('\n');
    assert.equal(lines.length, err.problems.length);
    // Spot-check that messages say what was expected.
    const expectLine = (prefix: string, re: RegExp) => {
      const l = lines.find((x) => x.startsWith(prefix));
      assert.ok(l, `no line starting ${prefix}`);
      assert.match(l, re);
    };
    expectLine('routes.yaml:4: routes[0].audience:', /no IdP in idps\.yaml defines audiences\.missing-aud/);
    expectLine('routes.yaml:6: routes[1].prefix:', /must start with \/api\//);
    expectLine('routes.yaml:7: routes[2].name:', /already used by the route at line 5/);
    expectLine('routes.yaml:10: routes[2].colour:', /unknown key \(expected name, prefix, audience, auth\)/);
    expectLine('pdp.yaml:2: policies[0]:', /does not exist/);
    expectLine('pdp.yaml:5: rules[0].match:', /methods are upper-case/);
    expectLine('pdp.yaml:12: rules[2].resource.id:', /":oid", which is not a parameter/);
    expectLine('pdp.yaml:16: rules[4].match:', /can never apply: the rule at line 11/);
    expectLine('pdp.yaml:18: rules[4].resource.id:', /environment variable RESOURCE_ID is not set/);
    expectLine('idps.yaml:10: idps.plain.issuer:', /dangerously_allow_insecure_http: true/);
    expectLine('idps.yaml:26: idps.Bad_Name.client_secret:', /UNSET_SECRET is not set/);
    // No secret value, literal or from the environment, appears anywhere.
    for (const secret of ['good-secret-value', 'leftover-secret-plain', 'leftover-secret-jwt']) {
      assert.ok(!err.message.includes(secret), `${secret} leaked into the error`);
    }
    // checkConfig returns the same list without throwing.
    assert.deepEqual(await checkConfig(BROKEN, env), err.problems);
  });

  it('loads compose/config when GOLDPATH_CLIENT_SECRET is set, and names the variable when not', async () => {
    const dir = path.join(REPO, 'compose', 'config');
    const c = await loadConfig(dir, { GOLDPATH_CLIENT_SECRET: 'compose-secret' });
    assert.deepEqual(c.routes.routes.map((r) => [r.name, r.prefix, r.auth]), [
      ['orders', '/api/orders', 'session'], ['profiles', '/api/profiles', 'session'], ['public', '/api/public', 'public'],
    ]);
    assert.deepEqual(c.routes.cors.allowedOrigins, ['http://localhost:5173']);
    assert.deepEqual(c.pdp.policies, [path.join(REPO, 'policies', 'main.polar')]);
    assert.deepEqual(c.pdp.rules.map((r) => [r.methods, r.pattern, r.action, r.resource.type, r.resource.id]), [
      [['GET', 'HEAD'], '/api/orders', 'list', 'OrderList', undefined],
      [['GET', 'HEAD'], '/api/orders/:id', 'read', 'Order', ':id'],
      [['POST'], '/api/orders', 'create', 'OrderList', undefined],
      [['PUT', 'PATCH', 'DELETE'], '/api/orders/:id', 'write', 'Order', ':id'],
      [['GET'], '/api/profiles/:id', 'read', 'Profile', ':id'],
    ]);
    const dev = c.idps.idps.dev!;
    assert.equal(c.idps.default, 'dev');
    assert.deepEqual({ ...dev, clientSecret: dev.clientSecret === 'compose-secret' }, {
      name: 'dev', issuer: 'http://localhost:4000', clientId: 'goldpath', clientSecret: true, clientAuth: 'client_secret_basic',
      privateKey: undefined, mtls: undefined, scopes: ['openid', 'profile', 'email', 'offline_access'], par: 'auto', dpop: false,
      audiences: {}, claims: { roles: 'roles', groups: 'groups' }, dangerouslyAllowInsecureHttp: true, dangerouslyTrustUnverifiedEmail: false,
    });
    // The issuer default can be overridden from the environment.
    const other = await loadConfig(dir, { GOLDPATH_CLIENT_SECRET: 'x', GOLDPATH_IDP_ISSUER: 'http://localhost:4999' });
    assert.equal(other.idps.idps.dev!.issuer, 'http://localhost:4999');

    const err = await configError(dir, {});
    const p = only(err.problems);
    assert.equal(p.file, 'idps.yaml');
    assert.equal(p.key, 'idps.dev.client_secret');
    assert.equal(typeof p.line, 'number');
    assert.match(p.message, /environment variable GOLDPATH_CLIENT_SECRET is not set/);
  });

  describe('${NAME} substitution', () => {
    it('replaces variables anywhere in a scalar, with defaults and escapes', async () => {
      const idps = `default: dev
idps:
  dev:
    issuer: https://\${HOST}:\${PORT:-8443}/realms/\${REALM:-main}
    client_id: "$\${literal}-\${ID}"
    client_secret: a$b\${SECRET}
    dpop: \${DPOP:-false}
    scopes: [openid, "\${EXTRA_SCOPE:-profile}"]
`;
      const dir = await configDir({ idps });
      const c = await loadConfig(dir, { HOST: 'idp.example.com', REALM: '', ID: '7', SECRET: 's', DPOP: 'true' });
      const dev = c.idps.idps.dev!;
      assert.equal(dev.issuer, 'https://idp.example.com:8443/realms/main', 'an empty variable takes the default, like compose');
      assert.equal(dev.clientId, '${literal}-7');
      assert.equal(dev.clientSecret, 'a$bs');
      assert.equal(dev.dpop, true);
      assert.deepEqual(dev.scopes, ['openid', 'profile']);
    });

    it('reports each missing or malformed variable with file, line and key', async () => {
      const idps = `default: dev
idps:
  dev:
    issuer: https://\${IDP_HOST}
    client_id: \${A}\${B}
    client_secret: "\${bad-name}"
    dpop: \${DPOP}
    scopes: ["\${UNCLOSED"]
`;
      const problems = await problemsFor({ idps }, { B: 'set' });
      assert.deepEqual(where(problems), [
        ['idps.yaml', 4, 'idps.dev.issuer'],
        ['idps.yaml', 5, 'idps.dev.client_id'],
        ['idps.yaml', 6, 'idps.dev.client_secret'],
        ['idps.yaml', 7, 'idps.dev.dpop'],
        ['idps.yaml', 8, 'idps.dev.scopes[0]'],
      ]);
      assert.match(problems[0]!.message, /IDP_HOST is not set/);
      assert.match(problems[1]!.message, /\bA is not set/);
      assert.match(problems[2]!.message, /expected \$\{NAME\}/);
      assert.match(problems[3]!.message, /DPOP is not set/);
      assert.match(problems[4]!.message, /without a closing/);
    });

    it('substitute() never puts a value into a problem', () => {
      assert.deepEqual(substitute('x${A}y${B:-d}z$', { A: '1' }), { value: 'x1ydz$', problems: [] });
      assert.deepEqual(substitute('${A:-}', {}), { value: '', problems: [] });
      const r = substitute('${SECRET}${MISSING}', { SECRET: 'hunter2' });
      assert.equal(r.problems.length, 1);
      assert.ok(!r.problems[0]!.includes('hunter2'));
    });
  });

  describe('files', () => {
    it('reports missing files and a missing folder', async () => {
      const problems = await problemsFor({ omit: ['pdp.yaml', 'idps.yaml'] });
      assert.deepEqual(where(problems), [['pdp.yaml', undefined, '(file)'], ['idps.yaml', undefined, '(file)']]);
      assert.match(problems[0]!.message, /not found/);

      const gone = await checkConfig(path.join(FIXTURES, 'no-such-folder'), {});
      assert.equal(only(gone).key, '(folder)');
      assert.match(gone[0]!.message, /GOLDPATH_CONFIG_DIR/);
    });

    it('reports YAML syntax errors with their line and key, in every file at once', async () => {
      const problems = await problemsFor({
        routes: 'routes:\n  - name: a\n    prefix: "/api/a\n',
        pdp: 'policies: [app.polar]\nrules:\n  - match: GET /api/a\n    match: GET /api/b\n',
        idps: 'default: dev\nidps:\n  dev: { issuer: x\n',
      });
      assert.deepEqual(problems.map((p) => [p.file, p.key]),
        [['routes.yaml', 'routes[0].prefix'], ['pdp.yaml', 'rules[0].match'], ['idps.yaml', 'idps.dev.issuer']]);
      assert.equal(problems[0]!.line, 3);
      assert.equal(problems[1]!.line, 4);
      assert.match(problems[1]!.message, /a key appears twice/);
      assert.equal(problems[2]!.line, 3);
    });

    it('a YAML syntax problem at the start of a line is not blamed on the entry of the line before', async () => {
      const problems = await problemsFor({
        routes: 'routes:\n  - name: a\n    prefix: /api/a\n   auth: public\n',
        pdp: `${BASE_PDP}policies: [app.polar]\n`,
        idps: 'default: dev\nstray\nidps:\n  dev:\n    issuer: x\n',
      });
      assert.deepEqual(where(problems), [
        ['routes.yaml', 4, 'routes'],
        ['pdp.yaml', 6, 'policies'],
        ['idps.yaml', 2, '(yaml)'],
      ]);
    });

    it('reports an empty file, a file of the wrong shape, unknown top-level keys and several documents', async () => {
      const problems = await problemsFor({
        routes: '# nothing yet\n',
        pdp: '- policies\n',
        idps: `${BASE_IDPS}providers: {}\n---\nmore: 1\n`,
      });
      assert.deepEqual(where(problems), [
        ['routes.yaml', 1, '(root)'],
        ['pdp.yaml', 1, '(root)'],
        ['idps.yaml', 8, '(yaml)'],
      ]);
      assert.match(problems[0]!.message, /must be a map with routes: and cors:, got nothing/);
      assert.match(problems[1]!.message, /got a list/);
      const top = await problemsFor({ idps: `${BASE_IDPS}providers: {}\n` });
      assert.deepEqual(where(top), [['idps.yaml', 7, 'providers']]);
    });

    it('resolves aliases, and reports one without an anchor', async () => {
      const idps = `default: dev
idps:
  dev:
    issuer: https://idp.example.com
    client_id: goldpath
    client_secret: s
    audiences: &aud
      orders: { resource: https://api.example.com/orders }
  second:
    issuer: https://idp2.example.com
    client_id: goldpath
    client_secret: s
    audiences: *aud
`;
      const routes = 'routes:\n  - name: orders\n    prefix: /api/orders\n    audience: orders\n';
      const c = await loadConfig(await configDir({ idps, routes, pdp: 'policies: [app.polar]\nrules: []\n' }), {});
      assert.deepEqual(c.idps.idps.second!.audiences, c.idps.idps.dev!.audiences);
      assert.deepEqual(Object.keys(c.idps.idps.second!.audiences), ['orders']);

      const dangling = await problemsFor({ idps: idps.replace('*aud', '*nope') });
      assert.deepEqual(where(dangling), [['idps.yaml', 13, 'idps.second.audiences']]);
      assert.match(dangling[0]!.message, /alias \(\*name\) with no anchor/);
    });
  });
});

describe('config: loadSettingsAndConfig (how both processes start)', () => {
  it('lists the environment\'s problems and the files\' together', async () => {
    const dir = path.join(FIXTURES, 'broken');
    let err: unknown;
    try {
      await loadSettingsAndConfig({ GOLDPATH_CONFIG_DIR: dir, PORT: '99999', GOLDPATH_SESSION_IDLE: 'soon' });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError, String(err));
    const files = new Set(err.problems.map((p) => p.file));
    for (const f of ['environment', 'routes.yaml', 'pdp.yaml', 'idps.yaml']) assert.ok(files.has(f), `no problem for ${f}: ${err.message}`);
    assert.deepEqual(err.problems.filter((p) => p.file === 'environment').map((p) => p.key), ['GOLDPATH_SESSION_KEYS', 'PORT', 'GOLDPATH_SESSION_IDLE']);
    assert.equal(err.problems[0]!.file, 'environment', 'the environment first');
  });

  it('returns both when both are sound', async () => {
    const { settings, config } = await loadSettingsAndConfig({ GOLDPATH_CONFIG_DIR: VALID, GOLDPATH_SESSION_KEYS: Buffer.alloc(32, 7).toString('base64url'), ...VALID_ENV });
    assert.equal(settings.configDir, VALID);
    assert.ok(config.routes.routes.length > 0);
  });
});
