// Decisions where Oso's JavaScript host departed from Polar's semantics (and Oso's Python host),
// each time towards an allow: prototype members of nested claims objects, JavaScript's loose
// ordering of null and objects, a failed method call whose `undefined` result `not` let pass, and
// a decision-cache key that did not cover what Polar saw. Real Oso, no mocks.
import assert from 'node:assert/strict';
import { Pdp, type PdpRequest } from '../../src/pdp/index.ts';
import { silentLogger } from '../../src/log.ts';
import type { SessionUser } from '../../src/session/types.ts';
import { fixture, rule, user } from './helpers.ts';
import { captureLogger } from './log-capture.ts';

const req = (path: string): PdpRequest => ({ method: 'GET', path, route: 't' });
const rules = [
  rule('GET /tenants/:tenant', 'member', 'Thing'),
  ...['org_proto', 'list_proto', 'low_risk', 'before_m', 'not_blocked_typo', 'not_blocked', 'has_tenant', 'email_length', 'emp_order']
    .map((action) => rule(`GET /${action}`, action, 'Thing')),
  rule('GET /id_email', 'id_email', 'Thing'),
  rule('GET /user_proto', 'user_proto', 'Thing'),
  rule('GET /param_proto/:name', 'param_proto', 'Thing'),
];

describe('pdp: Polar semantics over odd claim shapes (JavaScript host)', () => {
  let pdp: Pdp;
  before(async () => {
    pdp = await Pdp.load({ policies: [fixture('host-semantics.polar')], rules }, { log: silentLogger, cache: false });
  });
  after(() => pdp.close());
  const decide = (claims: Record<string, unknown>, path: string) => pdp.decide(user({ claims }), req(path));

  it('a nested claims object shows its claims only: a path segment like `constructor` is no tenant of the user', async () => {
    const claims = { tenant_roles: { acme: 'admin' } };
    assert.equal((await decide(claims, '/tenants/acme')).outcome, 'allow');
    assert.notEqual((await decide(claims, '/tenants/evil')).outcome, 'allow');
    for (const member of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__', 'isPrototypeOf']) {
      assert.equal((await decide(claims, `/tenants/${member}`)).allow, false, member);
    }
  });

  it('a resource whose rule has no id: template has no id: reading it is an error, not a nil that equals a missing email', async () => {
    for (const email of [undefined, 'a@example.test']) {
      assert.equal((await pdp.decide(user({ email }), req('/id_email'))).outcome, 'error', String(email));
    }
  });

  it('what the actor, the resource and its params inherit is no field of theirs (toString, constructor…)', async () => {
    assert.notEqual((await pdp.decide(user({}), req('/user_proto'))).outcome, 'allow');
    assert.equal((await pdp.decide(user({}), req('/param_proto/name'))).outcome, 'allow', 'an own param still reads');
    for (const member of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      assert.notEqual((await pdp.decide(user({}), req(`/param_proto/${member}`))).outcome, 'allow', member);
    }
  });

  it('patterns over nested claims objects (also inside lists) never match Object.prototype members', async () => {
    assert.equal((await decide({ org: {} }, '/org_proto')).outcome, 'deny');
    assert.equal((await decide({ org: { id: 'o1' } }, '/org_proto')).outcome, 'deny');
    assert.equal((await decide({ orgs: [{ id: 'o1' }] }, '/list_proto')).outcome, 'deny');
  });

  it('an ordering comparison with nil or an object fails closed (JavaScript orders null as 0)', async () => {
    assert.equal((await decide({ risk: 10 }, '/low_risk')).outcome, 'allow');
    assert.equal((await decide({ risk: 80 }, '/low_risk')).outcome, 'deny');
    assert.equal((await decide({ risk: null }, '/low_risk')).allow, false, 'null < 50');
    assert.equal((await decide({ risk: { score: 80 } }, '/low_risk')).allow, false, '{…} < 50');
    assert.equal((await decide({ name: 'alice' }, '/before_m')).outcome, 'allow');
    assert.equal((await decide({ name: { first: 'zed' } }, '/before_m')).allow, false, '"[object Object]" < "m"');
  });

  it('a failed method call under `not` is a policy error (logged), not a pass', async () => {
    const { log, lines, text } = captureLogger();
    const p = await Pdp.load({ policies: [fixture('host-semantics.polar')], rules }, { log, cache: false });
    try {
      const d = await p.decide(user({ claims: { tier: 'blocked' } }), req('/not_blocked_typo'));
      assert.equal(d.allow, false, `a blocked user passed a misspelt method under not: ${JSON.stringify(d)}`);
      assert.equal(d.outcome, 'error');
      assert.equal(lines().filter((l) => l['level'] === 'error').length, 1, text());
      // The method spelt right answers as written; an absent claim still passes (README).
      assert.equal((await p.decide(user({ claims: { tier: 'Blocked' } }), req('/not_blocked'))).outcome, 'deny');
      assert.equal((await p.decide(user({ claims: { tier: 'gold' } }), req('/not_blocked'))).outcome, 'allow');
      assert.equal((await p.decide(user({ claims: {} }), req('/not_blocked'))).outcome, 'allow');
      assert.equal(lines().filter((l) => l['level'] === 'error').length, 1, text());
    } finally {
      p.close();
    }
  });
});

describe('pdp: a policy error over a claim value does not log the value', () => {
  it('neither a string claim read as an object nor a number claim ordered against a string', async () => {
    const { log, lines, text } = captureLogger();
    const p = await Pdp.load({ policies: [fixture('host-semantics.polar')], rules }, { log });
    try {
      const u = user({ claims: { email: 'alice.private@example.com', emp: 918273 } });
      assert.equal((await p.decide(u, req('/email_length'))).outcome, 'error');
      assert.equal((await p.decide(u, req('/emp_order'))).outcome, 'error');
      assert.equal(lines().filter((l) => l['level'] === 'error').length, 2, text());
      assert.doesNotMatch(text(), /alice\.private|918273/);
      assert.match(text(), /attribute 'length' not found/);
    } finally {
      p.close();
    }
  });
});

describe('pdp decision cache: the key covers what Polar sees', () => {
  it('a claim whose value is undefined is absent, so its decision is never served to a user without the claim', async () => {
    const pdp = await Pdp.load({ policies: [fixture('host-semantics.polar')], rules }, { log: silentLogger });
    try {
      const undef: SessionUser = user({ claims: { tenant: undefined } });
      const none: SessionUser = user({ claims: {} });
      assert.equal((await pdp.decideUncached(none, req('/has_tenant'))).outcome, 'deny');
      await pdp.decide(undef, req('/has_tenant'));
      assert.equal((await pdp.decide(none, req('/has_tenant'))).outcome, 'deny');
      assert.equal((await pdp.decideUncached(undef, req('/has_tenant'))).outcome, 'deny');
    } finally {
      pdp.close();
    }
  });
});
