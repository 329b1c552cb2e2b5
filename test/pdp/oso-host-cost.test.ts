// What an uncached decision costs in Oso's JavaScript host, beyond the Polar VM itself: Oso told a
// class from an instance by constructing a String with the value as new.target and catching the
// TypeError, once for every instance it handed the VM (the actor, the resource), and each thrown
// error captured a stack trace: ~20 µs of the ~190 µs a request with a decision-cache miss cost.
// src/pdp/oso-adapter.ts answers values that are not functions without that throw. Real Oso.
import assert from 'node:assert/strict';
import { Pdp } from '../../src/pdp/index.ts';
import { silentLogger } from '../../src/log.ts';
import { demoRules, mainPolicy, user } from './helpers.ts';

type Construct = typeof Reflect.construct;

describe('pdp: Oso host overhead of an uncached decision', () => {
  let pdp: Pdp;
  before(async () => {
    pdp = await Pdp.load({ policies: [mainPolicy], rules: demoRules }, { log: silentLogger, cache: false });
  });
  after(() => pdp.close());

  /** Runs `fn`, counting Reflect.construct calls whose new.target is no function (each one a thrown TypeError). */
  async function constructsOnNonFunctions(fn: () => Promise<unknown>): Promise<number> {
    const original: Construct = Reflect.construct;
    let count = 0;
    Reflect.construct = function (target: Parameters<Construct>[0], args: Parameters<Construct>[1], newTarget?: Parameters<Construct>[2]) {
      if (arguments.length > 2 && typeof newTarget !== 'function') count++;
      return arguments.length > 2 ? original(target, args, newTarget) : original(target, args);
    } as Construct;
    try {
      await fn();
    } finally {
      Reflect.construct = original;
    }
    return count;
  }

  it('a query hands the actor and the resource to Oso without throwing an exception for each (Oso threw 2 or more a query)', async () => {
    let decisions: string[] = [];
    const thrown = await constructsOnNonFunctions(async () => {
      decisions = [
        (await pdp.decide(user({ roles: ['reader'] }), { method: 'GET', path: '/api/orders/7', route: 'orders' })).outcome,
        (await pdp.decide(user({ roles: [] }), { method: 'GET', path: '/api/orders/8', route: 'orders' })).outcome,
      ];
    });
    assert.deepEqual(decisions, ['allow', 'deny'], 'the decisions themselves are unchanged');
    assert.equal(thrown, 0, `${thrown} exceptions thrown and caught by Oso to tell instances from classes`);
  });

  it("Oso still tells a class from anything else, as its own test did", async () => {
    const oso = await import('oso/dist/src/helpers.js');
    const helpers = ((oso as { default?: unknown }).default ?? oso) as { isConstructor(f: unknown): boolean };
    class Order {}
    for (const [value, expected] of [[Order, true], [String, true], [function named() {}, true], [() => 1, false], [{}, false], [new Order(), false], [null, false], [undefined, false], ['Order', false], [Math.max, false]] as const) {
      assert.equal(helpers.isConstructor(value), expected, String(value));
    }
  });
});
