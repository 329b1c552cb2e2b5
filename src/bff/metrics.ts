// BFF metrics on a registry of its own (never prom-client's global one), so two apps can share a
// process. Metric objects are reused when the registry already has them (the demo shares one).
import { Counter, Histogram, Registry } from 'prom-client';
import { REFRESH_OUTCOMES, type RefreshOutcome } from '../oidc/token-provider.ts';
import { STORE_ERRORS_HELP } from '../session/unavailable.ts';

export type LoginOutcome = 'success' | 'idp_error' | 'invalid' | 'unavailable';
/** 'unavailable': the session store could not end the session (503), as for logins. */
export type LogoutOutcome = 'success' | 'invalid' | 'unavailable';
const LOGOUT_KINDS = ['rp', 'backchannel'] as const;
const LOGOUT_OUTCOMES: readonly LogoutOutcome[] = ['success', 'invalid', 'unavailable'];

export interface BffMetrics {
  readonly registry: Registry;
  login(outcome: LoginOutcome): void;
  refresh(outcome: RefreshOutcome): void;
  logout(kind: typeof LOGOUT_KINDS[number], outcome: LogoutOutcome): void;
  storeError(): void;
  observe(route: string, status: number, seconds: number): void;
}

function counter<T extends string>(registry: Registry, name: string, help: string, labelNames: T[]): Counter<T> {
  return (registry.getSingleMetric(name) as Counter<T> | undefined)
    ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function createBffMetrics(registry: Registry = new Registry()): BffMetrics {
  const logins = counter(registry, 'goldpath_logins_total', 'Completed /auth/callback requests by outcome', ['outcome']);
  const refreshes = counter(registry, 'goldpath_token_refreshes_total', 'Token refreshes by outcome', ['outcome']);
  const logouts = counter(registry, 'goldpath_logouts_total', 'Logouts by kind and outcome', ['kind', 'outcome']);
  const storeErrors = counter(registry, 'goldpath_store_errors_total', STORE_ERRORS_HELP, []);
  const latency = (registry.getSingleMetric('goldpath_bff_request_duration_seconds') as Histogram<'route' | 'status'> | undefined)
    ?? new Histogram({
      name: 'goldpath_bff_request_duration_seconds', help: 'BFF request latency by route and status',
      labelNames: ['route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
    });
  // Every label value exists from the start, so dashboards show zeros rather than gaps.
  for (const o of ['success', 'idp_error', 'invalid', 'unavailable']) logins.inc({ outcome: o }, 0);
  for (const o of REFRESH_OUTCOMES) refreshes.inc({ outcome: o }, 0);
  for (const kind of LOGOUT_KINDS) for (const outcome of LOGOUT_OUTCOMES) logouts.inc({ kind, outcome }, 0);
  storeErrors.inc(0);
  return {
    registry,
    login: (outcome) => logins.inc({ outcome }),
    refresh: (outcome) => refreshes.inc({ outcome }),
    logout: (kind, outcome) => logouts.inc({ kind, outcome }),
    storeError: () => storeErrors.inc(),
    observe: (route, status, seconds) => latency.observe({ route, status: String(status) }, seconds),
  };
}
