// Config problems never show a value taken from the environment (it may be a secret), and hostile
// nesting is refused (flow nesting before the YAML parser can exhaust its stack; block nesting when it has) with a clear problem.
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

  it('masks a long or escaped substituted value too (a message shows 80 characters of it, JSON-escaped)', async function () {
    for (const secret of ['s3cr3t-'.repeat(20), 'a"quoted\\secret\u0001value-long-enough']) {
      const problems = await problemsFor({ idps: BASE_IDPS.replace('default: dev', 'default: ${MAIN_SECRET}') }, { MAIN_SECRET: secret });
      const text = JSON.stringify(problems);
      for (const part of [secret.slice(0, 80), JSON.stringify(secret.slice(0, 80)).slice(1, -1), secret.slice(3, 20)]) {
        assert.ok(!text.includes(part) && !only(problems).message.includes(part), `${JSON.stringify(part)} shown: ${text}`);
      }
      assert.match(only(problems).message, /\$\{MAIN_SECRET\}/);
    }
  });

  it('refuses deeply nested flow collections with one clear problem', async function () {
    const problems = await problemsFor({ routes: `routes: ${'['.repeat(5000)}` });
    const p = only(problems);
    assert.equal(p.file, 'routes.yaml');
    assert.match(p.message, /levels deep/);
  });

  it('refuses deeply nested block collections with one clear problem, not the parser\'s stack overflow', async function () {
    const problems = await problemsFor({ routes: `routes:\n  ${'- '.repeat(3000)}x\n` });
    const p = only(problems);
    assert.equal(p.file, 'routes.yaml');
    assert.match(p.message, /nest too deeply/);
    assert.doesNotMatch(p.message, /call stack/);
  });
});
