// A policy nested a few thousand levels deep (`x = [[[…]]]`, `x.a.a.a…`) overflowed the stack of
// Oso's parser, and that broke the one Polar WebAssembly instance of the process: the engine that
// was serving answered every later query with "memory access out of bounds" (all denied) and
// every later load failed too, though a SIGHUP with such a file said "the previous configuration
// keeps serving". Such a file is refused before Oso reads it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { Pdp } from '../../src/pdp/index.ts';
import { demoConfig, mainPolicy, user } from './helpers.ts';

describe('pdp: a policy nested too deeply for Oso', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'goldpath-deep-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const policy = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const reader = user({ roles: ['reader'] });
  const read = (id: string) => ({ method: 'GET', path: `/api/orders/${id}`, route: 'orders' });

  it('is refused at its line, and the engine already serving goes on answering, as later loads do', async () => {
    const serving = await Pdp.load(demoConfig(), { log: silentLogger });
    try {
      assert.equal((await serving.decide(reader, read('1'))).outcome, 'allow');
      const deep = policy('deep.polar', `# a comment\nnested(x) if x = ${'['.repeat(3000)}${']'.repeat(3000)};\n`);
      for (const attempt of [() => Pdp.load(demoConfig([mainPolicy, deep]), { log: silentLogger }), async () => { throw new ConfigError((await Pdp.check(demoConfig([mainPolicy, deep]))).problems); }]) {
        await assert.rejects(attempt, (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.deepEqual(err.problems.map((p) => [p.file, p.line, p.key]), [[deep, 2, 'policies']], JSON.stringify(err.problems));
          assert.match(err.problems[0]!.message, /more than 200 levels deep/);
          return true;
        });
      }
      const chained = policy('chained.polar', `chained(x) if x${'.a'.repeat(5000)} = 1;\n`);
      assert.match((await Pdp.check(demoConfig([chained]))).problems[0]?.message ?? '', /more than 200 levels deep/);
      // Not a cached answer: another order.
      assert.equal((await serving.decide(reader, read('2'))).outcome, 'allow');
      const next = await Pdp.load(demoConfig(), { log: silentLogger });
      assert.equal((await next.decide(reader, read('3'))).outcome, 'allow');
      next.close();
    } finally {
      serving.close();
    }
  });

  it('a policy nested as deep as real ones are, and deeper, loads', async () => {
    const fine = policy('fine.polar', `${'# ((([[[ in a comment\n'.repeat(300)}` +
      `nested(x) if x = ${'['.repeat(150)}${']'.repeat(150)} and x.a.b.c = "((((" and 1.5 + 2 * 3 = 7.5;\n` +
      `listed(x) if x in [${Array.from({ length: 5000 }, (_, i) => `"v${i}"`).join(', ')}];\n`);
    assert.deepEqual((await Pdp.check(demoConfig([mainPolicy, fine]))).problems, []);
  });
});
