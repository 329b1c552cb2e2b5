import { Counter, Histogram, Registry } from 'prom-client';

export interface VerifyMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'outcome'>;
  readonly duration: Histogram<'outcome'>;
  readonly storeErrors: Counter;
}

export function createVerifyMetrics(registry = new Registry()): VerifyMetrics {
  return {
    registry,
    decisions: new Counter({ name: 'goldpath_verify_decisions_total', help: '/auth/verify answers by outcome', labelNames: ['outcome'], registers: [registry] }),
    duration: new Histogram({
      name: 'goldpath_verify_duration_seconds', help: '/auth/verify latency by outcome', labelNames: ['outcome'], registers: [registry],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    }),
    storeErrors: new Counter({ name: 'goldpath_store_errors_total', help: 'session store failures', registers: [registry] }),
  };
}
