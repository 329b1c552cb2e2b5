// The machine's own stalls, measured where the servers run: how long a server that took no time at
// all would make a request wait, from its core being taken away alone. On a shared machine these
// stalls, not the server, set the fixed-rate tail: a run whose floor is above 1 ms cannot show any
// server's p99 under 1 ms.
//
// A probe (stall-probe.c, compiled here with the machine's C compiler) spins on the servers' core
// while this process spins on its own core, as the fixed-rate load generator does, for as long as
// a fixed-rate run lasts.
import { performance } from 'node:perf_hooks';
import { runNative } from './native.ts';

export interface Stalls {
  readonly seconds: number;
  /** Share of the time lost in gaps (0..1). */
  readonly lost: number;
  /** Gaps of 1 ms or more. */
  readonly over1ms: number;
  readonly maxMs: number;
  /** The wait a request arriving at a random moment exceeds with probability 1 % (0.1 %), µs. */
  readonly p99: number;
  readonly p999: number;
}

/** Not Math.max(...gaps): a long run's gaps would be more arguments than a call takes. */
function longest(gaps: readonly number[]): number {
  let max = 0;
  for (const g of gaps) if (g > max) max = g;
  return max;
}

/**
 * The wait, in ms, that a request arriving at a uniformly random moment of `seconds` exceeds with
 * probability `q`, when the core is away for each of `gaps` (ms) and a request costs nothing: one
 * arriving inside a gap waits for the rest of it, so P(wait > t) = Σ max(0, g − t) / T.
 */
export function waitQuantile(gaps: readonly number[], seconds: number, q: number): number {
  const total = seconds * 1000;
  const over = (t: number) => gaps.reduce((sum, g) => sum + Math.max(0, g - t), 0) / total;
  if (over(0) <= q) return 0;
  let lo = 0;
  let hi = longest(gaps);
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (over(mid) > q) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function summarize(gaps: readonly number[], seconds: number): Stalls {
  return {
    seconds,
    lost: gaps.reduce((a, b) => a + b, 0) / (seconds * 1000),
    over1ms: gaps.filter((g) => g >= 1).length,
    maxMs: longest(gaps),
    p99: waitQuantile(gaps, seconds, 0.01) * 1000,
    p999: waitQuantile(gaps, seconds, 0.001) * 1000,
  };
}

/**
 * Probes core `cpu` (undefined: wherever the OS puts the probe) for `seconds`; undefined when this
 * machine has no C compiler.
 */
export async function measureStalls(seconds: number, cpu: string | undefined): Promise<Stalls | undefined> {
  const probe = runNative('stall-probe', [String(seconds)], cpu);
  if (probe === undefined) return undefined;
  // Keep this core as busy as the fixed-rate generator keeps it (its spin), then collect.
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) { /* spin */ }
  const { gaps } = (await probe.output) as { gaps: number[] };
  return summarize(gaps, seconds);
}
