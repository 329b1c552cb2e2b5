import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { exportProcessMetrics } from '../http/process-metrics.ts';
import { REFRESH_OUTCOMES } from '../oidc/token-provider.ts';
import { STORE_ERRORS_HELP } from '../session/unavailable.ts';

export interface VerifyMetrics {
  readonly registry: Registry;
  readonly storeErrors: Counter;
  /** Token refreshes made or awaited by this sidecar, by outcome (success, rejected, error, waited). */
  readonly refreshes: Counter<'outcome'>;
  /**
   * Counts one /auth/verify answer by outcome (goldpath_verify_decisions_total) and its latency
   * (goldpath_verify_duration_seconds): a few additions to plain numbers per request; prom-client
   * reads them at scrape time. (Its own label lookup costs more than a cached decision.)
   */
  observe(outcome: string, seconds: number): void;
}

export interface VerifyMetricsOptions {
  /** Also export process_* and nodejs_* metrics (resident memory, CPU, heap, event loop lag). */
  readonly processMetrics?: boolean;
}

// Microseconds (a cached answer) to seconds: an answer that waits on the IdP for a refresh may take
// up to the token provider's 5 s wait, and in +Inf alone histogram_quantile() would call it 1 s.
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 2.5, 5, 10];

interface Slot {
  count: number;
  sum: number;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly buckets: number[];
}

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A metric prom-client's registry renders (the shape its own metrics' get() returns). */
function scraped(name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): Metric {
  const metric = {
    name, help, type, aggregator: 'sum',
    get: async () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => {},
  };
  return metric as unknown as Metric;
}

export function createVerifyMetrics(registry = new Registry(), opts: VerifyMetricsOptions = {}): VerifyMetrics {
  const slots = new Map<string, Slot>();
  registry.registerMetric(scraped('goldpath_verify_decisions_total', '/auth/verify answers by outcome', 'counter',
    () => [...slots].map(([outcome, s]) => ({ value: s.count, labels: { outcome } }))));
  registry.registerMetric(scraped('goldpath_verify_duration_seconds', '/auth/verify latency by outcome', 'histogram', () => {
    const out: Sample[] = [];
    for (const [outcome, s] of slots) {
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i]!;
        out.push({ metricName: 'goldpath_verify_duration_seconds_bucket', value: cumulative, labels: { le, outcome } });
      });
      out.push({ metricName: 'goldpath_verify_duration_seconds_bucket', value: s.count, labels: { le: '+Inf', outcome } });
      out.push({ metricName: 'goldpath_verify_duration_seconds_sum', value: s.sum, labels: { outcome } });
      out.push({ metricName: 'goldpath_verify_duration_seconds_count', value: s.count, labels: { outcome } });
    }
    return out;
  }));
  const storeErrors = new Counter({ name: 'goldpath_store_errors_total', help: STORE_ERRORS_HELP, registers: [registry] });
  // The BFF's name, help and outcomes: one dashboard query covers both processes.
  const refreshes = new Counter({ name: 'goldpath_token_refreshes_total', help: 'Token refreshes by outcome', labelNames: ['outcome'], registers: [registry] });
  for (const o of REFRESH_OUTCOMES) refreshes.inc({ outcome: o }, 0);
  if (opts.processMetrics) {
    exportProcessMetrics(registry);
  }
  return {
    registry, storeErrors, refreshes,
    observe(outcome, seconds) {
      let s = slots.get(outcome);
      if (s === undefined) slots.set(outcome, (s = { count: 0, sum: 0, buckets: new Array<number>(BUCKETS.length).fill(0) }));
      s.count++;
      s.sum += seconds;
      let i = 0;
      while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
      if (i < BUCKETS.length) s.buckets[i]!++;
    },
  };
}

/** What the session cache reports (src/session/cache.ts). */
export interface SessionCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly refused: number;
  readonly size: number;
}

/** Session cache hits, misses and size, read at scrape time (nothing per request). */
export function exportSessionCacheMetrics(registry: Registry, cache: SessionCacheStats): void {
  let hits = 0;
  let misses = 0;
  new Counter({
    name: 'goldpath_session_cache_hits_total', help: 'sessions answered from the in-process cache', registers: [registry],
    collect() {
      this.inc(cache.hits - hits);
      hits = cache.hits;
    },
  });
  new Counter({
    name: 'goldpath_session_cache_misses_total', help: 'session lookups that read the store', registers: [registry],
    collect() {
      this.inc(cache.misses - misses);
      misses = cache.misses;
    },
  });
  let refused = 0;
  new Counter({
    name: 'goldpath_session_cookies_refused_total',
    help: 'session cookies refused without a store read: malformed, or signed by no key of GOLDPATH_SESSION_KEYS (forged, or made by a process with other keys)',
    registers: [registry],
    collect() {
      this.inc(cache.refused - refused);
      refused = cache.refused;
    },
  });
  new Gauge({
    name: 'goldpath_session_cache_entries', help: 'sessions in the in-process cache', registers: [registry],
    collect() {
      this.set(cache.size);
    },
  });
}
