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
});
