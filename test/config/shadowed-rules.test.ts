// pdp.yaml rules are matched first-match-wins (README). A rule that an earlier, broader rule
// covers entirely can never apply, exactly like two rules of the same shape (already a problem): it
// must be a located problem too. Otherwise `* /api/orders/*` (read) above `DELETE /api/orders/:id`
// (delete) silently asks Polar "read" for every DELETE, and `goldpath check` says OK.
import assert from 'node:assert/strict';
import { BASE_ROUTES, cleanupConfigDirs, problemsFor } from './helpers.ts';

const pdp = (rules: string) => `policies: [app.polar]\nrules:\n${rules}`;
const rule = (match: string, action: string) => `  - match: "${match}"\n    action: ${action}\n    resource: { type: Order }\n`;

describe('config: a pdp.yaml rule shadowed by an earlier one', function () {
  after(cleanupConfigDirs);

  for (const [earlier, later] of [
    ['* /api/orders/*', 'DELETE /api/orders/:id'],
    ['GET /api/orders/:id', 'GET /api/orders/export'],
    ['GET|POST /api/orders/:id/*', 'POST /api/orders/:id/items/:item'],
    ['* /api/orders/:a/:b', 'PUT /api/orders/x/:b'],
  ] as const) {
    it(`"${later}" after "${earlier}" is a problem at the later rule`, async function () {
      const problems = await problemsFor({ routes: BASE_ROUTES, pdp: pdp(rule(earlier, 'read') + rule(later, 'other')) });
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0]!.file, 'pdp.yaml');
      assert.equal(problems[0]!.key, 'rules[1].match');
      assert.equal(problems[0]!.line, 6);
      assert.match(problems[0]!.message, /line 3/);
    });
  }

  for (const [earlier, later] of [
    ['DELETE /api/orders/:id', '* /api/orders/*'],
    ['GET /api/orders/export', 'GET /api/orders/:id'],
    ['GET /api/orders/:id', 'POST /api/orders/:id'],
    ['GET /api/orders/*', 'GET /api/orders'],
    ['GET /api/orders/:id', 'GET /api/orders/:id/*'],
    ['GET /api/orders/:a/x', 'GET /api/orders/:a/:b'],
  ] as const) {
    it(`"${later}" after "${earlier}" is fine (the later rule still applies to some requests)`, async function () {
      assert.deepEqual(await problemsFor({ routes: BASE_ROUTES, pdp: pdp(rule(earlier, 'read') + rule(later, 'other')) }), []);
    });
  }

  // README "Write a policy" step 2 adds `PUT|PATCH /api/orders/:id` (write); the shipped pdp.yaml
  // already has `PUT|PATCH|DELETE /api/orders/:id` (write) above it. The problem must say that the
  // rule can never apply and what to do, not only that the two "overlap".
  it('a rule of the same shape that an earlier one covers says it can never apply, and what to do', async function () {
    const problems = await problemsFor({ routes: BASE_ROUTES, pdp: pdp(rule('PUT|PATCH|DELETE /api/orders/:id', 'write') + rule('PUT|PATCH /api/orders/:order', 'write')) });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.key, 'rules[1].match');
    assert.match(problems[0]!.message, /can never apply: the rule at line 3 \("PUT\|PATCH\|DELETE \/api\/orders\/:id"\)/);
    assert.match(problems[0]!.message, /first matching rule wins/);
  });

  it('a partial overlap of the same shape names the methods both take and how to part them', async function () {
    const problems = await problemsFor({ routes: BASE_ROUTES, pdp: pdp(rule('GET|HEAD /api/orders/:id', 'read') + rule('GET|DELETE /api/orders/:id', 'remove')) });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.key, 'rules[1].match');
    assert.match(problems[0]!.message, /overlaps the rule at line 3 \("GET\|HEAD \/api\/orders\/:id"\)/);
    assert.match(problems[0]!.message, /GET/);
    assert.match(problems[0]!.message, /first matching rule wins/);
    assert.match(problems[0]!.message, /one of the two rules/);
  });
});
