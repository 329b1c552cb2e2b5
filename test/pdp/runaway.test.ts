// A policy query that runs away (unbounded recursion) holds the event loop until Polar stops it,
// ~7 s later: every other request of the sidecar waits, health checks included, and any signed-in
// user could keep it stopped by asking again. After one, its rule is denied without a query for a
// while, and the log says why.
import assert from 'node:assert/strict';
import { Pdp } from '../../src/pdp/index.ts';
import type { SessionUser } from '../../src/session/types.ts';
import { captureLogger } from './log-capture.ts';
import { fixture, rule } from './helpers.ts';

describe('pdp: a query that runs away', function () {
  this.timeout(120_000);

  it('is denied (policy error), and its rule is then denied at once without a query; other rules are still asked', async () => {
    const { log, lines } = captureLogger();
    const pdp = await Pdp.load({ policies: [fixture('runaway.polar')], rules: [rule('GET /things/:id', 'read', 'Thing', ':id'), rule('GET /things', 'list', 'Thing')] }, { log });
    const user: SessionUser = { sub: 'u', idp: 'dev', name: undefined, email: undefined, roles: ['reader'], groups: [], scopes: [], claims: {} };
    try {
      const t0 = performance.now();
      const first = await pdp.decide(user, { method: 'GET', path: '/things/1', route: 'things' });
      const took = performance.now() - t0;
      assert.deepEqual(first, { allow: false, outcome: 'error', rule: 'GET /things/:id' });
      assert.ok(took > 250, `the runaway took ${Math.round(took)} ms`);
      const paused = lines().find((l) => String(l['msg']).includes('ran away'));
      assert.ok(paused, 'an error line says the query ran away');
      assert.equal(paused['rule'], 'GET /things/:id');
      // Another resource of the same rule (not a cached answer: errors are never cached).
      const t1 = performance.now();
      const again = await pdp.decide(user, { method: 'GET', path: '/things/2', route: 'things' });
      assert.equal(again.outcome, 'error');
      assert.ok(performance.now() - t1 < 100, `denied at once, not after another runaway: ${Math.round(performance.now() - t1)} ms`);
      assert.equal((await pdp.decide(user, { method: 'GET', path: '/things', route: 'things' })).outcome, 'allow', 'other rules are still asked');
    } finally {
      pdp.close();
    }
  });

  it('a policy error that is no runaway never pauses its rule, however long the burst it was in took', async () => {
    const { log, lines } = captureLogger();
    const pdp = await Pdp.load({ policies: [fixture('runaway.polar')], rules: [rule('GET /visits/:id', 'visit', 'Thing', ':id')] }, { log });
    const tenant: SessionUser = { sub: 't', idp: 'dev', name: undefined, email: undefined, roles: [], groups: [], scopes: [], claims: { tenant: 't1' } };
    const none: SessionUser = { ...tenant, sub: 'n', claims: {} };
    try {
      // The error first: its query's time (concurrent queries interleave) spans the whole burst.
      const t0 = performance.now();
      const [failed, ...rest] = await Promise.all([
        pdp.decide(none, { method: 'GET', path: '/visits/0', route: 'visits' }),
        ...Array.from({ length: 1500 }, (_, i) => pdp.decide(tenant, { method: 'GET', path: `/visits/${i + 1}`, route: 'visits' })),
      ]);
      const burst = performance.now() - t0;
      assert.equal(failed!.outcome, 'error', 'a user without the claim: a policy error');
      assert.ok(rest.every((d) => d.outcome === 'allow'));
      assert.ok(!lines().some((l) => String(l['msg']).includes('ran away')), `no pause after a ${Math.round(burst)} ms burst`);
      assert.equal((await pdp.decide(tenant, { method: 'GET', path: '/visits/x', route: 'visits' })).outcome, 'allow', 'the rule is still asked');
    } finally {
      pdp.close();
    }
  });
});
