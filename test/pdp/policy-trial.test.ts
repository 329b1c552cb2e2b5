// A reload's policies are loaded first in a worker thread, with a time limit (policy-trial.ts):
// an inline query (`?=`) that never ends used to run on the serving thread until Oso's own 30 s
// stop, and every request waited for it. Now requests are answered while the trial runs, the
// trial is stopped at its limit, and the old configuration keeps serving. Real processes' code
// (startVerify, startBffProcess), a real worker, real Oso.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBffProcess } from '../../src/bff/server.ts';
import { loadSettings } from '../../src/config/env.ts';
import { hasInlineQuery } from '../../src/pdp/policy-nesting.ts';
import { tryPolicies } from '../../src/pdp/policy-trial.ts';
import { PoliciesRefused } from '../../src/errors.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { startVerify } from '../../src/verify/server.ts';
import { configDir } from '../config/helpers.ts';
import { runDenoScript } from '../helpers/process.ts';
import { capturingLogger } from '../helpers/idp-bff.ts';
import { loadConfig } from '../../src/config/index.ts';

const GOOD = 'allow(_user: User, "read", _order: Order);\n';
/** 2^60 ways to fail: Oso would search until its own 30 s timeout. */
const ENDLESS = `${GOOD}b(x) if x = 1 or x = 2;\n?= ${Array.from({ length: 60 }, (_, i) => `b(_a${i})`).join(' and ')} and 1 = 2;\n`;
/** 2^15 ways to fail under a `not`: it holds, after 1.5 s or more (seconds on a busy machine). */
const SLOW = `${GOOD}b(x) if x = 1 or x = 2;\n?= not (${Array.from({ length: 15 }, (_, i) => `b(_a${i})`).join(' and ')} and 1 = 2);\n`;

