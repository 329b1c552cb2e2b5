import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface VerifyMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'outcome'>;
  readonly duration: Histogram<'outcome'>;
  readonly storeErrors: Counter;
  /** Counts one answer and its latency (label children are bound once per outcome, not per call). */
  observe(outcome: string, seconds: number): void;
}

export interface VerifyMetricsOptions {
  /** Also export process_* and nodejs_* metrics (resident memory, CPU, event loop lag, GC). */
  readonly processMetrics?: boolean;
}

export function createVerifyMetrics(registry = new Registry(), opts: VerifyMetricsOptions = {}): VerifyMetrics {
  const decisions = new Counter({ name: 'goldpath_verify_decisions_total', help: '/auth/verify answers by outcome', labelNames: ['outcome'], registers: [registry] });
  const duration = new Histogram({
    name: 'goldpath_verify_duration_seconds', help: '/auth/verify latency by outcome', labelNames: ['outcome'], registers: [registry],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
  });
  const storeErrors = new Counter({ name: 'goldpath_store_errors_total', help: 'session store failures', registers: [registry] });
  if (opts.processMetrics) {
    try {
      collectDefaultMetrics({ register: registry });
    } catch {
      // A runtime without some of the hooks (perf_hooks, GC observers) still gets its own metrics.
    }
  }
  const bound = new Map<string, { inc: () => void; observe: (v: number) => void }>();
  return {
    registry, decisions, duration, storeErrors,
    observe(outcome, seconds) {
      let b = bound.get(outcome);
      if (b === undefined) {
        const c = decisions.labels(outcome);
        const h = duration.labels(outcome);
        b = { inc: () => c.inc(), observe: (v) => h.observe(v) };
        bound.set(outcome, b);
      }
      b.inc();
      b.observe(seconds);
    },
  };
}
