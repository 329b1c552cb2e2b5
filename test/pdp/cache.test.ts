import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log.ts';
import { DecisionCache } from '../../src/pdp/decision-cache.ts';
import { Pdp, actorKeyOf, type PdpRequest } from '../../src/pdp/index.ts';
import { OsoEngine } from '../../src/pdp/oso-adapter.ts';
import type { SessionUser } from '../../src/session/types.ts';
import { demoConfig, fixture, rule, user } from './helpers.ts';

const req = (method: string, path: string, route = 'orders'): PdpRequest => ({ method, path, route });

/** Counts queries that reach Oso, through the adapter. */
function spyOnEngine(): { calls: () => number; restore: () => void } {
  const orig = OsoEngine.prototype.isAllowed;
  let n = 0;
  OsoEngine.prototype.isAllowed = function (this: OsoEngine, ...args) {
    n++;
    return orig.apply(this, args);
  };
  return { calls: () => n, restore: () => { OsoEngine.prototype.isAllowed = orig; } };
}

describe('pdp decision cache', () => {
  let spy: ReturnType<typeof spyOnEngine>;
  beforeEach(() => { spy = spyOnEngine(); });
  afterEach(() => spy.restore());

  it('a repeated question is answered from the cache, without asking Oso again', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const u = user({ roles: ['reader'] });
    const first = await pdp.decide(u, req('GET', '/api/orders/1'));
    assert.equal(spy.calls(), 1);
    const second = await pdp.decide(u, req('GET', '/api/orders/1'));
    assert.equal(spy.calls(), 1);
    assert.deepEqual(second, first);
    assert.equal(second.outcome, 'allow');
    // denials are cached too
    assert.equal((await pdp.decide(u, req('PUT', '/api/orders/1'))).outcome, 'deny');
    assert.equal((await pdp.decide(u, req('PUT', '/api/orders/1'))).outcome, 'deny');
    assert.equal(spy.calls(), 2);
    assert.equal(pdp.cacheSize, 2);
  });

  it('concurrent identical questions share one query', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const u = user({ roles: ['reader'] });
    const ds = await Promise.all(Array.from({ length: 20 }, () => pdp.decide(u, req('GET', '/api/orders/5'))));
    assert.ok(ds.every((d) => d.outcome === 'allow'));
    assert.equal(spy.calls(), 1);
  });

  it('decideUncached and cache:false always ask Oso', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const u = user({ roles: ['reader'] });
    await pdp.decideUncached(u, req('GET', '/api/orders/1'));
    await pdp.decideUncached(u, req('GET', '/api/orders/1'));
    assert.equal(spy.calls(), 2);
    const off = await Pdp.load(demoConfig(), { log: silentLogger, cache: false });
    await off.decide(u, req('GET', '/api/orders/1'));
    await off.decide(u, req('GET', '/api/orders/1'));
    assert.equal(spy.calls(), 4);
    assert.equal(off.cacheSize, 0);
  });

  it('no_rule does not reach Oso at all', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    await pdp.decide(user(), req('GET', '/api/elsewhere'));
    assert.equal(spy.calls(), 0);
  });

  it('a different param value is a different entry', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    const u = user({ sub: 'bob' });
    assert.equal((await pdp.decide(u, req('GET', '/api/profiles/bob', 'profiles'))).outcome, 'allow');
    assert.equal((await pdp.decide(u, req('GET', '/api/profiles/alice', 'profiles'))).outcome, 'deny');
    assert.equal((await pdp.decide(u, req('GET', '/api/profiles/bob', 'profiles'))).outcome, 'allow');
    assert.equal(spy.calls(), 2);
  });

  it('the route name and method are part of the key', async () => {
    const pdp = await Pdp.load({
      policies: [fixture('resource.polar')],
      rules: [rule('GET|HEAD /api/things/:tid/parts/:pid', 'inspect', 'Part', ':pid')],
    }, { log: silentLogger });
    assert.equal((await pdp.decide(user(), req('GET', '/api/things/7/parts/9', 'things'))).outcome, 'allow');
    assert.equal((await pdp.decide(user(), req('GET', '/api/things/7/parts/9', 'other'))).outcome, 'deny');
    assert.equal((await pdp.decide(user(), req('HEAD', '/api/things/7/parts/9', 'things'))).outcome, 'deny');
  });

  // Users with the same sub that differ in one field Polar can see must never share a decision.
  const variants: [string, Partial<SessionUser>, Partial<SessionUser>][] = [
    ['by_role', { roles: ['reader'] }, { roles: [] }],
    ['by_email', { email: 'boss@example.com' }, { email: 'intern@example.com' }],
    ['by_claim', { claims: { tenant: 'acme' } }, { claims: { tenant: 'evil' } }],
    ['by_group', { groups: ['ops'] }, { groups: ['dev'] }],
    ['by_scope', { scopes: ['orders.write'] }, { scopes: ['orders.read'] }],
    ['by_idp', { idp: 'corp' }, { idp: 'dev' }],
  ];
  for (const [action, yes, no] of variants) {
    it(`users differing only in ${action.slice(3)} do not share a cache entry`, async () => {
      const pdp = await Pdp.load({ policies: [fixture('actor.polar')], rules: [rule('GET /t', action, 'Thing')] },
        { log: silentLogger });
      const a = user({ sub: 'same', ...yes });
      const b = user({ sub: 'same', ...no });
      assert.equal((await pdp.decide(a, req('GET', '/t'))).outcome, 'allow');
      assert.equal((await pdp.decide(b, req('GET', '/t'))).outcome, 'deny');
      // and in the other order, on a fresh cache
      const pdp2 = await Pdp.load({ policies: [fixture('actor.polar')], rules: [rule('GET /t', action, 'Thing')] },
        { log: silentLogger });
      assert.equal((await pdp2.decide(b, req('GET', '/t'))).outcome, 'deny');
      assert.equal((await pdp2.decide(a, req('GET', '/t'))).outcome, 'allow');
      assert.equal(spy.calls(), 4);
    });
  }

  it('equal users in different objects share entries (the key is the content)', async () => {
    const pdp = await Pdp.load(demoConfig(), { log: silentLogger });
    await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/1'));
    await pdp.decide(user({ roles: ['reader'] }), req('GET', '/api/orders/1'));
    assert.equal(spy.calls(), 1);
  });

  it('the actor key is made once per SessionUser object, and covers every field Polar can see', () => {
    const actorKey = (u: SessionUser) => actorKeyOf(u);
    const u = user({ roles: ['a'] });
    assert.equal(actorKey(u), actorKey({ ...u }));
    const frozen = actorKey(u);
    (u.roles as string[]).push('b'); // the same object: its key was made once (sessions are never mutated)
    assert.equal(actorKey(u), frozen);
    assert.notEqual(actorKey({ ...u }), frozen);
    const keys = new Set([
      actorKey(user()), actorKey(user({ sub: 'x' })), actorKey(user({ idp: 'x' })), actorKey(user({ email: 'x' })),
      actorKey(user({ email: undefined })), actorKey(user({ roles: ['x'] })), actorKey(user({ groups: ['x'] })),
      actorKey(user({ scopes: ['x'] })), actorKey(user({ claims: { x: 1 } })),
      // element boundaries matter: ['a,b'] is not ['a','b']
      actorKey(user({ roles: ['a,b'] })), actorKey(user({ roles: ['a', 'b'] })),
    ]);
    assert.equal(keys.size, 11);
    // name is not visible to Polar, so it need not split entries
    assert.equal(actorKey(user({ name: 'A' })), actorKey(user({ name: 'B' })));
  });
});

