// The development edge: a small reverse proxy that applies traefik/dynamic/goldpath.yml with
// Traefik v3 semantics, so `npm start` and the tests exercise the very routes production uses.
// It implements only the subset goldpath needs (routers with Path/PathPrefix/Host rules, the
// headers, forwardAuth and rateLimit middlewares, load-balancer services) and refuses anything else at startup:
// a config it does not understand must never be half-applied. Traefik is the production edge.
export { parseRule, type RouteRequest, type RuleMatcher } from './rule.ts';
export { sanitizeRequestTarget } from './request-target.ts';
export { TRAEFIK_X_HEADERS } from './headers.ts';
export {
  loadEntryPoint, loadEdgeConfig, selectRouter,
  type EntryPointConfig, type HeadersConfig, type ForwardAuthConfig, type MiddlewareConfig, type EdgeRouter, type EdgeConfig,
} from './traefik-config.ts';
export { startDevEdge, type DevEdgeOptions, type DevEdge } from './server.ts';
