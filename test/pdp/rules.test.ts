import assert from 'node:assert/strict';
import Koa from 'koa';
import Router from '@koa/router';
import request from 'supertest';
import { compileRules, resourceId, validateRule } from '../../src/pdp/rules.ts';
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

  it("a trailing '/' that a final '*' matches, where the path without it has another rule, matches no rule", async () => {
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
    // Without a rule for the path without it, nothing is ambiguous.
    assert.equal(compileRules([rule('GET /files/*', 'read', 'File')])('GET', '/files/')?.params['*'], '');
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

  it('validateRule reports unusable rules', () => {
    assert.deepEqual(validateRule(demoRules[1]!), []);
    assert.match(validateRule(rule('GET /a/*/b', 'read', 'A'))[0]!, /only allowed as the last segment/);
    assert.match(validateRule(rule('GET /a/:id', 'read', 'A', ':nope'))[0]!, /names no parameter/);
    assert.match(validateRule(rule('GET /a/:id/:id', 'read', 'A'))[0]!, /appears twice/);
    assert.match(validateRule(rule('GET /a/:1x', 'read', 'A'))[0]!, /invalid parameter name/);
  });
});
