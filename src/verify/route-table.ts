// Step 2: only routes declared in routes.yaml can reach an upstream. Longest prefix wins,
// and a prefix matches on a segment boundary (/api/orders matches /api/orders/1, not /api/ordersX).
import type { RouteConfig } from '../config/types.ts';
import { urlEnd } from '../pdp/rules.ts';

/** Whether `s` holds an upper-case ASCII letter in its first `n` characters. */
function hasUpper(s: string, n: number): boolean {
  const end = Math.min(n, s.length);
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** `path` starts with `prefix` up to ASCII letter case, on a segment boundary. */
function startsIgnoringCase(path: string, prefix: string): boolean {
  const n = prefix.length;
  if (path.length < n || (path.length > n && path.charCodeAt(n) !== 0x2f)) return false;
  for (let i = 0; i < n; i++) {
    let a = path.charCodeAt(i);
    let b = prefix.charCodeAt(i);
    if (a >= 65 && a <= 90) a += 32;
    if (b >= 65 && b <= 90) b += 32;
    if (a !== b) return false;
  }
  return true;
}

export class RouteTable {
  private readonly routes: readonly RouteConfig[];
  /** The longest prefix, and whether any prefix holds an upper-case letter (see caseAmbiguous). */
  private readonly longest: number;
  private readonly upperInPrefix: boolean;

  constructor(routes: readonly RouteConfig[]) {
    this.routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
    this.longest = this.routes[0]?.prefix.length ?? 0;
    this.upperInPrefix = this.routes.some((r) => hasUpper(r.prefix, r.prefix.length));
  }

  match(path: string): RouteConfig | undefined {
    for (const r of this.routes) {
      if (path.startsWith(r.prefix) && (path.length === r.prefix.length || path.charCodeAt(r.prefix.length) === 0x2f)) {
        return r;
      }
    }
    return undefined;
  }

  /**
   * Whether `path`, which matched `exact`, would match another route if letter case were ignored,
   * as many upstream routers match (@koa/router and Express by default, ASP.NET Core):
   * /api/public/ADMIN is the public route /api/public here, but the handler of the session route
   * /api/public/admin there. Only paths with an upper-case letter where a prefix is compared
   * (or tables with an upper-case prefix) cost more than one scan of that part of the path.
   */
  caseAmbiguous(path: string, exact: RouteConfig): boolean {
    if (!this.upperInPrefix && !hasUpper(path, this.longest)) return false;
    for (const r of this.routes) if (startsIgnoringCase(path, r.prefix)) return r !== exact;
    return false;
  }

  /**
   * Whether `path`, which matched `exact`, would match another route without the `.format`
   * suffix of its last segment, as Rails routes (`(.:format)`) and Spring MVC's suffix pattern
   * matching (up to 5.2) read it: /api/public/admin.json is the public route /api/public here,
   * but the handler of the session route /api/public/admin there. A dot within the matched
   * prefix is part of what routes.yaml declares, not a suffix.
   */
  formatAmbiguous(path: string, exact: RouteConfig): boolean {
    const dot = formatDot(path);
    if (dot < exact.prefix.length) return false;
    return this.match(path.slice(0, dot)) !== exact;
  }

  /**
   * Whether `path`, which matched `exact`, would match another route (or none) once cut at its
   * first '?' or '#', as servers that decode a path and then read it as a URL again end it there
   * (urlEnd: Apache's mod_rewrite, CVE-2024-38474): /api/public/admin%3F is the public route
   * /api/public here, but the session route /api/public/admin there. Only %3F and %23 put these
   * characters in a canonical path: /api/orders/a%3Fb, an order named `a?b`, is still an order.
   */
  cutAmbiguous(path: string, exact: RouteConfig): boolean {
    const end = urlEnd(path);
    return end >= 0 && this.match(path.slice(0, end)) !== exact;
  }
}

/**
 * Where the `.format` suffix of the path's last segment starts (its first dot, not a leading
 * one: `.well-known` has none), or -1.
 */
export function formatDot(path: string): number {
  return path.indexOf('.', path.lastIndexOf('/') + 2);
}
