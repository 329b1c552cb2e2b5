// Mistakes a user makes following README that `goldpath check` must report plainly and at once:
// an unquoted ${NAME} inside a flow map (README's own "second IdP" example), and a Polar slip
// next to a pdp.yaml rule slip (the policy error used to wait for the next round).
import assert from 'node:assert/strict';
import { checkConfig } from '../../src/check.ts';
import { BASE_IDPS, BASE_PDP, cleanupConfigDirs, configDir, only, problemsFor, where } from './helpers.ts';

describe('config: check reports every problem in one round, plainly', () => {
  after(cleanupConfigDirs);

  it('says to quote an unquoted ${NAME} inside { } instead of three parser errors', async () => {
    const idps = `${BASE_IDPS}  corp: { issuer: http://localhost:4010, client_id: goldpath-corp, client_secret: \${CORP_SECRET}, dangerously_allow_insecure_http: true }\n`;
    const p = only(await problemsFor({ idps }, { CORP_SECRET: 'corp-secret' }));
    assert.deepEqual(where([p]), [['idps.yaml', 7, 'idps.corp.client_secret']]);
    assert.match(p.message, /unquoted \$\{NAME\} inside \[ \] or \{ \}.*quote it, e.g. client_secret: "\$\{NAME\}"/);
    assert.doesNotMatch(p.message, /corp-secret/);
    // Quoted, as README now writes it, it is substituted.
    const quoted = idps.replace('${CORP_SECRET}', '"${CORP_SECRET}"');
    assert.deepEqual(await problemsFor({ idps: quoted }, { CORP_SECRET: 'corp-secret' }), []);
  });

  it('says so inside [ ] too, and leaves a quoted or block-style ${NAME} alone', async () => {
    const routes = 'routes:\n  - name: orders\n    prefix: /api/orders\ncors:\n  allowed_origins: [${DEV_ORIGIN}]\n';
    const p = only(await problemsFor({ routes }, { DEV_ORIGIN: 'http://localhost:5173' }));
    assert.deepEqual([p.file, p.line], ['routes.yaml', 5]);
    assert.match(p.message, /unquoted \$\{NAME\} inside/);
    assert.deepEqual(await problemsFor({ routes: routes.replace('[${DEV_ORIGIN}]', '["${DEV_ORIGIN}"]') }, { DEV_ORIGIN: 'http://localhost:5173' }), []);
  });

  it('reports a policy syntax error beside a problem in a pdp.yaml rule', async () => {
    const pdp = `${BASE_PDP}  - match: GET /api/orders
    action: 42
    resource: { type: OrderList }
`;
    const dir = await configDir({ pdp, extra: { 'app.polar': 'allow(_user: User, "read", _order: Order) if and;\n' } });
    const { problems } = await checkConfig(dir, {});
    const files = problems.map((p) => `${p.file.replace(/.*\//, '')}:${p.line}: ${p.key}`);
    assert.deepEqual(files, ['pdp.yaml:7: rules[1].action', 'app.polar:1: policies'], JSON.stringify(problems));
  });

  it('reports a policy syntax error beside a policy file pdp.yaml lists that does not exist', async () => {
    const pdp = BASE_PDP.replace('policies: [app.polar]', 'policies: [app.polar, gone.polar, other.polar]');
    const dir = await configDir({ pdp, extra: {
      'app.polar': 'allow(_user: User, "read", _order: Order) if and;\n',
      'other.polar': 'allow(_user: User, "list", _order: Order);\nallow(x, y z);\n',
    } });
    const { problems } = await checkConfig(dir, {});
    const files = problems.map((p) => `${p.file.replace(/.*\//, '')}:${p.line}: ${p.key}`);
    assert.deepEqual(files, ['pdp.yaml:1: policies[1]', 'app.polar:1: policies', 'other.polar:2: policies'], JSON.stringify(problems));
    assert.match(problems[0]!.message, /"gone\.polar" does not exist/);
  });

  it('reports scopes lacking openid beside a problem in one of them', async () => {
    const problems = await problemsFor({ idps: `${BASE_IDPS}    scopes: [profile, profile]\n` });
    assert.deepEqual(problems.map((p) => `${p.line} ${p.key}: ${p.message}`), [
      '7 idps.dev.scopes[1]: "profile" is listed twice',
      '7 idps.dev.scopes: must include openid (goldpath signs users in with OpenID Connect)',
    ]);
  });

  it('does not warn of the rules it left out when checking the policies beside a rule problem', async () => {
    const pdp = `${BASE_PDP}  - match: GET /api/orders
    action: 42
    resource: { type: OrderList }
`;
    const dir = await configDir({ pdp, extra: { 'app.polar': 'allow(_user: User, "read", _order: Order);\nallow(_user: User, "list", _o: OrderList);\n' } });
    const { problems, warnings } = await checkConfig(dir, {});
    assert.deepEqual(problems.map((p) => p.key), ['rules[1].action']);
    assert.deepEqual(warnings, []);
  });
});

describe('config: check, reviewed edge cases', () => {
  after(cleanupConfigDirs);

  it('a pdp.yaml problem outside the rules leaves out no rule, and hides none of their warnings', async () => {
    const pdp = `policies: [app.polar]\nextra: 1\nrules:\n  - match: GET /api/orders/:id\n    action: raed\n    resource: { type: Order, id: ":id" }\n`;
    const { problems, warnings } = await checkConfig(await configDir({ pdp }), {});
    assert.deepEqual(problems.map((p) => p.key), ['extra']);
    assert.equal(warnings.filter((w) => /asks action "raed", which no policy mentions/.test(w)).length, 1, JSON.stringify(warnings));
  });

  it('says "quote it" only where quoting is the fix: not for a block-style ${NAME} below a { in a value or an unclosed [', async () => {
    const head = 'default: dev\nidps:\n  dev:\n';
    const dup = `${head}    issuer: https://idp.example.com/{x\n    client_id: goldpath\n    client_secret: \${SECRET}\n    client_secret: \${SECRET}\n`;
    const p = only(await problemsFor({ idps: dup }, { SECRET: 's' }));
    assert.deepEqual([p.line, p.key], [7, 'idps.dev.client_secret']);
    assert.match(p.message, /a key appears twice/);
    const unclosed = `${head}    issuer: https://idp.example.com\n    client_id: goldpath\n    scopes: [openid, profile\n    client_secret: \${SECRET}\n`;
    const q = only(await problemsFor({ idps: unclosed }, { SECRET: 's' }));
    assert.doesNotMatch(q.message, /unquoted \$\{NAME\}/);
    assert.match(q.message, /end with a \]/);
  });
});
