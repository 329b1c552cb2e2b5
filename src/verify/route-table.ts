// Step 2: only routes declared in routes.yaml can reach an upstream. Longest prefix wins,
// and a prefix matches on a segment boundary (/api/orders matches /api/orders/1, not /api/ordersX).
import type { RouteConfig } from '../config/types.ts';

export class RouteTable {
  private readonly routes: readonly RouteConfig[];

  constructor(routes: readonly RouteConfig[]) {
    this.routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): RouteConfig | undefined {
    for (const r of this.routes) {
      if (path.startsWith(r.prefix) && (path.length === r.prefix.length || path.charCodeAt(r.prefix.length) === 0x2f)) {
        return r;
      }
    }
    return undefined;
  }
}
