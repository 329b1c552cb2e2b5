// src/session/string-prototype.ts: loading ioredis leaves String.prototype in V8's slow
// (dictionary) mode, and the Redis backend makes it fast again. Each case runs in a fresh Node
// process: whether an object is in dictionary mode is V8's own state, read with
// %HasFastProperties, which needs --allow-natives-syntax.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { REPO_ROOT } from '../helpers/process.ts';

/** Imports `modules` in a new Node process, then reports whether String.prototype is fast. */
function stringPrototypeFastAfter(...modules: string[]): boolean {
  const code = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join('\n')}
process.stdout.write(String(%HasFastProperties(String.prototype)));`;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', code], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.match(out, /^(true|false)$/, out);
  return out === 'true';
}

describe('String.prototype after loading the Redis backend', function () {
  this.timeout(20_000);

  it('is slow after ioredis alone: the reason for the fix (if this fails, ioredis changed and the fix can go)', function () {
    assert.equal(stringPrototypeFastAfter(), true, 'a fresh process starts with it fast');
    assert.equal(stringPrototypeFastAfter('ioredis'), false);
  });

  it('is fast again once the Redis backend has loaded, so optimised code inlines string methods', function () {
    assert.equal(stringPrototypeFastAfter('ioredis', './dist/src/session/redis-backend.js'), true);
    // The sidecar's own entry point, as `goldpath verify` loads it.
    assert.equal(stringPrototypeFastAfter('./dist/src/verify/server.js'), true);
  });
});
