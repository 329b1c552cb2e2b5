// Entra ID's multi-tenant authorities (common, organizations, consumers) and issuer templates
// ({tenantid}) are refused offline, by `goldpath check` and at startup: their ID tokens carry each
// tenant's own issuer, which one configured issuer cannot check (test/oidc/idp-quirks.test.ts has
// the runtime side, for a discovery document that names a template).
import assert from 'node:assert/strict';
import { BASE_IDPS, cleanupConfigDirs, only, problemsFor } from './helpers.ts';

describe('config: multi-tenant issuers', function () {
  after(cleanupConfigDirs);

  for (const issuer of [
    'https://login.microsoftonline.com/common/v2.0',
    'https://login.microsoftonline.com/organizations/v2.0',
    'https://login.microsoftonline.com/consumers/v2.0/',
    'https://login.microsoftonline.com/{tenantid}/v2.0',
    'https://idp.example.com/{tenant}',
  ]) {
    it(`${issuer} is a problem naming the tenant's issuer as the fix`, async () => {
      const p = only(await problemsFor({ idps: BASE_IDPS.replace('https://idp.example.com', issuer) }));
      assert.match(p.key, /issuer$/);
      assert.match(p.message, /multi-tenant endpoint or issuer template.*<tenant-id>/);
    });
  }

  it('a tenant\'s own issuer is fine', async () => {
    assert.deepEqual(await problemsFor({ idps: BASE_IDPS.replace('https://idp.example.com', 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0') }), []);
  });
});
