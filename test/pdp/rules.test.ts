import assert from 'node:assert/strict';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import { compileRules, resourceId, validateRule, type MatchRule } from '../../src/pdp/rules.ts';
import { demoRules, rule } from './helpers.ts';

describe('pdp rules: matching a request to a pdp.yaml rule', () => {
  const match = compileRules(demoRules);
  const idx = (method: string, path: string) => match(method, path)?.index ?? null;

  it('matches methods exactly, joined by |', () => {
    assert.equal(idx('GET', '/api/orders'), 0);
    assert.equal(idx('HEAD', '/api/orders'), 0);
    assert.equal(idx('POST', '/api/orders'), 2);
    assert.equal(idx('DELETE', '/api/orders'), null);
    assert.equal(idx('PATCH', '/api/orders/1'), 3);
    assert.equal(idx('OPTIONS', '/api/orders/1'), null);
    assert.equal(idx('POST', '/api/profiles/u1'), null);
  });

  it('compares methods case-insensitively (proxies may pass them through as sent)', () => {
    assert.equal(idx('get', '/api/orders/1'), 1);
  });

  it("'*' matches any method", () => {
    const m = compileRules([rule('* /api/anything', 'any', 'Thing')]);
    for (const method of ['GET', 'POST', 'DELETE', 'PROPFIND']) assert.equal(m(method, '/api/anything')?.index, 0);
    assert.equal(m('GET', '/api/anything/else'), null);
  });

  it('captures :params by name, with the segment value as given (already decoded)', () => {
    const r = match('GET', '/api/orders/ord 42é');
    assert.equal(r?.rule, demoRules[1]);
    assert.deepEqual({ ...r?.params }, { id: 'ord 42é' });
    const m = compileRules([rule('GET /api/things/:tid/parts/:pid', 'read', 'Part', ':pid')]);
    const p = m('GET', '/api/things/7/parts/9');
    assert.deepEqual({ ...p?.params }, { tid: '7', pid: '9' });
    assert.equal(resourceId(p!.rule, p!.params), '9');
  });

  it('is exact on segments: no extra, missing, empty or partial segments', () => {
    assert.equal(idx('GET', '/api/orders/1/x'), null);
    assert.equal(idx('GET', '/api/ordersX'), null);
    assert.equal(idx('GET', '/api/orders/'), null); // an empty :id is not an id
    assert.equal(idx('GET', '/api'), null);
    assert.equal(idx('GET', '/API/orders'), null);
    assert.equal(idx('GET', 'api/orders'), null);
    assert.equal(idx('GET', ''), null);
  });

  it("a final '*' matches one or more further segments and captures them", () => {
    const m = compileRules([rule('GET /files/*', 'read', 'File'), rule('GET /files', 'list', 'Folder')]);
    assert.equal(m('GET', '/files/a/b/c.txt')?.params['*'], 'a/b/c.txt');
    assert.equal(m('GET', '/files/x')?.params['*'], 'x');
    assert.equal(m('GET', '/files')?.index, 1);
    assert.equal(m('GET', '/filesX/a'), null);
  });

  it('first matching rule in file order wins', () => {
    const m = compileRules([
      rule('GET /api/orders/special', 'special', 'Order', 'special'),
      rule('GET|POST /api/orders/:id', 'read', 'Order', ':id'),
      rule('GET /api/orders/special', 'shadowed', 'Order'),
      rule('* /api/*', 'fallback', 'Api'),
    ]);
    assert.equal(m('GET', '/api/orders/special')?.rule.action, 'special');
    assert.equal(m('POST', '/api/orders/special')?.rule.action, 'read');
    assert.equal(m('DELETE', '/api/orders/special')?.rule.action, 'fallback');
    assert.equal(m('GET', '/api/orders/1')?.rule.action, 'read');
  });

  it('a path in lower case that a rule with an upper-case literal matches once case is ignored matches no rule', async () => {
    // The premise, on the router goldpath itself uses: case-insensitive by default.
    const router = new Router();
    router.get('/api/Reports/summary', (ctx) => { ctx.body = 'summary'; });
    router.get('/api/reports/:id', (ctx) => { ctx.body = 'report'; });
    assert.equal((await request(new Koa().use(router.routes()).callback()).get('/api/reports/summary')).text, 'summary');
    const m = compileRules([rule('GET /api/Reports/summary', 'admin', 'Report'), rule('GET /api/reports/:id', 'read', 'Report', ':id')]);
    assert.equal(m('GET', '/api/reports/summary'), null, 'not the report "summary"');
    assert.equal(m('GET', '/api/reports/SUMMARY'), null);
    assert.equal(m('GET', '/api/reports/q3')?.rule.action, 'read');
  });

  it("a trailing '/' that a final '*' matches, where the path without it has another rule or none, matches no rule", async () => {
    // The premise: upstream routers ignore a trailing slash by default.
    const router = new Router();
    router.get('/api/orders', (ctx) => { ctx.body = 'list'; });
    router.get('/api/orders/:rest', (ctx) => { ctx.body = 'item'; });
    assert.equal((await request(new Koa().use(router.routes()).callback()).get('/api/orders/')).text, 'list');
    const m = compileRules([rule('GET /api/orders', 'list', 'OrderList'), rule('GET /api/orders/*', 'read', 'Order')]);
    assert.equal(m('GET', '/api/orders')?.rule.action, 'list');
    assert.equal(m('GET', '/api/orders/'), null, 'not an order with an empty rest');
    assert.equal(m('GET', '/api/orders/1')?.rule.action, 'read');
    assert.equal(m('GET', '/api/orders/1/')?.params['*'], '1/', 'the path without it has the same rule');
    // Without a rule for the path without it, too: the upstream serves /files there, which no rule
    // allows (denied as no_rule when asked for as such), not a file with an empty name.
    const files = compileRules([rule('GET /files/*', 'read', 'File')]);
    assert.equal(files('GET', '/files'), null);
    assert.equal(files('GET', '/files/'), null, 'not a file with an empty rest');
    assert.equal(files('GET', '/files/a/')?.params['*'], 'a/', 'the path without it has the same rule');
  });

  it('params cannot touch Object.prototype', () => {
    const m = compileRules([rule('GET /x/:__proto__/:constructor', 'read', 'X')]);
    const r = m('GET', '/x/a/b');
    assert.equal(r?.params['__proto__'], 'a');
    assert.equal(r?.params['constructor'], 'b');
    assert.equal(({} as Record<string, unknown>)['a'], undefined);
  });

  it('resource id: a :param, a literal, or null', () => {
    const m = compileRules([
      rule('GET /a/:id', 'read', 'A', ':id'),
      rule('GET /b/:id', 'read', 'B', 'fixed'),
      rule('GET /c/:id', 'read', 'C'),
    ]);
    const id = (p: string) => { const r = m('GET', p)!; return resourceId(r.rule, r.params); };
    assert.equal(id('/a/1'), '1');
    assert.equal(id('/b/1'), 'fixed');
    assert.equal(id('/c/1'), null);
  });

  it('with many rules, looks candidates up by segment (byLength) and matches exactly as a scan of every rule does', () => {
    // A seeded generator (each run the same cases): rule sets and paths from one small vocabulary,
    // so that they collide, differ in letter case, carry a .format suffix or a trailing '/'.
    let seed = 0x9e3779b9;
    const rnd = (n: number) => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]) => xs[rnd(xs.length)]!;
    const ruleSegs = ['api', 'API', 'orders', 'Orders', 'reports', 'admin', 'a.json', 'x', 'é', 'É', 'K', ':id', ':p'];
    const pathSegs = ['api', 'API', 'Api', 'orders', 'ORDERS', 'reports', 'admin', 'ADMIN', 'a', 'a.json', 'admin.json', 'x', 'X', '1', 'é', 'É', '\u212a', 'k', ''];
    const methods = ['GET', 'POST', 'GET|HEAD', '*', 'DELETE|PUT'];
    const show = (r: ReturnType<MatchRule>) => (r === null ? null : [r.index, Object.entries(r.params)]);
    let compared = 0;
    let matched = 0;
    let refused = 0;
    for (let set = 0; set < 40; set++) {
      const rules = Array.from({ length: 64 + rnd(100) }, (_, i) => {
        const segs = Array.from({ length: 1 + rnd(4) }, () => pick(ruleSegs));
        if (rnd(4) === 0) segs.push('*');
        const named = new Set<string>();
        const unique = segs.map((s) => (s.startsWith(':') ? `:${s.slice(1)}${named.size}${named.add(s) && ''}` : s));
        return rule(`${pick(methods)} /${unique.join('/')}`, `a${i}`, 'T');
      });
      const scan = compileRules(rules, { indexFrom: Infinity });
      const indexed = compileRules(rules, { indexFrom: 0 });
      for (let q = 0; q < 400; q++) {
        // Half from the vocabulary, half made from a rule: its literals (some in another case), a
        // value for each parameter, one or two segments for its '*', sometimes a suffix or a '/'.
        const from = rules[rnd(rules.length)]!.segments.flatMap((seg) => (seg === '*' ? Array.from({ length: 1 + rnd(2) }, () => pick(pathSegs))
          : seg.startsWith(':') ? [pick(pathSegs.filter((x) => x !== ''))] : [rnd(3) === 0 ? seg.toUpperCase() : seg]));
        const made = `/${from.join('/')}${pick(['', '', '.json', '/'])}`;
        const path = rnd(2) === 0 ? made : `/${Array.from({ length: 1 + rnd(5) }, () => pick(pathSegs)).join('/')}`;
        const method = pick(['GET', 'get', 'POST', 'HEAD', 'DELETE', 'PUT']);
        const a = scan(method, path);
        const b = indexed(method, path);
        assert.deepEqual(show(b), show(a), `${method} ${path} under rule set ${set}`);
        compared++;
        if (a !== null) matched++;
        else if (rules.some((r) => compileRules([r], { indexFrom: Infinity })(method, path) !== null)) refused++;
      }
    }
    // Paths longer than any rule's fixed segments: only rules ending in '*' match them, the longest too.
    const deep = [rule('GET /a/b/c/d/*', 'deep', 'T'), rule('GET /a/:x', 'x', 'T'), rule('GET /*', 'any', 'T')];
    for (const path of ['/a/b/c/d/e', '/a/b/c/d/e/f', '/a/b', '/z/y/x/w/v/u', '/a/b/c/d/']) {
      assert.deepEqual(show(compileRules(deep, { indexFrom: 0 })('GET', path)), show(compileRules(deep, { indexFrom: Infinity })('GET', path)), path);
    }
    assert.equal(compileRules(deep, { indexFrom: 0 })('GET', '/a/b/c/d/e/f')?.index, 0);
    // The cases reach every outcome: a match, no rule at all, and a refusal for ambiguity.
    assert.equal(compared, 16_000);
    assert.ok(matched > 1_000 && refused > 100, `${matched} matched, ${refused} refused as ambiguous`);
    // And the lookup is what a pdp.yaml of that size gets by default.
    const many = Array.from({ length: 3000 }, (_, i) => rule(`GET /api/res${i}/:id`, 'read', 'R', ':id'));
    assert.equal(compileRules(many)('GET', '/api/res2999/7')?.index, 2999);
  });

  it('validateRule reports unusable rules', () => {
    assert.deepEqual(validateRule(demoRules[1]!), []);
    assert.match(validateRule(rule('GET /a/*/b', 'read', 'A'))[0]!, /only allowed as the last segment/);
    assert.match(validateRule(rule('GET /a/:id', 'read', 'A', ':nope'))[0]!, /names no parameter/);
    assert.match(validateRule(rule('GET /a/:id/:id', 'read', 'A'))[0]!, /appears twice/);
    assert.match(validateRule(rule('GET /a/:1x', 'read', 'A'))[0]!, /invalid parameter name/);
  });
});
