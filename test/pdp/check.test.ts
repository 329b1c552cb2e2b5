import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { Pdp } from '../../src/pdp/index.ts';
import { silentLogger } from '../../src/log.ts';
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

  it('reports the syntax error of each broken file at once, not only the first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-polar-'));
    try {
      const [a, b, c] = ['a.polar', 'b.polar', 'c.polar'].map((f) => join(dir, f)) as [string, string, string];
      writeFileSync(a, 'allow(_u: User, "read", _o: Order) if true\nallow(_u: User, "list", _o: OrderList);\n');
      writeFileSync(b, 'allow(_u: User, "read", _p: Profile);\n');
      writeFileSync(c, '\n\nallow(_u: User, "write", _o: Order) if ;\n');
      const { problems } = await Pdp.check(demoConfig([a, b, c]));
      assert.deepEqual(problems.map((p) => [p.file, p.line, p.key]), [[a, 2, 'policies'], [c, 3, 'policies']], JSON.stringify(problems));
      assert.match(problems[0]!.message, /did not expect to find the token 'allow'.*missing at the end of the rule before it/);
      assert.match(problems[1]!.message, /did not expect to find the token ';'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a policy file over 1 MiB, for check and for load, without reading it whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-polar-'));
    try {
      const big = join(dir, 'big.polar');
      writeFileSync(big, '');
      truncateSync(big, 64 * 1024 * 1024); // sparse: no disk used
      const { problems } = await Pdp.check(demoConfig([mainPolicy, big]));
      assert.deepEqual(problems.map((p) => [p.file, p.line, p.key]), [[big, undefined, 'policies']], JSON.stringify(problems));
      assert.match(problems[0]!.message, /^is larger than 1 MiB/);
      await assert.rejects(Pdp.load(demoConfig([big]), { log: silentLogger }), (err: unknown) =>
        err instanceof ConfigError && err.problems.length === 1 && /larger than 1 MiB/.test(err.problems[0]!.message));
      // The limit is the policy's, whoever reads it.
      const read = await Pdp.check(demoConfig(['/virtual/big.polar']), { readFile: async () => '#'.repeat(1024 * 1024 + 1) });
      assert.match(read.problems[0]?.message ?? '', /^is larger than 1 MiB/);
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

  it('warns about an action no policy mentions and a rule nothing calls (misspellings that would deny quietly)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-polar-'));
    try {
      const file = join(dir, 'typos.polar');
      writeFileSync(file, [
        'allow(user: User, "read", _o: Order) if is_reader(user);',
        'is_reader(user: User) if "reader" in user.roles;',
        '# alow(x) in a comment is not a rule',
        'alow(user: User, "write", _o: Order) if "x;alow(" = "x" and user.id = "admin";',
        '', 'allow(_user: User, "list", _o: OrderList);',
      ].join('\n'));
      const { problems, warnings } = await Pdp.check({
        policies: [file],
        rules: [rule('GET /api/orders/:id', 'read', 'Order', ':id'), rule('PUT /api/orders/:id', 'wirte', 'Order', ':id'), rule('GET /api/orders', 'list', 'OrderList')],
      });
      assert.deepEqual(problems, []);
      assert.deepEqual(warnings.filter((w) => /action|never used/.test(w)), [
        'pdp.yaml asks action "wirte", which no policy mentions: unless a rule allows any action, those requests will be denied',
        'policy rule alow(…) is defined but never used (allow is what goldpath asks; is it misspelt?)',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a token the parser did not expect at the start of a line suggests the missing `;` before it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goldpath-polar-'));
    try {
      const file = join(dir, 'semicolon.polar');
      writeFileSync(file, 'allow(user: User, "read", _o: Order) if user.id = "a"\nallow(user: User, "list", _o: OrderList) if user.id = "b";\n');
      const { problems } = await Pdp.check(demoConfig([file]));
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]!.line, 2);
      assert.match(problems[0]!.message, /is the `;` missing at the end of the rule before it\?/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
