// Scenario (g): the Oso query alone, in process: Pdp.decide (decision cache hit) against
// Pdp.decideUncached (one Polar query every time), same user and request.
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Pdp, type PdpRequest } from '../../src/pdp/index.ts';
import type { SessionUser } from '../../src/session/types.ts';
import { BENCH_CONFIG_DIR } from './processes.ts';

export interface MicroResult {
  readonly name: string;
  readonly ops: number;
  readonly opsPerSec: number;
  /** Per-call latency percentiles, µs. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

const USER: SessionUser = {
  sub: 'bench-reader', idp: 'dev', name: 'Bench Reader', email: 'reader@example.test', roles: ['reader'],
  groups: ['staff'], scopes: ['openid'], claims: { sub: 'bench-reader', department: 'sales' },
};

async function measure(name: string, seconds: number, call: (i: number) => Promise<unknown>): Promise<MicroResult> {
  // Warm the JIT (and, for the cached variant, the cache) before timing.
  const warmUntil = performance.now() + Math.min(500, seconds * 200);
  for (let i = 0; performance.now() < warmUntil; i++) await call(i);
  const samples: number[] = [];
  const t0 = performance.now();
  const stop = t0 + seconds * 1000;
  let i = 0;
  for (let now = t0; now < stop; i++) {
    await call(i);
    const end = performance.now();
    samples.push((end - now) * 1000);
    now = end;
  }
  const elapsed = (performance.now() - t0) / 1000;
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { name, ops: i, opsPerSec: i / elapsed, p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

export async function pdpMicro(seconds: number): Promise<MicroResult[]> {
  const config = await loadConfig(BENCH_CONFIG_DIR, { TEST_CLIENT_SECRET: 'bench-secret' });
  const pdp = await Pdp.load(config.pdp, { log: silentLogger });
  const req: PdpRequest = { method: 'GET', path: '/api/orders/1', route: 'orders' };
  const allow = await pdp.decideUncached(USER, req);
  if (!allow.allow) throw new Error(`bench policy does not allow the reader: ${JSON.stringify(allow)}`);
  try {
    return [
      await measure('Pdp.decide (decision cache hit)', seconds, () => pdp.decide(USER, req)),
      await measure('Pdp.decideUncached (one Oso query)', seconds, () => pdp.decideUncached(USER, req)),
      // Cache misses through decide(): each call a new resource id (key building + query + insert).
      await measure('Pdp.decide, new resource id each call (miss)', seconds,
        (i) => pdp.decide(USER, { method: 'GET', path: `/api/orders/m${i}`, route: 'orders' })),
    ];
  } finally {
    pdp.close();
  }
}
