// Whether an IdP takes connections (src/oidc/reachability.ts), read from each runtime's own fetch
// errors: Node's carry a code (ECONNREFUSED), Deno's only hyper's message. A logout reads it to
// send the browser to the app instead of an IdP page that would not load (test/bff/logout-idp-down.test.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT, runDenoScript } from '../helpers/process.ts';

const PROBE = 'test/oidc/fixtures/reachability-probe.ts';

function check(line: string, runtime: string): void {
  const r = JSON.parse(line) as { runtime: string; before: boolean; refused: boolean; answered: boolean; error: string };
  assert.equal(r.runtime, runtime);
  assert.equal(r.before, false, 'nothing known yet');
  assert.equal(r.refused, true, `a refused connection makes it unreachable (${runtime}'s error: ${r.error})`);
  assert.equal(r.answered, false, 'an answer ends it');
}

describe('IdP reachability from fetch errors', function () {
  this.timeout(60_000);

  it('under Node: a refused connection is unreachable, the next answer ends it', () => {
    const out = execFileSync(process.execPath, [join(REPO_ROOT, 'dist', PROBE.replace(/\.ts$/, '.js'))], { encoding: 'utf8' });
    check(out.trim(), 'node');
  });

  it('under Deno, whose fetch errors carry no code: the same', async () => {
    const r = await runDenoScript(PROBE);
    assert.equal(r.code, 0, r.err);
    check(r.out.trim(), 'deno');
  });
});
