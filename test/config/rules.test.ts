// One case per validation rule: the smallest config that breaks it, and the exact problem.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkConfig } from '../../src/config/check.ts';
import { loadConfig } from '../../src/config/load.ts';
import { BASE_IDPS, BASE_PDP, BASE_ROUTES, cleanupConfigDirs, configDir, FIXTURES, problemsFor, where } from './helpers.ts';

type Files = Parameters<typeof problemsFor>[0];
interface Case {
  name: string;
  files: Files;
  env?: Record<string, string>;
  /** [file, line, key, message pattern] for each expected problem, in order. */
  expect: [string, number | undefined, string, RegExp][];
}

// A real certificate and its key (the valid fixture's, test-only), and a key that is not its own.
const KEYS_DIR = path.join(FIXTURES, 'valid', 'keys');
const CERT = readFileSync(path.join(KEYS_DIR, 'client.crt'), 'utf8');
const OTHER_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

const route = (body: string) => `routes:\n  - name: orders\n    prefix: /api/orders\n${body}`;
const rule = (match: string, resource = '{ type: Order }') =>
  `policies: [app.polar]\nrules:\n  - match: ${match}\n    action: read\n    resource: ${resource}\n`;
const idp = (body: string) => `default: dev\nidps:\n  dev:\n    issuer: https://idp.example.com\n    client_id: goldpath\n${body}`;

