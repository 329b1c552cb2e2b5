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
});
