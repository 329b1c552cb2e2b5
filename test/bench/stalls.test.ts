// The arithmetic of the benchmark's stall floor (stalls.ts): the wait a request arriving at a random
// moment exceeds with a given probability, from the gaps a core was taken away.
import assert from 'node:assert/strict';
import { summarize, waitQuantile } from './stalls.ts';

describe('bench: stall floor', () => {
  it('one 20 ms gap in a second: 1 % of arrivals wait more than 10 ms, 0.1 % more than 19 ms', () => {
    assert.ok(Math.abs(waitQuantile([20], 1, 0.01) - 10) < 1e-6);
    assert.ok(Math.abs(waitQuantile([20], 1, 0.001) - 19) < 1e-6);
  });

  it('many short gaps add up: a thousand 50 µs gaps in a second put p99 at 40 µs', () => {
    const gaps = Array.from({ length: 1000 }, () => 0.05);
    assert.ok(Math.abs(waitQuantile(gaps, 1, 0.01) - 0.04) < 1e-6);
  });

  it('a core that loses less than the quantile has no floor', () => {
    assert.equal(waitQuantile([5], 1, 0.01), 0);
    assert.equal(waitQuantile([], 1, 0.01), 0);
  });

  it('summarize reports time lost, long gaps and the floors in µs', () => {
    const s = summarize([20, 0.5, 1.5], 2);
    assert.ok(Math.abs(s.lost - 22 / 2000) < 1e-9);
    assert.equal(s.over1ms, 2);
    assert.equal(s.maxMs, 20);
    // P(wait > t) = ((20 − t) + (1.5 − t)⁺ + (0.5 − t)⁺) / 2000 ms: 1 % at t = 0.75 ms (both of the
    // two longest gaps count), 0.1 % at t = 18 ms (the longest alone).
    assert.ok(Math.abs(s.p99 - 750) < 1e-3);
    assert.ok(Math.abs(s.p999 - 18_000) < 1e-3);
  });
});
