// Requests at a fixed rate, sent by a small C generator (fixed-rate.c) rather than this process:
// the JavaScript generator (load.ts) pauses for its own collections and compilations, and those
// pauses were counted as the server's latency. The C one never sleeps, so it also reports its own
// stalls (its core taken away) as the floor they put under the latencies it measured. Where there
// is no C compiler, load.ts sends them (and there are no such stalls to report).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from '../helpers/process.ts';
import { runLoad, type LoadResult } from './load.ts';
import { runNative } from './native.ts';
import { summarize, type Stalls } from './stalls.ts';

export interface FixedRateOptions {
  readonly port: number;
  /** Raw request bytes (HTTP/1.1 keep-alive), the same for every request. */
  readonly request: Buffer;
  readonly rate: number;
  readonly seconds: number;
  readonly connections: number;
  readonly warmupSeconds?: number;
  /** The core to run on (undefined: wherever the OS puts it). */
  readonly cpu?: string;
}

export interface FixedRateResult extends LoadResult {
  /**
   * The C generator's own stalls over the whole run, warm-up included; undefined when load.ts
   * sent the run (no C compiler here).
   */
  readonly generator: Stalls | undefined;
}

export async function runFixedRate(o: FixedRateOptions): Promise<FixedRateResult> {
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `fixed-rate-${process.pid}.http`);
  writeFileSync(file, o.request);
  const warmup = o.warmupSeconds ?? 0.5;
  const run = runNative('fixed-rate', [String(o.port), String(o.rate), String(o.seconds), String(warmup), String(o.connections), file], o.cpu);
  if (run === undefined) {
    rmSync(file, { force: true });
    const r = await runLoad({ ...o, request: () => o.request, warmupSeconds: warmup, spin: true });
    return { ...r, generator: undefined };
  }
  // The request carries a session cookie (of the bench's throwaway store and keys): not left behind.
  const r = (await run.output.finally(() => rmSync(file, { force: true }))) as Omit<LoadResult, 'seconds' | 'rps'> & { gaps: number[] };
  return {
    requests: r.requests, sent: r.sent, seconds: o.seconds, rps: r.requests / o.seconds,
    p50: r.p50, p99: r.p99, p999: r.p999, max: r.max, statuses: r.statuses, errors: r.errors,
    generator: summarize(r.gaps, o.seconds + warmup),
  };
}
