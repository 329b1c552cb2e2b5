// One log line a second for the 503s of a dependency that is away, saying how many it stands for.
import assert from 'node:assert/strict';
import { FloodGate } from '../../src/http/flood-gate.ts';

describe('FloodGate', function () {
  it('lets the first event through, holds the rest of its window, and the next one says how many were held', function () {
    const gate = new FloodGate(1_000);
    assert.equal(gate.pass(10_000), 0);
    for (let t = 10_001; t < 11_000; t += 20) assert.equal(gate.pass(t), undefined);
    assert.equal(gate.pass(11_000), 50);
    assert.equal(gate.pass(11_500), undefined);
    assert.equal(gate.pass(20_000), 1);
    assert.equal(gate.pass(21_000), 0);
  });
});
