// A value from `${NAME}` may be a secret: a problem shows the text written at that place instead.
// Only there: a problem's own wording is never rewritten (a value like `false` or `auto` also
// appears in "expected ..."), and a value is never shown as another line's text.
import assert from 'node:assert/strict';
import type { ConfigProblem } from '../../src/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { Pdp } from '../../src/pdp/index.ts';
import { BASE_IDPS, BASE_PDP, BASE_ROUTES, cleanupConfigDirs, configDir, problemsFor } from './helpers.ts';

/** Distinctive text inside every environment value below: no 3 characters of it may show. */
const MARK = 'Qx7Zk';
const showsMark = (problems: readonly ConfigProblem[]) => problems.filter((p) => /Qx7|x7Z|7Zk/i.test(p.message));

const TWO_IDPS = `default: one
idps:
  one:
    issuer: https://one.example.com
    client_id: a
    client_secret: s
    client_auth: \${CLIENT_AUTH:-client_secret_basic}
    par: \${PAR:-auto}
    dpop: \${DPOP:-false}
  two:
    issuer: https://two.example.com
    client_id: b
    client_secret: s
    client_auth: basic
    par: sometimes
    dpop: "no"
`;

describe('config: values from the environment in problems', function () {
  after(cleanupConfigDirs);

  it('never rewrite the wording of another problem (expected one of ..., true or false)', async function () {
    for (const env of [{}, { CLIENT_AUTH: 'client_secret_post', PAR: 'always', DPOP: 'true' }]) {
      const problems = await problemsFor({ idps: TWO_IDPS }, env);
      assert.deepEqual(problems.map((p) => `${p.line} ${p.key}: ${p.message}`), [
        '14 idps.two.client_auth: is "basic"; expected one of client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth',
        '15 idps.two.par: is "sometimes"; expected auto (use PAR when the IdP offers it), always or never',
        '16 idps.two.dpop: must be true or false, got a string',
      ], JSON.stringify(env));
    }
  });

  it('show each value as the text of its own place, never another line\'s', async function () {
    const routes = `${BASE_ROUTES}  - name: empty
    prefix: /api/\${EMPTYVAR}
  - name: unset
    prefix: /api/\${UNSETVAR:-}
  - name: \${SECRET}
    prefix: /api/\${SECRET}
`;
    const problems = await problemsFor({ routes }, { EMPTYVAR: '', SECRET: `Top ${MARK}` });
    const at = (line: number) => problems.filter((p) => p.line === line).map((p) => p.message).join('\n');
    // No environment text in these two: the value is shown as it is, and as nothing else.
    assert.match(at(8), /end with \/.*; got "\/api\/"$/);
    assert.match(at(10), /end with \/.*; got "\/api\/"$/);
    assert.match(at(11), /^is "\$\{SECRET\}"; expected a-z 0-9 _ - only$/);
    assert.match(at(12), /^has a character not allowed in a path segment in "\/api\/\$\{SECRET\}"; got "\/api\/\$\{SECRET\}"$/);
    assert.deepEqual(showsMark(problems), []);
  });

  it('hide a part of a value too (a path segment of it), with the text written there', async function () {
    const routes = BASE_ROUTES.replace('prefix: /api/public', 'prefix: ${PFX}');
    const problems = await problemsFor({ routes }, { PFX: `/api/Top ${MARK}` });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.message, 'has a character not allowed in a path segment in "${PFX}"; got "${PFX}"');
  });

  it('hide values quoted into problems of other places and other files (audiences, prefixes, rules, paths)', async function () {
    const routes = `routes:
  - name: orders
    prefix: \${ORDERS}
    audience: \${AUD}
`;
    const pdp = `policies: ["\${DIR}/missing.polar"]
rules:
  - match: \${MATCH}
    action: read
    resource: { type: Order, id: ":nope" }
  - match: GET /api/elsewhere/:id
    action: read
    resource: { type: Order }
  - match: GET /api/\${SEG}/:id
    action: read
    resource: { type: Order }
`;
    const env = { ORDERS: `/api/${MARK}`, AUD: `aud-${MARK}`, DIR: `dir-${MARK}`, MATCH: `GET /api/${MARK}/:id`, SEG: MARK };
    const problems = await problemsFor({ routes, pdp, idps: BASE_IDPS }, env);
    const messages = problems.map((p) => `${p.file}:${p.line}: ${p.key}: ${p.message}`);
    const expect = [
      /^routes\.yaml:4: routes\[0\]\.audience: is "\$\{AUD\}", but no IdP in idps\.yaml defines audiences\.\$\{AUD\}$/,
      /^pdp\.yaml:1: policies\[0\]: "\$\{DIR\}\/missing\.polar" does not exist \(resolved with a value from the environment, not shown\)$/,
      /^pdp\.yaml:5: rules\[0\]\.resource\.id: is ":nope", which is not a parameter of "\$\{MATCH\}" \(it has \$\{MATCH\}\)$/,
      /^pdp\.yaml:6: rules\[1\]\.match: path "\/api\/elsewhere\/:id" is under no route prefix in routes\.yaml \(\$\{ORDERS\}\)/,
      /^pdp\.yaml:9: rules\[2\]\.match: can never apply: the rule at line 3 \("\$\{MATCH\}"\)/,
    ];
    assert.equal(messages.length, expect.length, messages.join('\n'));
    expect.forEach((re, i) => assert.match(messages[i]!, re));
    assert.deepEqual(showsMark(problems), []);
  });

  it('a policy warning about an action from the environment shows the text written, not the value', async function () {
    // A warning, not a problem: the config loads, and the sidecar logs it at start and on reload.
    const pdp = `${BASE_PDP}  - match: POST /api/orders/:id
    action: \${ACTION}
    resource: { type: Order, id: ":id" }
`;
    const config = await loadConfig(await configDir({ pdp }), { ACTION: `approve${MARK}` });
    assert.equal(config.pdp.rules[1]!.action, `approve${MARK}`, 'the value is what the policy is asked');
    const { problems, warnings } = await Pdp.check(config.pdp);
    assert.deepEqual(problems, []);
    const asks = warnings.filter((w) => w.includes('asks action'));
    assert.deepEqual(asks, ['pdp.yaml:6 asks action "${ACTION}", which no policy mentions: unless a rule allows any action, those requests will be denied']);
    assert.deepEqual(warnings.filter((w) => /Qx7|x7Z|7Zk/i.test(w)), []);
  });
});
