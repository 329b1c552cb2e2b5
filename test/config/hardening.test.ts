// Config problems never show a value taken from the environment (it may be a secret), and hostile
// nesting is refused (flow nesting before the YAML parser can exhaust its stack; block nesting when it has) with a clear problem.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkConfig } from '../../src/check.ts';
import { BASE_IDPS, cleanupConfigDirs, configDir, only, problemsFor, where } from './helpers.ts';

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

  // A file saved as Latin-1 was read with U+FFFD in place of each such byte, and check said OK: the
  // secret sent to the IdP, or the string a policy compares with, was not the one in the file.
  it('refuses a config file or a policy that is not UTF-8, naming the line, never the bytes', async function () {
    const dir = await configDir();
    await writeFile(path.join(dir, 'idps.yaml'), Buffer.from(BASE_IDPS.replace('client_secret: secret', 'client_secret: caf\xe9-secret'), 'latin1'));
    await writeFile(path.join(dir, 'app.polar'), Buffer.from('allow(u: User, "read", _o: Order) if\n  u.email = "jos\xe9@example.com";\n', 'latin1'));
    const { problems } = await checkConfig(dir, {});
    assert.deepEqual(where(problems), [['idps.yaml', 6, '(file)'], [path.join(dir, 'app.polar'), 2, 'policies']], JSON.stringify(problems));
    for (const p of problems) assert.match(p.message, /^is not UTF-8 text: this line holds bytes that are not UTF-8 \(save the file as UTF-8\)$/);
    assert.doesNotMatch(JSON.stringify(problems), /caf|jos/);
    // The same text as UTF-8, with a byte order mark, is fine.
    await writeFile(path.join(dir, 'idps.yaml'), '\ufeff' + BASE_IDPS.replace('client_secret: secret', 'client_secret: caf\u00e9-secret'));
    await writeFile(path.join(dir, 'app.polar'), '\ufeffallow(u: User, "read", _o: Order) if\n  u.email = "jos\u00e9@example.com";\n');
    assert.deepEqual((await checkConfig(dir, {})).problems, []);
  });
});