describe('DecisionCache', () => {
  it('is bounded and keeps recently used entries', () => {
    const c = new DecisionCache<number>(10);
    for (let i = 0; i < 1000; i++) c.set(`k${i}`, i);
    assert.ok(c.size <= 10, String(c.size));
    assert.equal(c.get('k999'), 999);
    assert.equal(c.get('k0'), undefined);

    const d = new DecisionCache<number>(4);
    d.set('hot', 1);
    for (let i = 0; i < 20; i++) {
      d.set(`cold${i}`, i);
      assert.equal(d.get('hot'), 1, `hot entry evicted at ${i}`);
    }
    assert.ok(d.size <= 4);
    d.clear();
    assert.equal(d.size, 0);
  });

  it('is bounded in bytes too: a user asking about many long paths (beyond Latin-1) cannot fill the heap', () => {
    // Keys as decisionKey makes them for 500-character paths, just under its digest threshold: a
    // signed-in user's denied requests, cached like any answer. Before the byte bound, 50,000 of
    // them were 59 MB of heap.
    const actor = 'a'.repeat(43);
    const long = (i: number) => `${actor}|0|3:GET6:orders/api/orders/${String(i).padStart(5, '0')}${'\u4e2d'.repeat(480)}`;
    const c = new DecisionCache<number>();
    for (let i = 0; i < 50_000; i++) c.set(long(i), i);
    const counted = c.size * (64 + 2 * long(0).length);
    assert.ok(counted <= 12 * 1024 * 1024, `${c.size} entries, ${counted} bytes`);
    assert.equal(c.get(long(49_999)), 49_999);
    // Usual keys (short paths) still fit 50,000.
    const short = new DecisionCache<number>();
    for (let i = 0; i < 50_000; i++) short.set(`${actor}|1|3:GET6:orders/api/orders/${i}`, i);
    assert.equal(short.size, 50_000);
    assert.equal(short.get(`${actor}|1|3:GET6:orders/api/orders/0`), 0);
  });
});
