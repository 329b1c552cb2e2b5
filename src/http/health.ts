// /healthz (the process is alive), /readyz (its dependencies answer), /metrics (Prometheus).
import type Router from '@koa/router';
import type { Registry } from 'prom-client';

export interface HealthOptions {
  /**
   * Resolves when the process can serve, with what else the answer should say (parts that are
   * down without stopping it); rejects (with a reason safe to show) otherwise.
   */
  readonly ready: () => Promise<void | Record<string, unknown>>;
  readonly registry: Registry;
}

export function mountHealth(router: Router, opts: HealthOptions): void {
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const more = await opts.ready();
      ctx.body = { status: 'ready', ...more };
    } catch (err) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', error: 'unavailable', error_description: (err as Error).message };
    }
  });
  router.get('/metrics', async (ctx) => {
    ctx.set('Content-Type', opts.registry.contentType);
    ctx.body = await opts.registry.metrics();
  });
}
