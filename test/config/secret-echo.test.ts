// a client_secret written literally in idps.yaml that YAML reads as something else (a tag
// `!…`, an alias `*…`, a block scalar header `|…` `>…`) is a located problem that never repeats the
// secret: the message goes to stderr at startup, to `goldpath check`'s output and, on a SIGHUP
// reload, into a JSON log line.
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';
import { BASE_IDPS, cleanupConfigDirs, configDir, only } from './helpers.ts';

const SECRET = 'Xk9pQ2sEcReTv7Lm';

describe('config: a literal client secret YAML misreads is never echoed', function () {
  after(cleanupConfigDirs);

  for (const written of [`!${SECRET}`, `!!${SECRET}`, `!<${SECRET}>`, `*${SECRET}`, `|${SECRET}`, `>${SECRET}`]) {
    it(`client_secret: ${written.slice(0, 3)}…`, async function () {
      const dir = await configDir({ idps: BASE_IDPS.replace('client_secret: secret', `client_secret: ${written}`) });
      const err = await loadConfig(dir, {}).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, 'the config is refused');
      const p = only(err.problems);
      assert.equal(p.file, 'idps.yaml');
      assert.equal(p.line, 6);
      assert.equal(p.key, 'idps.dev.client_secret', 'located by key too');
      assert.ok(!err.message.includes(SECRET.slice(0, 8)), `the secret is shown: ${err.message}`);
    });
  }

  it('a first line indented deeper than the rest: the stray tokens are not quoted', async function () {
    const dir = await configDir({ idps: `  ${BASE_IDPS.replace('client_secret: secret', `client_secret: ${SECRET}`)}` });
    const err = await loadConfig(dir, {}).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ConfigError, 'the config is refused');
    assert.ok(err.problems.every((p) => p.file === 'idps.yaml' && p.line !== undefined));
    assert.ok(!err.message.includes(SECRET.slice(0, 8)), `the secret is shown: ${err.message}`);
  });

  // YAML reads a value written on the line after its key, or one holding ': ', as a key: a syntax
  // problem's key path must not name it.
  for (const [name, written, key] of [
    ['on the next line', `client_secret:\n    ${SECRET}`, 'idps.dev'],
    ['on the next line, less indented', `client_secret:\n  ${SECRET}`, 'idps'],
    ['holding ": "', `client_secret: ${SECRET.slice(0, 8)}: ${SECRET.slice(8)}`, 'idps.dev.client_secret'],
  ] as const) {
    it(`client_secret ${name}: the key path does not repeat it`, async function () {
      const dir = await configDir({ idps: BASE_IDPS.replace('client_secret: secret', written) });
      const err = await loadConfig(dir, {}).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConfigError, 'the config is refused');
      const p = only(err.problems);
      assert.equal(p.file, 'idps.yaml');
      assert.ok(!err.message.includes(SECRET.slice(0, 8)), `the secret is shown: ${err.message}`);
      assert.equal(p.key, key);
    });
  }
});
