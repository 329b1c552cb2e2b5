// Config problems never show a value taken from the environment (it may be a secret), and hostile
// nesting is refused before the YAML parser can exhaust its stack.
import assert from 'node:assert/strict';
import { BASE_IDPS, cleanupConfigDirs, only, problemsFor } from './helpers.ts';

describe('config: hardening', function () {
  after(cleanupConfigDirs);

  it('shows ${NAME}, never the substituted value, in a problem message', async function () {
    const secret = 'hunter2-very-secret-value';
    const problems = await problemsFor({ idps: BASE_IDPS.replace('default: dev', 'default: ${MAIN_SECRET}') }, { MAIN_SECRET: secret });
    const p = only(problems);
    assert.equal(p.key, 'default');
    assert.ok(!JSON.stringify(problems).includes(secret), JSON.stringify(problems));
    assert.match(p.message, /\$\{MAIN_SECRET\}/);
  });

  it('refuses deeply nested flow collections with one clear problem', async function () {
    const problems = await problemsFor({ routes: `routes: ${'['.repeat(5000)}` });
    const p = only(problems);
    assert.equal(p.file, 'routes.yaml');
    assert.match(p.message, /levels deep/);
  });
});
