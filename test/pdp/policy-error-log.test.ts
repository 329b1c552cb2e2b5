// The policy-error line keeps what helps fix the policy (the kind of error, a field name the
// policy wrote) and never a value from the query: a claim read as a field name (a dynamic lookup,
// `.(x)`), or a boolean claim in Polar's own type errors, is user data too.
import assert from 'node:assert/strict';
import { Pdp, type PdpRequest } from '../../src/pdp/index.ts';
import { captureLogger } from './log-capture.ts';
import { rule, user } from './helpers.ts';

const rules = [rule('GET /api/orders/:id', 'read', 'Order', ':id')];
const req: PdpRequest = { method: 'GET', path: '/api/orders/1', route: 'orders' };

async function errorLine(policy: string, claims: Record<string, unknown>): Promise<string> {
  const { log, lines, text } = captureLogger();
  const p = await Pdp.load({ policies: ['p.polar'], rules }, { log, readFile: async () => policy });
  try {
    assert.equal((await p.decide(user({ claims }), req)).outcome, 'error', text());
    const errors = lines().filter((l) => l['level'] === 'error');
    assert.equal(errors.length, 1, text());
    return JSON.stringify(errors[0]);
  } finally {
    p.close();
  }
}

describe('pdp: the policy-error line holds no claim value', () => {
  it('a claim used as a field name (dynamic lookup) is not logged; a field name the policy wrote still is', async () => {
    const claims = { tenant: 'tenant-alice-private', roles_by_tenant: { other: 'admin' } };
    for (const body of [
      'x = u.claims.tenant and u.claims.roles_by_tenant.(x) = "admin"',
      'x = u.claims.tenant and o.params.(x) = "1"',
      'x = u.claims.tenant and u.(x) = "1"',
    ]) {
      const line = await errorLine(`allow(u: User, "read", o: Order) if o = o and ${body};`, claims);
      assert.doesNotMatch(line, /alice-private/, body);
      assert.match(line, /not found/, body);
    }
    // The policy's own field names stay: they are what the author needs to see.
    assert.match(await errorLine('allow(u: User, "read", _o: Order) if u.claims.roles_by_tenant.acme = "admin";', claims), /attribute 'acme' not found/);
    assert.match(await errorLine('allow(u: User, "read", o: Order) if o.params.("a.b") = "1" and u = u;', claims), /attribute 'a\.b' not found/);
    assert.match(await errorLine('allow(u: User, "read", _o: Order) if u.tenant = "1";', claims), /attribute 'tenant' not found/);
  });

  it('a boolean claim in a Polar type error is not logged', async () => {
    for (const b of [true, false]) {
      const line = await errorLine('allow(u: User, "read", _o: Order) if u.claims.minor.x = 1;', { minor: b });
      assert.doesNotMatch(line, /\b(true|false)\b/, line);
      const inLine = await errorLine('allow(u: User, "read", _o: Order) if "x" in u.claims.minor;', { minor: b });
      assert.doesNotMatch(inLine, /\b(true|false)\b/, inLine);
    }
  });

  it('a claim is not logged when it holds spaces, colons or quotes, whoever quotes it (Polar, util.inspect, V8)', async () => {
    const cases: [string, Record<string, unknown>][] = [
      // A dynamic lookup of a name with a space or a colon (the name ran to the first space).
      ['x = u.claims.k and u.claims.(x) = 1', { k: 'alice-private with spaces' }],
      ['x = u.claims.k and u.claims.(x) = 1', { k: 'a: alice-private' }],
      // A method call on a string holding both quote kinds: util.inspect quotes it with backticks.
      ['u.claims.s.nope()', { s: `alice-private'q"z` }],
      // All three: single quotes with the inner one escaped.
      ['u.claims.s.nope()', { s: 'a\'b"c`d alice-private' }],
      // Polar's own repr escapes a double quote: the value went on after it.
      ['u.claims.s + 1 = 2', { s: 'a"b alice-private' }],
      // A claim used as a regular expression.
      ['u.claims.s.match(u.claims.t) = 1', { s: 'abc', t: 'alice-private(' }],
    ];
    for (const [body, claims] of cases) {
      const line = await errorLine(`allow(u: User, "read", _o: Order) if ${body};`, claims);
      assert.doesNotMatch(line, /alice-private/, `${body} ${line}`);
    }
    // A name with a quote (here a path segment) before a string claim, in JavaScript's TypeError.
    const { log, text } = captureLogger();
    const p = await Pdp.load({ policies: ['p.polar'], rules }, {
      log, readFile: async () => 'allow(u: User, "read", o: Order) if x = o.id and u.claims.s.(x) = 1;',
    });
    try {
      const d = await p.decide(user({ claims: { s: 'alice-private' } }), { ...req, path: "/api/orders/a'b" });
      assert.equal(d.outcome, 'error');
      assert.match(text(), /not found \(not an object\)/);
      assert.doesNotMatch(text(), /alice-private/, text());
    } finally {
      p.close();
    }
  });
});
