import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { inspect } from 'node:util';
import { Pdp, User, type PdpRequest } from '../../src/pdp/index.ts';
import { OsoEngine } from '../../src/pdp/oso-adapter.ts';
import { demoConfig, demoRules, fixture, mainPolicy, rule, user } from './helpers.ts';
import { captureLogger } from './log-capture.ts';

const req = (method: string, path: string, route = 'orders'): PdpRequest => ({ method, path, route });

describe('pdp: decisions with policies/main.polar and the demo rules', () => {
  let pdp: Pdp;
  before(async () => {
    pdp = await Pdp.load(demoConfig(), { log: silentLogger });
  });

  const reader = user({ sub: 'alice', roles: ['reader'] });
  const admin = user({ sub: 'admin', roles: ['admin'] });
  const nobody = user({ sub: 'bob', roles: [] });

  it('the example policy loads without warnings', () => {
    assert.deepEqual(pdp.warnings, []);
  });

  it('a reader may list and read orders, and nothing else', async () => {
    assert.deepEqual(await pdp.decide(reader, req('GET', '/api/orders')),
      { allow: true, outcome: 'allow', rule: 'GET|HEAD /api/orders' });
    assert.deepEqual(await pdp.decide(reader, req('HEAD', '/api/orders/17')),
      { allow: true, outcome: 'allow', rule: 'GET|HEAD /api/orders/:id' });
    assert.deepEqual(await pdp.decide(reader, req('PUT', '/api/orders/17')),
      { allow: false, outcome: 'deny', rule: 'PUT|PATCH|DELETE /api/orders/:id' });
    assert.equal((await pdp.decide(reader, req('DELETE', '/api/orders/17'))).outcome, 'deny');
    assert.equal((await pdp.decide(reader, req('POST', '/api/orders'))).outcome, 'deny');
  });

  it('an admin may create and write orders, and read them (admin implies reader)', async () => {
    for (const [m, p] of [['POST', '/api/orders'], ['PATCH', '/api/orders/1'], ['DELETE', '/api/orders/1'],
      ['GET', '/api/orders'], ['GET', '/api/orders/1']] as const) {
      assert.equal((await pdp.decide(admin, req(m, p))).outcome, 'allow', `${m} ${p}`);
    }
  });

  it('a user without roles may do nothing with orders', async () => {
    for (const [m, p] of [['GET', '/api/orders'], ['GET', '/api/orders/1'], ['POST', '/api/orders']] as const) {
      assert.equal((await pdp.decide(nobody, req(m, p))).outcome, 'deny', `${m} ${p}`);
    }
  });

  it('ownership: anyone may read their own profile, nobody another one', async () => {
    assert.equal((await pdp.decide(nobody, req('GET', '/api/profiles/bob', 'profiles'))).outcome, 'allow');
    assert.equal((await pdp.decide(nobody, req('GET', '/api/profiles/alice', 'profiles'))).outcome, 'deny');
    assert.equal((await pdp.decide(admin, req('GET', '/api/profiles/alice', 'profiles'))).outcome, 'deny');
    assert.equal((await pdp.decide(reader, req('GET', '/api/profiles/alice', 'profiles'))).outcome, 'allow');
  });

  it('a request no rule matches is no_rule, never allowed', async () => {
    assert.deepEqual(await pdp.decide(admin, req('GET', '/api/orders/1/items')), { allow: false, outcome: 'no_rule' });
    assert.deepEqual(await pdp.decide(admin, req('OPTIONS', '/api/orders')), { allow: false, outcome: 'no_rule' });
    assert.deepEqual(await pdp.decide(admin, req('GET', '/api/secret')), { allow: false, outcome: 'no_rule' });
  });

  it('decideUncached gives the same answers', async () => {
    assert.equal((await pdp.decideUncached(reader, req('GET', '/api/orders/1'))).outcome, 'allow');
    assert.equal((await pdp.decideUncached(reader, req('PUT', '/api/orders/1'))).outcome, 'deny');
    assert.equal((await pdp.decideUncached(reader, req('GET', '/nope'))).outcome, 'no_rule');
  });
});