const cases: Case[] = [
  // routes.yaml
  { name: 'routes is required', files: { routes: 'cors: {}\n' }, expect: [['routes.yaml', 1, 'routes', /is required/]] },
  { name: 'routes must not be empty', files: { routes: 'routes: []\n', pdp: 'policies: [app.polar]\nrules: []\n' },
    expect: [['routes.yaml', 1, 'routes', /at least one route/]] },
  { name: 'route name and prefix are required', files: { routes: 'routes:\n  - auth: public\n' },
    expect: [['routes.yaml', 2, 'routes[0].name', /is required/], ['routes.yaml', 2, 'routes[0].prefix', /is required/]] },
  { name: 'prefix must start with /', files: { routes: route('  - name: b\n    prefix: api/b\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /must start with \//]] },
  { name: 'prefix without //', files: { routes: route('  - name: b\n    prefix: /api//b\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /must not contain \/\//]] },
  { name: 'prefix without ?', files: { routes: route('  - name: b\n    prefix: /api/b?x=1\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /query/]] },
  { name: 'prefix without #', files: { routes: route('  - name: b\n    prefix: "/api/b#x"\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /fragment/]] },
  { name: 'prefix without single-dot segment or backslash', files: { routes: route('  - name: b\n    prefix: /api/./b\n  - name: c\n    prefix: /api\\c\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /dot segments/], ['routes.yaml', 7, 'routes[2].prefix', /backslash/]] },
  { name: 'prefix under /api', files: { routes: route('  - name: b\n    prefix: /apix\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /must start with \/api\//]] },
  { name: 'duplicate prefixes', files: { routes: route('  - name: b\n    prefix: /api/orders\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /already the prefix of the route at line 3/]] },
  { name: 'audience must be a string', files: { routes: route('    audience: [a]\n') },
    expect: [['routes.yaml', 4, 'routes[0].audience', /must be the name of an audience/]] },
  { name: 'audience must exist at every IdP', files: {
    routes: route('    audience: orders\n'),
    idps: `${BASE_IDPS}    audiences:\n      orders: { resource: https://api.example.com/orders }\n  other:\n    issuer: https://other.example.com\n    client_id: x\n    client_secret: y\n`,
  }, expect: [['routes.yaml', 4, 'routes[0].audience', /IdP other in idps\.yaml does not define audiences\.orders .*any of them/]] },
  { name: 'cors origins: scheme, duplicates, shape', files: {
    routes: `${BASE_ROUTES}cors:\n  allowed_origins:\n    - ws://localhost:5173\n    - http://localhost:5173\n    - http://LOCALHOST:5173\n    - "http://localhost:5173?x"\n  methods: [GET]\n`,
  }, expect: [
    ['routes.yaml', 9, 'cors.allowed_origins[0]', /must use http or https/],
    ['routes.yaml', 11, 'cors.allowed_origins[2]', /listed twice/],
    ['routes.yaml', 12, 'cors.allowed_origins[3]', /without path, query or fragment/],
    ['routes.yaml', 13, 'cors.methods', /unknown key \(expected allowed_origins\)/],
  ] },
  { name: 'cors origins: https, or plain http on localhost only (the CSRF check trusts them); exact origins', files: {
    routes: `${BASE_ROUTES}cors:\n  allowed_origins:\n    - http://evil.com\n    - http://localhost:5173\n    - http://127.0.0.1:3000\n    - "http://[::1]:5173"\n` +
      '    - https://app.example.com\n    - "https://*.example.com"\n    - https://app.example.com:0\n    - https://-bad-.example.com\n    - https://app.example.com/..\n',
  }, expect: [
    ['routes.yaml', 9, 'cors.allowed_origins[0]', /uses plain http: .*CSRF check.*; use https \(http is accepted only for localhost, 127\.0\.0\.1 and \[::1\]\); got "http:\/\/evil\.com"$/],
    ['routes.yaml', 14, 'cors.allowed_origins[5]', /wildcards are not allowed/],
    ['routes.yaml', 15, 'cors.allowed_origins[6]', /invalid port/],
    ['routes.yaml', 16, 'cors.allowed_origins[7]', /invalid host name/],
    ['routes.yaml', 17, 'cors.allowed_origins[8]', /without path, query or fragment/],
  ] },

  // pdp.yaml
  { name: 'policies required, rules required', files: { pdp: 'other: 1\n' }, expect: [
    ['pdp.yaml', 1, 'other', /unknown key/],
    ['pdp.yaml', 1, 'policies', /is required/],
    ['pdp.yaml', 1, 'rules', /is required/],
  ] },
  { name: 'policies non-empty', files: { pdp: 'policies: []\nrules: []\n' }, expect: [['pdp.yaml', 1, 'policies', /at least one \.polar/]] },
  { name: 'policies as a string is one problem (not also "lists none")', files: { pdp: 'policies: app.polar\nrules: []\n' },
    expect: [['pdp.yaml', 1, 'policies', /must be a list of \.polar files, relative to pdp\.yaml, got a string/]] },
  { name: 'policies listed twice', files: { pdp: 'policies: [app.polar, ./app.polar]\nrules: []\n' },
    expect: [['pdp.yaml', 1, 'policies[1]', /listed twice/]] },
  { name: 'a policy folder is not a file', files: { pdp: 'policies: [dir.polar]\nrules: []\n', extra: { 'dir.polar/x': '' } },
    expect: [['pdp.yaml', 1, 'policies[0]', /is not a file/]] },
  { name: 'unknown method', files: { pdp: rule('FETCH /api/orders') }, expect: [['pdp.yaml', 3, 'rules[0].match', /method "FETCH"/]] },
  { name: 'an unquoted * method gets a hint', files: { pdp: rule('* /api/orders') },
    expect: [['pdp.yaml', 3, 'rules[0].match', /must be quoted, e\.g\. match: "\* \/api\/orders\/\*"/], ['pdp.yaml', 3, 'rules[0].match', /Unexpected scalar/]] },
  { name: 'method twice', files: { pdp: rule('GET|HEAD|GET /api/orders') }, expect: [['pdp.yaml', 3, 'rules[0].match', /names method GET twice/]] },
  { name: 'a bad method does not hide a resource.id naming no parameter of the path', files: { pdp: rule('GET|FOO /api/orders', '{ type: Order, id: ":nope" }') },
    expect: [['pdp.yaml', 3, 'rules[0].match', /method "FOO"/], ['pdp.yaml', 5, 'rules[0].resource.id', /":nope", which is not a parameter of "\/api\/orders" \(it has no parameters\)/]] },
  { name: 'bad parameter name', files: { pdp: rule('GET /api/orders/:1x') }, expect: [['pdp.yaml', 3, 'rules[0].match', /parameter ":1x"/]] },
  { name: 'pattern must be canonical', files: { pdp: rule('GET /api/orders/') }, expect: [['pdp.yaml', 3, 'rules[0].match', /must not end with \//]] },
  { name: 'pattern literal without %', files: { pdp: rule('GET /api/orders/a%20b') }, expect: [['pdp.yaml', 3, 'rules[0].match', /percent-encoding/]] },
  { name: 'pattern with * inside a segment', files: { pdp: rule('GET /api/orders/a*') }, expect: [['pdp.yaml', 3, 'rules[0].match', /must not contain \*/]] },
  { name: 'pattern literal with ; or a trailing . (the sidecar refuses every such request: it could never match)', files: { pdp: rule('GET /api/orders/a;v=1') },
    expect: [['pdp.yaml', 3, 'rules[0].match', /must not contain ; \(the sidecar refuses path parameters/]] },
  { name: 'pattern literal ending in .', files: { pdp: rule('GET /api/orders/report.') },
    expect: [['pdp.yaml', 3, 'rules[0].match', /must not end with \. \(the sidecar refuses/]] },
  { name: 'prefix with ;', files: { routes: route('  - name: b\n    prefix: /api/b;v=2\n') },
    expect: [['routes.yaml', 5, 'routes[1].prefix', /must not contain ;/]] },
  { name: 'rule under no route', files: { pdp: rule('GET /api/order/:id') },
    expect: [['pdp.yaml', 3, 'rules[0].match', /"\/api\/order\/:id" is under no route prefix in routes\.yaml \(\/api\/orders, \/api\/public\)/]] },
  { name: 'rule above every route', files: { pdp: rule('GET /api') }, expect: [['pdp.yaml', 3, 'rules[0].match', /under no route prefix/]] },
  { name: 'resource required, type required', files: { pdp: 'policies: [app.polar]\nrules:\n  - match: GET /api/orders\n    action: read\n  - match: GET /api/orders/x\n    action: read\n    resource: { id: x }\n' },
    expect: [['pdp.yaml', 3, 'rules[0].resource', /is required/], ['pdp.yaml', 7, 'rules[1].resource.type', /is required/]] },
  { name: 'resource type may not shadow a Polar built-in', files: { pdp: rule('GET /api/orders', '{ type: String }') },
    expect: [['pdp.yaml', 5, 'rules[0].resource.type', /a Polar built-in class/]] },
  { name: 'resource id :param of a pattern without params', files: { pdp: rule('GET /api/orders', '{ type: Order, id: ":id" }') },
    expect: [['pdp.yaml', 5, 'rules[0].resource.id', /it has no parameters/]] },
  { name: 'match required and a string', files: { pdp: 'policies: [app.polar]\nrules:\n  - action: read\n    resource: { type: Order }\n  - match: [GET]\n    action: read\n    resource: { type: Order }\n' },
    expect: [['pdp.yaml', 3, 'rules[0].match', /is required/], ['pdp.yaml', 5, 'rules[1].match', /must be a string, got a list/]] },
  { name: 'action must be a string', files: { pdp: 'policies: [app.polar]\nrules:\n  - match: GET /api/orders\n    action: 3\n    resource: { type: Order }\n' },
    expect: [['pdp.yaml', 4, 'rules[0].action', /got a number/]] },

  // idps.yaml
  { name: 'default and idps required', files: { idps: 'idp: x\n' }, expect: [
    ['idps.yaml', 1, 'idp', /unknown key \(expected default, idps\)/],
    ['idps.yaml', 1, 'idps', /is required/],
    ['idps.yaml', 1, 'default', /is required/],
  ] },
  { name: 'at least one IdP', files: { idps: 'default: dev\nidps: {}\n' }, expect: [
    ['idps.yaml', 1, 'default', /not an IdP under idps: \(have none\)/],
    ['idps.yaml', 2, 'idps', /at least one IdP/],
  ] },
  { name: 'unknown IdP key', files: { idps: idp('    client_secret: s\n    clientSecret: s\n') },
    expect: [['idps.yaml', 7, 'idps.dev.clientSecret', /unknown key \(expected issuer, client_id, client_secret/]] },
  { name: 'issuer required and a URL', files: { idps: 'default: dev\nidps:\n  dev:\n    client_id: a\n    client_secret: b\n  two:\n    issuer: ftp://x\n    client_id: a\n    client_secret: b\n' },
    expect: [['idps.yaml', 4, 'idps.dev.issuer', /is required/], ['idps.yaml', 7, 'idps.two.issuer', /expected an https URL/]] },
  { name: 'dangerously_allow_insecure_http must be a boolean', files: { idps: `${BASE_IDPS}    dangerously_allow_insecure_http: "yes"\n` },
    expect: [['idps.yaml', 7, 'idps.dev.dangerously_allow_insecure_http', /must be true or false/]] },
  { name: 'client_secret required by default (client_secret_basic)', files: { idps: idp('') },
    expect: [['idps.yaml', 4, 'idps.dev.client_secret', /is required: the client secret \(client_auth: client_secret_basic\)/]] },
  { name: 'client_secret required for client_secret_post', files: { idps: idp('    client_auth: client_secret_post\n') },
    expect: [['idps.yaml', 4, 'idps.dev.client_secret', /client_auth: client_secret_post/]] },
  { name: 'client_auth value', files: { idps: idp('    client_auth: none\n') },
    expect: [['idps.yaml', 6, 'idps.dev.client_auth', /expected one of client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth/]] },
  { name: 'a key file larger than 1 MiB is refused unread', files: {
    idps: idp('    client_auth: private_key_jwt\n    private_key: big.json\n'), extra: { 'big.json': ' '.repeat(1024 * 1024 + 1) },
  }, expect: [['idps.yaml', 7, 'idps.dev.private_key', /"big\.json" is larger than 1 MiB, the most goldpath reads \(a key or certificate file is a few KiB\)/]] },
  { name: 'private_key must exist', files: { idps: idp('    client_auth: private_key_jwt\n    private_key: keys/missing.json\n') },
    expect: [['idps.yaml', 7, 'idps.dev.private_key', /"keys\/missing\.json" does not exist/]] },
  { name: 'private_key must be a private JWK', files: {
    idps: idp('    client_auth: private_key_jwt\n    private_key: pub.json\n  two:\n    issuer: https://two.example.com\n    client_id: x\n    client_auth: private_key_jwt\n    private_key: pem.key\n'),
    extra: { 'pub.json': '{"kty":"EC","crv":"P-256","x":"a","y":"b"}', 'pem.key': 'not json' },
  }, expect: [
    ['idps.yaml', 7, 'idps.dev.private_key', /holds a public key/],
    ['idps.yaml', 12, 'idps.two.private_key', /not a JSON Web Key file/],
  ] },
  { name: 'private_key must parse as a key', files: {
    idps: idp('    client_auth: private_key_jwt\n    private_key: bad.json\n'),
    extra: { 'bad.json': '{"kty":"EC","crv":"P-256","x":"bad","y":"bad","d":"bad"}' },
  }, expect: [['idps.yaml', 7, 'idps.dev.private_key', /EC JWK whose key material does not parse/]] },
  { name: 'private_key only with private_key_jwt', files: { idps: idp('    client_secret: s\n    private_key: k.json\n') },
    expect: [['idps.yaml', 7, 'idps.dev.private_key', /only used with client_auth: private_key_jwt/]] },
  { name: 'mtls required for tls_client_auth', files: { idps: idp('    client_auth: tls_client_auth\n') },
    expect: [['idps.yaml', 4, 'idps.dev.mtls', /is required/]] },
  { name: 'mtls files must exist; cert and key required', files: {
    idps: idp('    client_auth: tls_client_auth\n    mtls: { cert: c.pem, ca: ca.pem, pass: x }\n'), extra: { 'c.pem': 'x' },
  }, expect: [
    ['idps.yaml', 7, 'idps.dev.mtls.pass', /unknown key/],
    ['idps.yaml', 7, 'idps.dev.mtls.key', /is required/],
    ['idps.yaml', 7, 'idps.dev.mtls.ca', /"ca\.pem" does not exist/],
  ] },
  { name: 'mtls files must hold a certificate, a private key and a CA bundle', files: {
    idps: idp('    client_auth: tls_client_auth\n    mtls: { cert: c.pem, key: k.pem, ca: ca.pem }\n'),
    extra: { 'c.pem': 'garbage', 'k.pem': 'garbage', 'ca.pem': 'garbage' },
  }, expect: [
    ['idps.yaml', 7, 'idps.dev.mtls.cert', /is not a PEM certificate/],
    ['idps.yaml', 7, 'idps.dev.mtls.key', /is not a PEM private key/],
    ['idps.yaml', 7, 'idps.dev.mtls.ca', /is not a bundle of PEM certificates/],
  ] },
  { name: 'mtls key must be the certificate\'s', files: {
    idps: idp('    client_auth: tls_client_auth\n    mtls: { cert: c.pem, key: k.pem, ca: ca.pem }\n'),
    extra: { 'c.pem': CERT, 'k.pem': OTHER_KEY, 'ca.pem': CERT },
  }, expect: [['idps.yaml', 7, 'idps.dev.mtls.key', /is not the private key of the certificate in mtls\.cert/]] },
  { name: 'scopes: a list, no duplicates', files: { idps: `${BASE_IDPS}    scopes: [openid, openid]\n  two:\n    issuer: https://two.example.com\n    client_id: x\n    client_secret: y\n    scopes: openid\n` },
    expect: [['idps.yaml', 7, 'idps.dev.scopes[1]', /listed twice/], ['idps.yaml', 12, 'idps.two.scopes', /must be a list of scopes, got a string/]] },
  { name: 'audiences: names, resource required, unknown keys', files: {
    idps: `${BASE_IDPS}    audiences:\n      "bad name": { resource: https://a.example.com }\n      b: { scopes: [x] }\n      c: { resource: "https://c.example.com#f", audience: c }\n`,
  }, expect: [
    ['idps.yaml', 8, 'idps.dev.audiences["bad name"]', /audience name "bad name" may contain only/],
    ['idps.yaml', 9, 'idps.dev.audiences.b.resource', /is required/],
    ['idps.yaml', 10, 'idps.dev.audiences.c.audience', /unknown key \(expected resource, scopes\)/],
    ['idps.yaml', 10, 'idps.dev.audiences.c.resource', /without fragment/],
  ] },
  { name: 'IdP and audience names an object already has (constructor, __proto__, ...) are refused', files: {
    idps: `${BASE_IDPS}    audiences:\n      constructor: { resource: https://a.example.com }\n      __proto__: { resource: https://b.example.com }\n  tostring_ok:\n    issuer: https://two.example.com\n    client_id: x\n    client_secret: y\n  __proto__:\n    issuer: https://three.example.com\n    client_id: x\n    client_secret: y\n`,
  }, expect: [
    ['idps.yaml', 8, 'idps.dev.audiences.constructor', /audience name "constructor" is a name every JavaScript object already has/],
    ['idps.yaml', 9, 'idps.dev.audiences.__proto__', /audience name "__proto__" is a name every JavaScript object already has/],
    ['idps.yaml', 14, 'idps.__proto__', /IdP name "__proto__" is a name every JavaScript object already has/],
  ] },
  { name: 'an IdP name longer than /auth/login?idp= takes (64) is refused: it could never be chosen', files: {
    idps: `${BASE_IDPS}  ${'a'.repeat(65)}:\n    issuer: https://two.example.com\n    client_id: x\n    client_secret: y\n  ${'b'.repeat(64)}:\n    issuer: https://three.example.com\n    client_id: x\n    client_secret: y\n`,
  }, expect: [['idps.yaml', 7, `idps.${'a'.repeat(65)}`, /IdP name "a{65}" is longer than 64 characters/]] },
  { name: 'claims: unknown key and empty path', files: { idps: `${BASE_IDPS}    claims: { roles: ".roles", email: mail }\n` },
    expect: [['idps.yaml', 7, 'idps.dev.claims.email', /unknown key/], ['idps.yaml', 7, 'idps.dev.claims.roles', /dotted claim path/]] },
  { name: 'par names its values', files: { idps: `${BASE_IDPS}    par: true\n` },
    expect: [['idps.yaml', 7, 'idps.dev.par', /must be auto, always or never, got true/]] },
  { name: 'a file of two YAML documents', files: { idps: `${BASE_IDPS}---\nx: 1\n` },
    expect: [['idps.yaml', 7, '(yaml)', /more than one document \(a second --- line\); a goldpath config file is one$/]] },
  { name: 'dpop must be a boolean', files: { idps: `${BASE_IDPS}    dpop: 1\n` },
    expect: [['idps.yaml', 7, 'idps.dev.dpop', /must be true or false, got a number/]] },
  { name: 'an IdP must be a map', files: { idps: 'default: dev\nidps:\n  dev: https://idp.example.com\n' },
    expect: [['idps.yaml', 3, 'idps.dev', /must be a map describing the IdP/]] },
];

describe('config: validation rules', () => {
  after(cleanupConfigDirs);

  for (const c of cases) {
    it(c.name, async () => {
      const problems = await problemsFor(c.files, c.env);
      assert.deepEqual(where(problems), c.expect.map(([f, l, k]) => [f, l, k]), JSON.stringify(problems, null, 1));
      c.expect.forEach(([, , , re], i) => assert.match(problems[i]!.message, re));
    });
  }

  it('the base config used above is valid, and loads', async () => {
    const c = await loadConfig(await configDir(), {});
    assert.equal(c.routes.routes.length, 2);
    assert.deepEqual(c.pdp.rules.map((r) => r.pattern), ['/api/orders/:id']);
    assert.equal(c.idps.idps.dev!.clientAuth, 'client_secret_basic');
    assert.equal(BASE_PDP.includes('app.polar'), true);
  });

  it('rules reaching a route through parameters or a wildcard count as covered', async () => {
    const pdp = 'policies: [app.polar]\nrules:\n' + [
      // "* /*" last: first match wins, so above the others it would leave them nothing to match.
      '"* /api/:area/:id"', 'GET /api/public/x/y', 'GET|HEAD /api/orders', 'DELETE /api/orders/*', '"* /*"',
    ].map((m) => `  - match: ${m}\n    action: a\n    resource: { type: Thing }\n`).join('');
    assert.deepEqual(await problemsFor({ pdp }), []);
  });

  it('a policy file over 1 MiB is a problem at its pdp.yaml line (found from its size, not read)', async () => {
    const dir = await configDir({ pdp: BASE_PDP.replace('policies: [app.polar]', 'policies: [app.polar, big.polar]') });
    writeFileSync(path.join(dir, 'big.polar'), '');
    truncateSync(path.join(dir, 'big.polar'), 200 * 1024 * 1024); // sparse: no disk used
    const problems = await checkConfig(dir, {});
    assert.deepEqual(where(problems), [['pdp.yaml', 1, 'policies[1]']], JSON.stringify(problems));
    assert.match(problems[0]!.message, /^"big\.polar" is larger than 1 MiB, the most goldpath reads .*\(resolved to .*big\.polar\)$/);
  });

  it('an http issuer is accepted with the explicit opt-in', async () => {
    const c = await loadConfig(await configDir({ idps: idp('    client_secret: s\n    dangerously_allow_insecure_http: true\n').replace('https://idp', 'http://idp') }), {});
    assert.equal(c.idps.idps.dev!.issuer, 'http://idp.example.com');
    assert.equal(c.idps.idps.dev!.dangerouslyAllowInsecureHttp, true);
  });

  it('dangerously_trust_unverified_email: off unless set; a boolean or a problem at its line', async () => {
    const plain = await loadConfig(await configDir({ idps: idp('    client_secret: s\n') }), {});
    assert.equal(plain.idps.idps.dev!.dangerouslyTrustUnverifiedEmail, false);
    const on = await loadConfig(await configDir({ idps: idp('    client_secret: s\n    dangerously_trust_unverified_email: true\n') }), {});
    assert.equal(on.idps.idps.dev!.dangerouslyTrustUnverifiedEmail, true);
    const problems = await checkConfig(await configDir({ idps: idp('    client_secret: s\n    dangerously_trust_unverified_email: yes please\n') }), {});
    assert.deepEqual(problems.map((p) => p.key), ['idps.dev.dangerously_trust_unverified_email'], JSON.stringify(problems));
  });
});
