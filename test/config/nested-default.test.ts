// A default that names another variable, as compose allows: `${CORP_SECRET:-${GOLDPATH_CLIENT_SECRET}}`.
// It used to end at the first `}`, so the value was the text `${GOLDPATH_CLIENT_SECRET}` (the
// default `${GOLDPATH_CLIENT_SECRET` and a literal `}`), and `goldpath check` said OK: the IdP
// then refused every sign-in for a wrong client secret.
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/index.ts';
import { substitute } from '../../src/config/env-substitution.ts';
import { BASE_IDPS, BASE_ROUTES, configDir, problemsFor } from './helpers.ts';

const idps = BASE_IDPS.replace('client_secret: secret', 'client_secret: "${CORP_SECRET:-${GOLDPATH_CLIENT_SECRET}}"');

describe('config: a ${NAME:-default} whose default names a variable', () => {
  it('takes the inner variable when the outer one is unset or empty, and the outer one when set', async () => {
    const dir = await configDir({ idps });
    const inner = await loadConfig(dir, { GOLDPATH_CLIENT_SECRET: 'from-inner', CORP_SECRET: '' });
    assert.equal(inner.idps.idps.dev!.clientSecret, 'from-inner');
    const outer = await loadConfig(dir, { GOLDPATH_CLIENT_SECRET: 'from-inner', CORP_SECRET: 'from-outer' });
    assert.equal(outer.idps.idps.dev!.clientSecret, 'from-outer');
  });

  it('names the inner variable when neither is set, and an unclosed one, at file, line and key', async () => {
    const unset = await problemsFor({ idps }, {});
    assert.deepEqual(unset.map((p) => [p.file, p.line, p.key]), [['idps.yaml', 6, 'idps.dev.client_secret']]);
    assert.match(unset[0]!.message, /GOLDPATH_CLIENT_SECRET is not set/);
    const unclosed = await problemsFor({ idps: BASE_IDPS.replace('client_secret: secret', 'client_secret: "${A:-${B}"') }, { B: 'b' });
    assert.match(unclosed[0]?.message ?? '', /without a closing "\}"/);
  });

  it('never shows the inner value in a problem, and reads what was valid before as before', async () => {
    const routes = BASE_ROUTES.replace('prefix: /api/public', 'prefix: "${PUBLIC_PREFIX:-${FALLBACK}}"');
    const problems = await problemsFor({ routes }, { FALLBACK: '/api/secret value' });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.ok(!/secret|value/.test(problems[0]!.message), problems[0]!.message);
    assert.match(problems[0]!.message, /\$\{PUBLIC_PREFIX:-\$\{FALLBACK\}\}/);
    assert.deepEqual(substitute('${A:-x}y}', {}), { value: 'xy}', problems: [] });
    assert.deepEqual(substitute('${A:-{x}}', {}), { value: '{x}', problems: [] });
    assert.deepEqual(substitute('${A:-$${B}}', {}), { value: '${B}', problems: [] });
  });

  it('eight levels are read; deeper ones are a problem at file, line and key, not a stack overflow', async () => {
    const nest = (n: number) => `${'${A:-'.repeat(n)}x${'}'.repeat(n)}`;
    assert.deepEqual(substitute(nest(8), {}), { value: 'x', problems: [] });
    assert.deepEqual(substitute(nest(9), {}).problems, ['nests ${NAME:-default} more than 8 levels deep']);
    // A 256 KiB file holds 50,000 such levels: each re-read what it held (seconds), then the stack overflowed.
    const deep = await problemsFor({ idps: BASE_IDPS.replace('client_secret: secret', `client_secret: "${nest(20_000)}"`) }, {});
    assert.deepEqual(deep.map((p) => [p.file, p.line, p.key]), [['idps.yaml', 6, 'idps.dev.client_secret']]);
    assert.match(deep[0]!.message, /more than 8 levels deep/);
  });
});