describe('pdp: what Polar sees', () => {
  it('the actor has id (sub), idp, email, roles, groups, scopes and claims', async () => {
    const u = user({ sub: 'u1', idp: 'corp', email: 'boss@example.com', roles: ['reader'], groups: ['ops'],
      scopes: ['orders.write'], claims: { tenant: 'acme' } });
    // the action comes from the rule: one rule per action
    for (const action of ['by_role', 'by_email', 'by_claim', 'by_group', 'by_scope', 'by_idp', 'by_sub']) {
      const p = await Pdp.load({ policies: [fixture('actor.polar')], rules: [rule('GET /t', action, 'Thing')] },
        { log: silentLogger });
      assert.equal((await p.decide(u, req('GET', '/t'))).outcome, 'allow', action);
      assert.equal((await p.decide(user({ sub: 'other', email: undefined, claims: {} }), req('GET', '/t'))).outcome,
        'deny', action);
    }
  });

  it('claims are a frozen copy that shows only claims: no prototype methods, a short repr', () => {
    const u = user({ claims: { tenant: 'acme', nested: { a: 1 } } });
    const claims = new User(u).claims as Record<string, unknown>;
    // (nested objects are copies without a prototype too: compared by content)
    assert.deepEqual(JSON.parse(JSON.stringify(claims)), { tenant: 'acme', nested: { a: 1 } });
    assert.ok(Object.isFrozen(claims));
    const nested = claims['nested'] as Record<string, unknown>;
    for (const inherited of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      assert.equal(claims[inherited], undefined, inherited);
      assert.equal(nested[inherited], undefined, `nested ${inherited}`);
    }
    assert.equal(inspect(claims), '{claims}');
    assert.equal(inspect(new User(u)), `User<${u.sub}>`);
    // A claim named __proto__ (JSON can carry one) neither becomes the prototype nor a claim.
    const odd = new User(user({ claims: JSON.parse('{"__proto__": {"tenant": "evil"}, "x": 1}') as Record<string, unknown> })).claims;
    assert.equal((odd as Record<string, unknown>)['tenant'], undefined);
    assert.equal((odd as Record<string, unknown>)['x'], 1);
  });

  it('the resource has id, params, path, method and route', async () => {
    const pdp = await Pdp.load({
      policies: [fixture('resource.polar')],
      rules: [
        rule('GET /api/things/:tid/parts/:pid', 'inspect', 'Part', ':pid'),
        rule('GET /fixed/:x', 'inspect', 'Fixed', 'singleton'),
        rule('GET /bare/:x', 'inspect', 'Bare'),
        rule('GET /files/*', 'inspect', 'File'),
      ],
    }, { log: silentLogger });
    const u = user();
    assert.equal((await pdp.decide(u, req('GET', '/api/things/7/parts/9', 'things'))).outcome, 'allow');
    assert.equal((await pdp.decide(u, req('GET', '/api/things/7/parts/9', 'other'))).outcome, 'deny');
    assert.equal((await pdp.decide(u, req('GET', '/api/things/8/parts/9', 'things'))).outcome, 'deny');
    assert.equal((await pdp.decide(u, req('GET', '/fixed/1'))).outcome, 'allow');
    assert.equal((await pdp.decide(u, req('GET', '/bare/1'))).outcome, 'allow');
    assert.equal((await pdp.decide(u, req('GET', '/files/a/b/c.txt'))).outcome, 'allow');
    assert.equal((await pdp.decide(u, req('GET', '/files/a/b'))).outcome, 'deny');
  });

  it('rules may span several policy files, loaded together', async () => {
    const pdp = await Pdp.load({
      policies: [fixture('split-a.polar'), fixture('split-b.polar')],
      rules: [rule('GET /api/orders/:id', 'read', 'Order', ':id')],
    }, { log: silentLogger });
    assert.equal((await pdp.decide(user({ groups: ['staff'] }), req('GET', '/api/orders/1'))).outcome, 'allow');
    assert.equal((await pdp.decide(user({ groups: [] }), req('GET', '/api/orders/1'))).outcome, 'deny');
  });

  it('policy types that no rule produces are harmless: queries reaching their rules still answer', async () => {
    // main.polar names Profile; without a Profile rule Oso 0.27 would crash such queries.
    const pdp = await Pdp.load({ policies: [mainPolicy], rules: demoRules.filter((r) => r.resource.type !== 'Profile') },
      { log: silentLogger });
    assert.ok(pdp.warnings.some((w) => /type Profile/.test(w)), pdp.warnings.join('\n'));
    assert.equal((await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/1'))).outcome, 'allow');
    assert.equal((await pdp.decide(user({ roles: [] }), req('GET', '/api/orders/1'))).outcome, 'deny');
  });

  it('a resource block for a type no rule produces still loads, with a warning', async () => {
    const { log, lines } = captureLogger();
    const pdp = await Pdp.load({
      policies: [fixture('resource-block.polar')],
      rules: [rule('GET /api/orders/:id', 'read', 'Order', ':id')],
    }, { log });
    assert.equal((await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/1'))).outcome, 'allow');
    assert.ok(pdp.warnings.some((w) => /Invoice/.test(w)), pdp.warnings.join('\n'));
    assert.ok(lines().some((l) => l['level'] === 'warn' && /Invoice/.test(String(l['warning']))));
  });
});

describe('pdp: a policy that throws fails closed', () => {
  const rules = [
    rule('GET /api/orders/:id', 'read', 'Order', ':id'),
    rule('GET /api/profiles/:id', 'read', 'Profile', ':id'),
  ];

  it('is an error decision, never an exception, logged once per rule and error without user data', async () => {
    const { log, lines, text } = captureLogger();
    const pdp = await Pdp.load({ policies: [fixture('throws.polar')], rules }, { log });
    const u = user({ sub: 'sub-123', email: 'private@example.com', claims: { secretish: 'claim-value-xyz' } });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await pdp.decide(u, req('GET', '/api/orders/1')),
        { allow: false, outcome: 'error', rule: 'GET /api/orders/:id' });
      assert.equal((await pdp.decide(u, req('GET', `/api/orders/${i + 2}`))).outcome, 'error');
      assert.equal((await pdp.decideUncached(u, req('GET', '/api/orders/1'))).outcome, 'error');
    }
    const errors = lines().filter((l) => l['level'] === 'error');
    assert.equal(errors.length, 1, text());
    assert.equal(errors[0]!['sub'], 'sub-123');
    assert.equal(errors[0]!['rule'], 'GET /api/orders/:id');
    assert.match(String(errors[0]!['policy_error']), /attribute 'owner' not found/);
    assert.equal(errors[0]!['policy_line'], 4);
    assert.doesNotMatch(text(), /private@example\.com|claim-value-xyz/);

    // A different rule's error is logged too (once), and the claim values stay out of it.
    assert.equal((await pdp.decide(u, req('GET', '/api/profiles/x', 'profiles'))).outcome, 'error');
    assert.equal((await pdp.decide(u, req('GET', '/api/profiles/y', 'profiles'))).outcome, 'error');
    const after = lines().filter((l) => l['level'] === 'error');
    assert.equal(after.length, 2, text());
    assert.match(String(after[1]!['policy_error']), /attribute 'tenant' not found/);
    assert.doesNotMatch(text(), /private@example\.com|claim-value-xyz/);
  });

  it('errors are not cached: the same request succeeds once the cause is gone', async () => {
    const pdp = await Pdp.load({ policies: [fixture('throws.polar')], rules }, { log: silentLogger });
    // Same sub and claims object identity differs: without the claim → error; with it → allow.
    assert.equal((await pdp.decide(user({ claims: {} }), req('GET', '/api/profiles/x', 'profiles'))).outcome, 'error');
    assert.equal((await pdp.decide(user({ claims: { tenant: 'acme' } }), req('GET', '/api/profiles/x', 'profiles'))).outcome,
      'allow');
    // And for one and the same user object: an error is asked again, not replayed from cache.
    const u = user({ claims: {} });
    const orig = OsoEngine.prototype.isAllowed;
    let calls = 0;
    OsoEngine.prototype.isAllowed = function (this: OsoEngine, ...args) { calls++; return orig.apply(this, args); };
    try {
      await pdp.decide(u, req('GET', '/api/profiles/x', 'profiles'));
      await pdp.decide(u, req('GET', '/api/profiles/x', 'profiles'));
    } finally {
      OsoEngine.prototype.isAllowed = orig;
    }
    assert.equal(calls, 2);
  });

  it('an engine failure of any kind is an error decision', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const orig = OsoEngine.prototype.isAllowed;
    OsoEngine.prototype.isAllowed = () => { throw new TypeError('boom'); };
    try {
      assert.equal((await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/1'))).outcome, 'error');
      OsoEngine.prototype.isAllowed = () => Promise.reject(new Error('async boom'));
      assert.equal((await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/2'))).allow, false);
    } finally {
      OsoEngine.prototype.isAllowed = orig;
    }
  });

  it('odd inputs never throw', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const weird = { ...user(), claims: { self: null as unknown } } as { claims: Record<string, unknown> };
    weird.claims['self'] = weird; // a cycle: no cache key can be built, so it is asked uncached
    assert.equal((await pdp.decide(weird as never, req('GET', '/api/orders/1'))).outcome, 'deny');
    assert.equal((await pdp.decide({ ...weird, roles: ['reader'] } as never, req('GET', '/api/orders/1'))).outcome, 'allow');
    assert.equal((await pdp.decide(user(), req('', ''))).outcome, 'no_rule');
  });
});

describe('pdp: loading', () => {
  it('a syntax error rejects load with file, line and message', async () => {
    const file = fixture('broken.polar');
    await assert.rejects(Pdp.load(demoConfig([file]), { log: silentLogger }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      const p = err.problems[0]!;
      assert.equal(p.file, file);
      assert.equal(p.line, 3);
      assert.equal(p.key, 'policies');
      assert.match(p.message, /did not expect to find the token ';'/);
      assert.ok(err.message.includes(`${file}:3: policies:`), err.message);
      return true;
    });
  });

  it('a validation error rejects load too', async () => {
    const file = fixture('singleton.polar');
    await assert.rejects(Pdp.load(demoConfig([file]), { log: silentLogger }),
      (err: unknown) => err instanceof ConfigError && err.problems[0]!.line === 2 &&
        /Singleton variable order/.test(err.problems[0]!.message));
  });

  it('a missing policy file rejects load', async () => {
    const file = fixture('does-not-exist.polar');
    await assert.rejects(Pdp.load(demoConfig([file]), { log: silentLogger }),
      (err: unknown) => err instanceof ConfigError && err.problems[0]!.file === file && /ENOENT/.test(err.problems[0]!.message));
  });

  it('reads policies through opts.readFile when given', async () => {
    const seen: string[] = [];
    const pdp = await Pdp.load({ policies: ['/virtual/p.polar'], rules: [rule('GET /x', 'go', 'X')] }, {
      log: silentLogger,
      readFile: async (p) => { seen.push(p); return 'allow(_u: User, "go", _x: X);'; },
    });
    assert.deepEqual(seen, ['/virtual/p.polar']);
    assert.equal((await pdp.decide(user(), req('GET', '/x'))).outcome, 'allow');
  });

  it('rejects unusable rules (reserved or invalid type names, bad id templates)', async () => {
    await assert.rejects(Pdp.load({
      policies: [fixture('split-b.polar')],
      rules: [rule('GET /u/:id', 'read', 'User', ':id', 4), rule('GET /v/:id', 'read', 'V', ':nope', 7),
        rule('GET /w', 'read', 'Not-A-Name', undefined, 9)],
    }, { log: silentLogger }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => [p.file, p.line]), [['pdp.yaml', 4], ['pdp.yaml', 7], ['pdp.yaml', 9]]);
      assert.match(err.problems[0]!.message, /reserved/);
      assert.match(err.problems[1]!.message, /names no parameter/);
      assert.match(err.problems[2]!.message, /not a Polar class name/);
      return true;
    });
  });
});

describe('pdp: close', () => {
  it('frees the engine after the decisions in flight, and later questions fail closed', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const reader = user({ roles: ['reader'] });
    assert.equal((await pdp.decide(reader, req('GET', '/api/orders/1'))).outcome, 'allow');
    const inFlight = pdp.decide(reader, req('GET', '/api/orders/2'));
    pdp.close();
    assert.equal((await inFlight).outcome, 'allow');
    assert.equal((await pdp.decide(reader, req('GET', '/api/orders/1'))).outcome, 'allow'); // cached
    assert.deepEqual(await pdp.decide(reader, req('GET', '/api/orders/3')),
      { allow: false, outcome: 'error', rule: 'GET|HEAD /api/orders/:id' });
  });
});
