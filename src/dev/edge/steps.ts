// One request's way through a router's middlewares (the Exchange), and the middlewares that need
// nothing of the server: headers and rateLimit. forwardAuth and the proxy share the server's
// connection pool and log, so they stay with it (server.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { deleteHeader, firstValue, getHeader, setHeader, type ResponseHeaders } from './headers.ts';
import { goDuration, type RateLimiter } from './rate-limit.ts';
import type { HeadersConfig } from './traefik-config.ts';

/** One request on its way through a router's middlewares to its service. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly uri: string;
  readonly hostHeader: string;
  readonly clientIp: string;
  /** Headers for the next hop (lower-case names); middlewares edit them. */
  readonly headers: Record<string, string | string[]>;
  /** Response-header editors, outermost first; applied innermost first, as Traefik's wrappers do. */
  readonly modifiers: ((h: ResponseHeaders) => void)[];
  status?: number;
}
export type Step = (ex: Exchange, next: () => Promise<void>) => Promise<void>;

export function respond(ex: Exchange, status: number, headers: ResponseHeaders, body: Buffer | Readable | undefined): void {
  for (let i = ex.modifiers.length - 1; i >= 0; i--) ex.modifiers[i]!(headers);
  ex.status = status;
  ex.res.writeHead(status, headers);
  if (body === undefined || ex.req.method === 'HEAD') {
    if (body && !Buffer.isBuffer(body)) body.resume();
    ex.res.end();
  } else if (Buffer.isBuffer(body)) ex.res.end(body);
  else body.pipe(ex.res);
}

export function headersStep(cfg: HeadersConfig): Step {
  const hasCors = [cfg.accessControlAllowOriginList, cfg.accessControlAllowMethods, cfg.accessControlAllowHeaders,
    cfg.accessControlExposeHeaders].some((x) => x && x.length > 0) || !!cfg.accessControlAllowCredentials ||
    !!cfg.accessControlMaxAge || !!cfg.addVaryHeader;
  const allowedOrigin = (o: string | undefined) =>
    o === undefined ? undefined : cfg.accessControlAllowOriginList?.find((x) => x === '*' || x === o);
  return async (ex, next) => {
    // The first values, as Traefik's Header.Get: with a repeated header the edge otherwise answered
    // a preflight Traefik passes on to forwardAuth (an empty first Access-Control-Request-Method).
    const origin = firstValue(ex.req, 'origin');
    if (hasCors && ex.req.method === 'OPTIONS' && origin && firstValue(ex.req, 'access-control-request-method')) {
      const h: ResponseHeaders = {};
      if (cfg.accessControlAllowCredentials) h['access-control-allow-credentials'] = 'true';
      if (cfg.accessControlAllowHeaders?.length) h['access-control-allow-headers'] = cfg.accessControlAllowHeaders.join(',');
      if (cfg.accessControlAllowMethods?.length) h['access-control-allow-methods'] = cfg.accessControlAllowMethods.join(',');
      const match = allowedOrigin(origin);
      if (match) h['access-control-allow-origin'] = match;
      h['access-control-max-age'] = String(cfg.accessControlMaxAge ?? 0);
      h['content-length'] = '0';
      respond(ex, 200, h, undefined);
      return;
    }
    for (const [k, v] of Object.entries(cfg.customRequestHeaders ?? {})) {
      if (v === '') delete ex.headers[k.toLowerCase()];
      else ex.headers[k.toLowerCase()] = v;
    }
    ex.modifiers.push((h) => {
      // Security headers first (Traefik nests them inside the custom/CORS handler).
      const sec: Record<string, string> = {};
      if (cfg.stsSeconds && cfg.forceSTSHeader) { // the dev edge is plain http: HSTS only when forced
        sec['strict-transport-security'] = `max-age=${cfg.stsSeconds}` +
          (cfg.stsIncludeSubdomains ? '; includeSubDomains' : '') + (cfg.stsPreload ? '; preload' : '');
      }
      if (cfg.customFrameOptionsValue) sec['x-frame-options'] = cfg.customFrameOptionsValue;
      else if (cfg.frameDeny) sec['x-frame-options'] = 'DENY';
      if (cfg.contentTypeNosniff) sec['x-content-type-options'] = 'nosniff';
      if (cfg.browserXssFilter) sec['x-xss-protection'] = '1; mode=block';
      if (cfg.contentSecurityPolicy) sec['content-security-policy'] = cfg.contentSecurityPolicy;
      if (cfg.referrerPolicy) sec['referrer-policy'] = cfg.referrerPolicy;
      if (cfg.permissionsPolicy) sec['permissions-policy'] = cfg.permissionsPolicy;
      for (const [k, v] of Object.entries(sec)) setHeader(h, k, v);
      for (const [k, v] of Object.entries(cfg.customResponseHeaders ?? {})) {
        if (v === '') deleteHeader(h, k);
        else setHeader(h, k, v);
      }
      const match = allowedOrigin(origin);
      if (match) setHeader(h, 'access-control-allow-origin', match);
      if (cfg.accessControlAllowCredentials) setHeader(h, 'access-control-allow-credentials', 'true');
      if (cfg.accessControlExposeHeaders?.length) setHeader(h, 'access-control-expose-headers', cfg.accessControlExposeHeaders.join(','));
      if (cfg.addVaryHeader) {
        const vary = getHeader(h, 'vary');
        if (vary !== 'Origin') setHeader(h, 'vary', vary ? `${vary},Origin` : 'Origin');
      }
    });
    await next();
  };
}

export function rateLimitStep(limiter: RateLimiter): Step {
  return async (ex, next) => {
    const a = limiter.admit(ex.clientIp);
    if ('refused' in a) {
      const text = 'Too Many Requests';
      respond(ex, 429, {
        'retry-after': String(Math.ceil(a.retryInMs / 1000)), 'x-retry-in': goDuration(a.retryInMs),
        'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)),
      }, Buffer.from(text));
      return;
    }
    if (a.wait > 0) await new Promise((r) => setTimeout(r, a.wait));
    await next();
  };
}
