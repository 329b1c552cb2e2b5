// A policy that throws fails closed (SPEC 5.7), also when the error happens under `not`: Oso
// swallows an application error (unknown attribute, bad method call) raised inside a negation,
// so `not <error>` would succeed and allow.
import assert from 'node:assert/strict';
import { Pdp, type PdpRequest } from '../../src/pdp/index.ts';
import { fixture, rule, user } from './helpers.ts';
import { captureLogger } from './log-capture.ts';

const req = (method: string, path: string, route: string): PdpRequest => ({ method, path, route });

describe('pdp: a policy error under `not` fails closed', () => {
  const rules = [
    rule('GET /api/orders/:id', 'read', 'Order', ':id'),
    rule('GET /api/profiles/:id', 'read', 'Profile', ':id'),
    rule('GET /api/reports/:id', 'read', 'Report', ':id'),
    rule('GET /api/files/:id', 'read', 'File', ':id'),
  ];
  const cases: [string, PdpRequest][] = [
    ['an unknown resource field', req('GET', '/api/orders/1', 'orders')],
    ['an unknown actor field', req('GET', '/api/profiles/1', 'profiles')],
    ['an unknown path parameter', req('GET', '/api/files/1', 'files')],
    ['a method strings do not have', req('GET', '/api/reports/1', 'reports')],
  ];
  for (const [what, request] of cases) {
    it(`${what}: error (denied and logged), never allow`, async () => {
      const { log, lines, text } = captureLogger();
      const pdp = await Pdp.load({ policies: [fixture('negation.polar')], rules }, { log });
      try {
        const d = await pdp.decide(user({ claims: {} }), request);
        assert.equal(d.allow, false, `allowed: ${JSON.stringify(d)}`);
        assert.equal(d.outcome, 'error');
        const errors = lines().filter((l) => l['level'] === 'error');
        assert.equal(errors.length, 1, text());
        if (!request.path.startsWith('/api/reports')) assert.match(String(errors[0]!['policy_error']), /attribute '(owner|suspended)' not found/);
        // Not cached as an answer: asked again, still an error.
        assert.equal((await pdp.decide(user({ claims: {} }), request)).outcome, 'error');
      } finally {
        pdp.close();
      }
    });
  }
  it('negations and guards over fields that exist, and absent claims, answer as before', async () => {
    const { log, lines, text } = captureLogger();
    const pdp = await Pdp.load({ policies: [fixture('actor.polar'), fixture('negation-ok.polar')], rules: [
      rule('GET /t', 'by_claim', 'Thing'), rule('GET /n', 'not_claim', 'Thing'), rule('GET /o', 'not_owner', 'Thing', 'x'),
    ] }, { log });
    try {
      const d = (u: ReturnType<typeof user>, path: string) => pdp.decide(u, req('GET', path, 't')).then((x) => x.outcome);
      assert.equal(await d(user({ claims: { tenant: 'acme' } }), '/t'), 'allow');
      assert.equal(await d(user({ claims: {} }), '/t'), 'deny'); // the `matches` guard
      assert.equal(await d(user({ claims: {} }), '/n'), 'allow'); // no `suspended` claim: not suspended
      assert.equal(await d(user({ claims: { suspended: true } }), '/n'), 'deny');
      assert.equal(await d(user({ sub: 'x' }), '/o'), 'deny');
      assert.equal(await d(user({ sub: 'y' }), '/o'), 'allow');
      assert.equal(lines().filter((l) => l['level'] === 'error').length, 0, text());
    } finally {
      pdp.close();
    }
  });

  it('a claim the user lacks fails every pattern over it, an unbound variable too (never an allow)', async () => {
    const { log, lines, text } = captureLogger();
    const pdp = await Pdp.load({ policies: [fixture('claim-guards.polar')], rules: [
      rule('GET /h', 'has_tenant', 'Thing'), rule('GET /b', 'tenant_bound', 'Thing'),
      rule('GET /t/:tenant', 'own_tenant', 'Thing'), rule('GET /n', 'nested', 'Thing'),
    ] }, { log });
    try {
      const d = (claims: Record<string, unknown>, path: string) => pdp.decide(user({ claims }), req('GET', path, 't')).then((x) => x.outcome);
      // Without the claim: denied, not allowed, and no policy error either.
      assert.equal(await d({}, '/h'), 'deny');
      assert.equal(await d({}, '/b'), 'deny');
      assert.equal(await d({}, '/t/acme'), 'deny');
      assert.equal(await d({ realm: {} }, '/n'), 'deny');
      // With it: as written.
      assert.equal(await d({ tenant: 'acme' }, '/h'), 'allow');
      assert.equal(await d({ tenant: 'acme' }, '/b'), 'allow');
      assert.equal(await d({ tenant: 'blocked' }, '/b'), 'deny');
      assert.equal(await d({ tenant: 'acme' }, '/t/acme'), 'allow');
      assert.equal(await d({ tenant: 'acme' }, '/t/other'), 'deny');
      assert.equal(await d({ realm: { roles: ['x'] } }, '/n'), 'allow');
      assert.equal(lines().filter((l) => l['level'] === 'error').length, 0, text());
    } finally {
      pdp.close();
    }
  });
});
