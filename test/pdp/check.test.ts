import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pdp } from '../../src/pdp/index.ts';
import { demoConfig, demoRules, fixture, mainPolicy, rule } from './helpers.ts';

describe('Pdp.check (goldpath check)', () => {
  it('the demo config has no problems and no warnings', async () => {
    assert.deepEqual(await Pdp.check(demoConfig()), { problems: [], warnings: [] });
  });

  it('reports a Polar syntax error with file and line', async () => {
    const file = fixture('broken.polar');
    const { problems } = await Pdp.check(demoConfig([mainPolicy, file]));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.file, file);
    assert.equal(problems[0]!.line, 3);
    assert.equal(problems[0]!.key, 'policies');
    assert.match(problems[0]!.message, /token ';'.*\(column \d+\)/);
  });

  it('reports an invalid rule with Oso\'s whole explanation, not only its last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-polar-'));
    try {
      const file = join(dir, 'widget.polar');
      writeFileSync(file, 'resource Widget {\n  permissions = ["read"];\n}\nhas_permission(u: User, "read", w: Widget) if u.id = w.id;\n');
      const { problems } = await Pdp.check(demoConfig([mainPolicy, file]));
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]!.line, 4);
      assert.match(problems[0]!.message, /^Invalid rule: .*must be a member of rule type specializer Actor.*actor User \{\}/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports every unreadable file at once', async () => {
    const { problems } = await Pdp.check(demoConfig([fixture('nope1.polar'), fixture('nope2.polar')]));
    assert.deepEqual(problems.map((p) => p.file), [fixture('nope1.polar'), fixture('nope2.polar')]);
  });

  it('warns about a rule type that no policy mentions, and a policy type no rule produces', async () => {
    const { problems, warnings } = await Pdp.check({
      policies: [mainPolicy],
      rules: [...demoRules.filter((r) => r.resource.type !== 'Profile'), rule('GET /api/invoices/:id', 'read', 'Invoice', ':id')],
    });
    assert.deepEqual(problems, []);
    assert.ok(warnings.some((w) => /resource type Invoice, which no policy mentions/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /policy names type Profile, which no pdp.yaml rule produces/.test(w)), warnings.join('\n'));
  });

  it('main.polar combines with resource blocks (its helper does not clash with has_role)', async () => {
    const { problems } = await Pdp.check(demoConfig([mainPolicy, fixture('resource-block.polar')]));
    assert.deepEqual(problems, []);
  });

  it('a type name misspelt in the policy is reported', async () => {
    const { problems, warnings } = await Pdp.check({
      policies: ['/virtual/typo.polar'],
      rules: [rule('GET /api/orders/:id', 'read', 'Order', ':id')],
    }, { readFile: async () => 'allow(_u: User, "read", _o: Ordr);' });
    assert.deepEqual(problems, []);
    assert.ok(warnings.some((w) => /type Ordr, which no pdp.yaml rule produces/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /resource type Order, which no policy mentions/.test(w)), warnings.join('\n'));
  });

  it('a throwing policy is not a load problem (it fails closed at query time)', async () => {
    const { problems } = await Pdp.check({ policies: [fixture('throws.polar')], rules: demoRules });
    assert.deepEqual(problems, []);
  });
});
