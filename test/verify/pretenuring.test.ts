// src/verify/process-tuning.ts, item 6: V8's allocation-site pretenuring is off in the sidecar.
// Left on, one unlucky scavenge could make V8 allocate the chain's per-request literals straight
// in the old generation for the rest of the process's life (a full collection every ~0.5 s at
// 20,000 req/s: "the promoting mode" in test/bench/RESULTS.md). Each case runs in a fresh Node
// process and asks V8 where a new object went, with %InYoungGeneration (needs --allow-natives-syntax).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { denoImageV8Flags, REPO_ROOT } from '../helpers/process.ts';

/**
 * Imports `modules`, then gives one object literal the history that makes V8 tenure it (its
 * objects survive scavenge after scavenge), and reports how many of 100 objects made from it
 * afterwards are young. The sidecar's nursery as compose.yaml gives it (2 MB). Optimising
 * compiles run on the main thread (--no-concurrent-recompilation): otherwise when the literal's
 * code gets optimised depends on how busy the machine is, and so does V8's decision.
 */
const V8_FLAGS = ['--allow-natives-syntax', '--max-semi-space-size=2', '--no-concurrent-recompilation'];

function youngAfterSurvivingLiteral(...modules: string[]): number {
  const out = execFileSync(process.execPath, [...V8_FLAGS, '--input-type=module', '-e', probe(modules)], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  assert.match(out, /^\d+$/, out);
  return Number(out);
}

function probe(modules: readonly string[]): string {
  return `${modules.map((m) => `await import(${JSON.stringify(m)});`).join('\n')}
function make(i) { return { i, next: null }; }
const keep = [];
for (let round = 0; round < 40; round++) for (let i = 0; i < 20000; i++) keep.push(make(i));
let young = 0;
for (let i = 0; i < 100; i++) if (%InYoungGeneration(make(i))) young++;
console.log(String(young));`;
}

/** The same under Deno, with `v8Flags` added (compose/Dockerfile.deno's, say). */
function youngUnderDeno(module: string, v8Flags: readonly string[]): number {
  // Inside the checkout (test-results/ is ignored by git), so that Deno finds package.json and
  // node_modules for the sidecar's imports, as it does for src/cli.ts.
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'test-results', 'pretenuring-'));
  try {
    const file = join(dir, 'probe.mjs');
    writeFileSync(file, probe([pathToFileURL(join(REPO_ROOT, module)).href]));
    const out = execFileSync(join(REPO_ROOT, 'node_modules/.bin/deno'),
      ['run', '--quiet', '-A', `--v8-flags=${[...V8_FLAGS, ...v8Flags].join(',')}`, file],
      { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    assert.match(out, /^\d+$/, out);
    return Number(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('allocation-site pretenuring in the sidecar process', function () {
  this.timeout(30_000);

  it('tenures a literal whose objects survive, in a plain process: the reason for the flag (if this fails, V8 changed and the flag can go)', function () {
    assert.equal(youngAfterSurvivingLiteral(), 0);
  });

  it('is off once the sidecar has loaded, so per-request objects stay young whatever came before', function () {
    assert.equal(youngAfterSurvivingLiteral('./dist/src/verify/process-tuning.js'), 100);
    // The sidecar's own entry point, as `goldpath verify` loads it.
    assert.equal(youngAfterSurvivingLiteral('./dist/src/verify/server.js'), 100);
  });

  it('is off under Deno as compose/Dockerfile.deno starts it (Deno ignores the flag set at run time)', function () {
    this.timeout(120_000);
    assert.ok(denoImageV8Flags().includes('--no-allocation-site-pretenuring'), denoImageV8Flags().join(','));
    assert.equal(youngUnderDeno('src/verify/server.ts', []), 0, 'without the command-line flag Deno keeps pretenuring');
    assert.equal(youngUnderDeno('src/verify/server.ts', denoImageV8Flags()), 100);
  });
});