describe('pdp: a reload tries its policies in a worker first', function () {
  this.timeout(60_000);
  const PROCESSES = { verify: startVerify, bff: startBffProcess };
  /** A process of `start`'s kind on a config folder of its own, with its log lines captured. */
  async function started(start: typeof PROCESSES[keyof typeof PROCESSES], policyTrialMs: number) {
    const dir = await configDir();
    const env = {
      GOLDPATH_CONFIG_DIR: dir, REDIS_URL: 'memory://', GOLDPATH_SESSION_KEYS: randomBytes(32).toString('base64url'),
      GOLDPATH_PUBLIC_URL: 'http://localhost:8080', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent',
    };
    const { log, lines } = capturingLogger('info');
    const store = createSessionStore({ url: 'memory://', settings: loadSettings(env), log });
    return { dir, lines, p: await start({ env, store, log, signals: false, policyTrialMs }) };
  }

  for (const [name, start] of Object.entries(PROCESSES)) {
    it(`${name}: requests are answered while an endless inline query is tried; the trial stops at its limit; the old policies keep serving`, async () => {
      const { dir, lines, p } = await started(start, 3000);
      try {
        await writeFile(`${dir}/app.polar`, ENDLESS);
        let settled = false;
        const reloading = p.reload().finally(() => { settled = true; });
        // Once the files are read (a few ms) and the policies are loading: a timer, which a
        // thread busy in Oso would only run once the load is over (the reload settled first).
        await sleep(500);
        const res = await fetch(`${p.url}/healthz`);
        assert.equal(res.status, 200);
        assert.equal(settled, false, 'the request was answered only once the reload was over');
        assert.equal(await reloading, false);
        assert.ok(lines.some((l) => /reload rejected/.test(l) && /did not load within 3 s/.test(l)), lines.join(''));
        // The old configuration serves; a good policy then reloads.
        assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
        await writeFile(`${dir}/app.polar`, GOOD);
        assert.equal(await p.reload(), true);
      } finally {
        await p.close();
      }
    });
  }

  for (const [name, start] of Object.entries(PROCESSES)) {
    it(`${name}: a policy file changed while its trial runs is not loaded untried (the load reads the bytes the trial read)`, async () => {
      const { dir, lines, p } = await started(start, 30_000);
      try {
        await writeFile(`${dir}/app.polar`, SLOW);
        const reloading = p.reload();
        // The files are read within a few ms; the trial of SLOW takes 1.5 s or more. Replaced
        // meanwhile by a policy whose query never ends: loaded from disk again, it would hold the
        // process for Oso's 30 s and be rejected.
        await sleep(150);
        await writeFile(`${dir}/app.polar`, ENDLESS);
        assert.equal(await reloading, true, lines.join(''));
      } finally {
        await p.close();
      }
    });
  }

  it('the trial hands on the texts it read: unchanged by later writes, read errors kept', async () => {
    const dir = await configDir({ extra: { 'app.polar': `${GOOD}?= 1 = 1;\n` } });
    const { pdp } = await loadConfig(dir, {});
    const file = pdp.policies.find((f) => f.endsWith('app.polar'))!;
    const tried = await tryPolicies(pdp);
    assert.equal(tried.loaded, true);
    await writeFile(file, ENDLESS);
    assert.equal(await tried.readFile(file), `${GOOD}?= 1 = 1;\n`);
    // Without an inline query nothing is tried, and the texts are handed on all the same.
    await writeFile(file, GOOD);
    const plain = await tryPolicies(pdp);
    assert.equal(plain.loaded, false);
    await writeFile(file, ENDLESS);
    assert.equal(await plain.readFile(file), GOOD);
    const missing = await tryPolicies({ ...pdp, policies: [`${dir}/gone.polar`] });
    assert.equal(missing.loaded, false);
    await assert.rejects(missing.readFile(`${dir}/gone.polar`), { code: 'ENOENT' });
  });

  it('a policy with an inline query that does not load is refused with its file and line, as a load would', async () => {
    const dir = await configDir({ extra: { 'app.polar': `${GOOD}?= 1 = 1;\nallow(_u: User, "write", _o: Order) if ;\n` } });
    const { pdp } = await loadConfig(dir, {});
    await assert.rejects(tryPolicies(pdp), (err: unknown) => {
      assert.ok(err instanceof PoliciesRefused, String(err));
      assert.equal(err.problems.length, 1, JSON.stringify(err.problems));
      assert.match(err.problems[0]!.file, /app\.polar$/);
      assert.equal(err.problems[0]!.line, 3);
      return true;
    });
    const fine = await configDir();
    assert.equal((await tryPolicies((await loadConfig(fine, {})).pdp)).loaded, false);
  });

  it('tries only policies with an inline query (a worker costs ~100 ms and RSS that stays)', () => {
    assert.equal(hasInlineQuery('?= x = 1;'), true);
    assert.equal(hasInlineQuery('allow(a, "r", b) if a = b;\n  ?=  f(1);'), true);
    assert.equal(hasInlineQuery('allow(a, "?=", b) if a = "x\\"?=";  # ?= in a comment\n'), false);
    assert.equal(hasInlineQuery(GOOD), false);
    assert.equal(hasInlineQuery(ENDLESS), true);
  });
});

describe('pdp: the policy trial under Deno', function () {
  this.timeout(60_000);

  // Deno's worker.terminate() emits 'exit' inside the call: the trial, which ended its worker
  // before it resolved, rejected every policy with an inline query ("ended without an answer"),
  // so under Deno no such policy could ever be reloaded, and an endless one was not named as such.
  it('a holding inline query loads, a failing one and an endless one are refused for what they are', async () => {
    const dir = await configDir();
    const files: Record<string, string> = {};
    for (const [name, text] of Object.entries({ holds: `${GOOD}?= 1 = 1;\n`, fails: `${GOOD}?= 1 = 2;\n`, endless: ENDLESS })) {
      files[name] = `${dir}/${name}.polar`;
      await writeFile(files[name]!, text);
    }
    const res = await runDenoScript('test/pdp/fixtures/deno-policy-trial.ts', { GP_POLICIES: JSON.stringify(files) });
    assert.equal(res.code, 0, `deno failed:\n${res.err}\n${res.out}`);
    const r = JSON.parse(res.out.trim().split('\n').at(-1)!) as Record<string, string>;
    assert.equal(r['runtime'], 'deno');
    assert.equal(r['holds'], 'loaded', res.out);
    assert.match(r['fails']!, /Inline query failed: 1 = 2/, res.out);
    assert.match(r['endless']!, /did not load within 2 s/, res.out);
  });
});
