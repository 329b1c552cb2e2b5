// startDevEdge: the proxy that applies traefik/dynamic/goldpath.yml (see index.ts).
//
// Behaviour copied from Traefik (pkg/middlewares/auth/forward.go, pkg/middlewares/headers, the
// entry point's forwarded-headers handling and request-path sanitising):
// - Entry point (the static file's entryPoints.web, when given): nobody is trusted, so Traefik's own
//   X-Forwarded-* list and X-Real-Ip are removed, underscore spellings included
//   (forwardedheaders.isManagedXHeader), and rewritten; any other client header passes (Forwarded,
//   X-Forwarded-Ssl, ...) unless a middleware removes it. http.underscoreHeadersStrategy and
//   http.middlewares (run ahead of every router's own) are applied; a query's ";" becomes "&"
//   (http.AllowQuerySemicolons), or "%3B" with encodeQuerySemicolons.
// - Routers: those of the entry point only (a router's entryPoints, when given, must name it) and
//   none with tls: (Traefik serves those to TLS connections only; this edge is plain HTTP).
// - Paths with encoded / \ NUL ; % ? # are refused (400); dot segments and duplicate slashes are
//   removed before routing, and the upstream sees the cleaned path. A raw character Go escapes in a
//   path (" < > \ ^ ` { | }) makes it escape the whole decoded path anew, as URL.EscapedPath does.
// - forwardAuth: GET to the address with the client's headers plus X-Forwarded-Method, -Proto,
//   -Host, -Uri, -For (overwritten; with trustForwardHeader: false every header of Traefik's list is
//   removed first, so X-Real-Ip and X-Forwarded-Server do not reach it). 2xx: every
//   authResponseHeaders name is deleted from the request and re-set from the auth answer, then the
//   request goes upstream. An answer over maxResponseBodySize: 401, empty. Otherwise the auth
//   answer (status, headers incl. Location and Set-Cookie, body) goes back to the client.
// - headers: CORS preflights are answered at the edge (200, Access-Control-Allow-Origin only for a
//   listed origin); CORS, custom and security headers are added to every answer below the middleware.
import { request as httpRequest, Agent, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { Buffer } from 'node:buffer';
import { ConfigError, ListenError, type ConfigProblem } from '../../errors.ts';
import { listen, type Listening } from '../../http/serve.ts';
import type { Logger } from '../../log.ts';
import { fetchLimited, ResponseBodyTooLarge } from './fetch-limited.ts';
import { copyHeaders, deleteTraefikXHeaders, hostOnly, portOf, single, stripHopByHop } from './headers.ts';
import { RateLimiter } from './rate-limit.ts';
import { sanitizeRequestTarget } from './request-target.ts';
import { headersStep, rateLimitStep, respond, type Exchange, type Step } from './steps.ts';
import { loadEdgeConfig, loadEntryPoint, selectRouter, type EdgeConfig, type EntryPointConfig, type ForwardAuthConfig } from './traefik-config.ts';

export interface DevEdgeOptions {
  readonly port: number;
  readonly host?: string;
  /**
   * More addresses to listen on, on the same port, when this machine has them: `::1` beside
   * 127.0.0.1 for a page at http://localhost, which browsers try on ::1 first. Only an address the
   * machine lacks is skipped; one in use is a startup error, as the main address's is.
   */
  readonly alsoHosts?: readonly string[];
  /** traefik/dynamic/goldpath.yml */
  readonly dynamicConfigPath: string;
  /**
   * Traefik service name -> base URL (origin) to send its requests to, e.g. { api: 'http://127.0.0.1:3000' }.
   * A forwardAuth address is resolved by its host name in the same map (http://verify:3002/auth/verify
   * -> services.verify + /auth/verify).
   */
  readonly services: Readonly<Record<string, string>>;
  /**
   * traefik/traefik.yml: its entry point (entryPoint, default "web") gives the middlewares run ahead
   * of every router and the underscore-header and query-semicolon settings. Without it, the edge
   * behaves as Traefik's defaults (no entry-point middlewares, underscore headers kept).
   */
  readonly staticConfigPath?: string;
  readonly entryPoint?: string;
  /** Routers to leave out, e.g. ['idp'] when the IdP is reached directly rather than through the edge. */
  readonly omitRouters?: readonly string[];
  /** The whole forwardAuth exchange, answer body included, as Traefik's client Timeout (30 s). */
  readonly authTimeoutMs?: number;
  /**
   * The public URL's origin (the demo's): a page load under another loopback name for this edge
   * (127.0.0.1 for localhost, same port) is sent there. The sign-in's cookies, the IdP's redirect
   * URI and the CSRF checks all name the public URL: under another name every sign-in ended in
   * "started in another browser", and the page shared its host with the dev IdP's cookies. Only
   * loopback names: a proxy in front that rewrites Host must not be sent round in circles.
   */
  readonly canonicalOrigin?: string;
  readonly log?: Logger;
}

export interface DevEdge {
  readonly url: string;
  readonly port: number;
  readonly config: EdgeConfig;
  readonly entryPoint: EntryPointConfig;
  close(): Promise<void>;
}

const AUTH_TIMEOUT_MS = 30_000; // forward.go: http.Client{Timeout: 30 * time.Second}
/**
 * The answer headers read from the sidecar and the services. Go's HTTP client takes up to 10 MB;
 * Node's default of 16 KiB refused the sidecar's 302 to sign in for a long URI (its Location carries
 * the URI percent-encoded, up to ~25 KB for an 8 KiB one): a 500 where Traefik sends the browser on.
 */
const ANSWER_MAX_HEADER_BYTES = 64 * 1024;

export async function startDevEdge(opts: DevEdgeOptions): Promise<DevEdge> {
  const config = loadEdgeConfig(opts.dynamicConfigPath);
  const omitted = new Set(opts.omitRouters ?? []);
  const problems: ConfigProblem[] = [];
  const file = opts.dynamicConfigPath;
  for (const name of omitted) {
    if (!config.routers.some((r) => r.name === name)) problems.push({ file, key: `http.routers.${name}`, message: 'omitRouters names a router that does not exist' });
  }
  const entryPoint: EntryPointConfig = opts.staticConfigPath
    ? loadEntryPoint(opts.staticConfigPath, opts.entryPoint)
    : { name: opts.entryPoint ?? 'web', middlewares: [], underscoreHeadersStrategy: 'keep', encodeQuerySemicolons: false };
  // Only the routers Traefik attaches to this plain-HTTP entry point: one of another entry point,
  // or with tls: (served only to TLS connections), never sees these requests in production. Served
  // here, a router meant for an internal entry point answered on the public port.
  const routers = config.routers.filter((r) => !omitted.has(r.name) && !r.tls
    && (r.entryPoints === undefined || r.entryPoints.some((n) => n === entryPoint.name)));
  for (const m of entryPoint.middlewares) {
    if (!config.middlewares[m]) {
      problems.push({ file: opts.staticConfigPath!, key: `entryPoints.${entryPoint.name}.http.middlewares`, message: `middleware ${m} is not defined in ${file}` });
    }
  }
  const origin = (name: string, key: string): URL | undefined => {
    const base = opts.services[name];
    if (base === undefined || !URL.canParse(base)) {
      problems.push({ file, key, message: `no URL for "${name}" in the development edge's services map` });
      return undefined;
    }
    const u = new URL(base);
    if (u.protocol !== 'http:' || (u.pathname !== '/' && u.pathname !== '')) {
      problems.push({ file, key, message: `services.${name} must be a plain http origin, got ${base}` });
      return undefined;
    }
    return u;
  };
  const chains = new Map<string, Step[]>();
  for (const r of routers) {
    const steps: Step[] = [];
    for (const m of [...entryPoint.middlewares, ...r.middlewares]) {
      const mw = config.middlewares[m];
      if (!mw) continue; // reported above
      if (mw.type === 'headers') steps.push(headersStep(mw.headers));
      else if (mw.type === 'rateLimit') steps.push(rateLimitStep(new RateLimiter(mw.rateLimit)));
      else {
        const address = new URL(mw.forwardAuth.address);
        const target = origin(address.hostname, `http.middlewares.${m}.forwardAuth.address`);
        if (target) steps.push(forwardAuthStep(mw.forwardAuth, address, target));
      }
    }
    const target = origin(r.service, `http.routers.${r.name}.service`);
    if (target) steps.push(proxyStep(target));
    chains.set(r.name, steps);
  }
  if (problems.length) throw new ConfigError(problems);

  const canonical = opts.canonicalOrigin === undefined ? undefined : new URL(opts.canonicalOrigin);
  const misnamed = (hostHeader: string): boolean => canonical !== undefined && LOOPBACK_NAMES.has(canonical.hostname)
    && hostHeader.toLowerCase() !== canonical.host && LOOPBACK_NAMES.has(hostOnly(hostHeader)) && (portOf(hostHeader) || '80') === (canonical.port || '80');
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const serverName = hostname();
  const log = opts.log;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const target = sanitizeRequestTarget(req.url ?? '');
    const hostHeader = req.headers.host ?? '';
    const router = target && selectRouter(routers, { host: hostOnly(hostHeader), path: target.path });
    const underscored = Object.keys(req.headers).filter((h) => h.includes('_'));
    const done = (status: number, routerName?: string) => log?.info({
      method: req.method, path: target?.path ?? '(refused)', router: routerName, status,
      ms: Math.round(performance.now() - started),
    }, 'edge');
    if (!target || (underscored.length > 0 && entryPoint.underscoreHeadersStrategy === 'reject')) {
      plain(res, 400, '400 Bad Request\n'); done(400); return;
    }
    // Only what a person types or follows: other methods go on as ever (and meet the CSRF checks).
    if ((req.method === 'GET' || req.method === 'HEAD') && misnamed(hostHeader)) {
      // req.url is visible ASCII starting with "/" (sanitizeRequestTarget): safe in a Location.
      res.writeHead(302, { location: `${opts.canonicalOrigin}${req.url}`, 'cache-control': 'no-store', 'content-length': 0 });
      res.end();
      done(302);
      return;
    }
    if (!router) { plain(res, 404, '404 page not found\n'); done(404); return; }

    const clientIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const headers = copyHeaders(req.headers);
    // Hop-by-hop headers, and those the client names in Connection, go at the entry point, before
    // any middleware, as Traefik (since 3.1.3) does: removed only on the way to the upstream, a
    // `Connection: X-Auth-User` would delete what forwardAuth just set.
    stripHopByHop(headers, false);
    // Entry point: underscoreHeadersStrategy: delete removes every header whose name has a "_".
    if (entryPoint.underscoreHeadersStrategy === 'delete') for (const h of underscored) delete headers[h];
    // Nobody is trusted: Traefik's own X-Forwarded-* list and X-Real-Ip (any "_" spelling) are
    // replaced. Nothing else: Forwarded, X-Forwarded-Ssl and the like pass unless a middleware
    // (the bundled config's strip-forwarding) removes them.
    deleteTraefikXHeaders(headers);
    headers['x-forwarded-proto'] = 'http';
    if (hostHeader) headers['x-forwarded-host'] = hostHeader;
    headers['x-forwarded-port'] = /:(\d+)$/.exec(hostHeader)?.[1] ?? '80';
    headers['x-forwarded-server'] = serverName;
    headers['x-real-ip'] = clientIp;

    // http.AllowQuerySemicolons at the entry point, and the proxy's director after it: a ";" in the
    // query is a "&" for forwardAuth's X-Forwarded-Uri and for the upstream alike.
    const query = target.query.replaceAll(';', entryPoint.encodeQuerySemicolons ? '%3B' : '&');
    const ex: Exchange = { req, res, uri: target.path + query, hostHeader, clientIp, headers, modifiers: [] };
    const steps = chains.get(router.name)!;
    const run = (i: number): Promise<void> => steps[i]!(ex, () => run(i + 1));
    res.once('finish', () => done(ex.status ?? res.statusCode, router.name));
    run(0).catch((err: unknown) => {
      log?.error({ err: String(err), router: router.name }, 'edge failure');
      if (!res.headersSent) plain(res, 500, 'Internal Server Error\n');
      else res.destroy();
    });
  };

  function forwardAuthStep(cfg: ForwardAuthConfig, address: URL, target: URL): Step {
    const responseHeaders = (cfg.authResponseHeaders ?? []).map((h) => h.toLowerCase());
    const requestFilter = cfg.authRequestHeaders?.length ? new Set(cfg.authRequestHeaders.map((h) => h.toLowerCase())) : undefined;
    const limit = cfg.maxResponseBodySize ?? -1;
    return async (ex, next) => {
      const h: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ex.headers)) h[k] = v;
      stripHopByHop(h, false);
      delete h['content-length']; // the auth request has no body
      // trustForwardHeader set to false: writeHeader deletes Traefik's X-headers (X-Real-Ip and
      // X-Forwarded-Server too) and sets its own; left unset, the older code only overwrites
      // For, Proto, Method, Host and Uri.
      if (cfg.trustForwardHeader === false) deleteTraefikXHeaders(h);
      if (requestFilter) for (const k of Object.keys(h)) if (!requestFilter.has(k)) delete h[k];
      h['x-forwarded-for'] = ex.clientIp;
      h['x-forwarded-method'] = ex.req.method ?? 'GET';
      h['x-forwarded-proto'] = 'http';
      if (cfg.trustForwardHeader === false) h['x-forwarded-port'] = /:(\d+)$/.exec(ex.hostHeader)?.[1] ?? '80';
      if (ex.hostHeader) h['x-forwarded-host'] = ex.hostHeader;
      else delete h['x-forwarded-host'];
      h['x-forwarded-uri'] = ex.uri;
      h.host = address.host; // what Traefik's HTTP client sends

      let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer };
      try {
        answer = await fetchLimited({
          protocol: 'http:', hostname: target.hostname, port: target.port || 80, agent, maxHeaderSize: ANSWER_MAX_HEADER_BYTES,
          method: cfg.preserveRequestMethod ? ex.req.method : 'GET',
          path: address.pathname + address.search, headers: h,
        }, limit, opts.authTimeoutMs ?? AUTH_TIMEOUT_MS);
      } catch (err) {
        // Traefik answers 500 when the auth server cannot be reached, and 401 (no body) when its
        // answer is over maxResponseBodySize (forward.go, errResponseBodyTooLarge): fail closed.
        log?.warn({ err: (err as Error).message, address: address.href }, 'forwardAuth request failed');
        respond(ex, err instanceof ResponseBodyTooLarge ? 401 : 500, { 'content-length': '0' }, undefined);
        ex.req.resume();
        return;
      }

      if (answer.status < 200 || answer.status >= 300) {
        const out = copyHeaders(answer.headers);
        for (const k of ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']) delete out[k];
        const location = single(answer.headers.location);
        if (location !== undefined && location !== '') {
          out.location = cfg.preserveLocationHeader ? location : new URL(location, address).href;
        }
        out['content-length'] = String(answer.body.length);
        respond(ex, answer.status, out, answer.body);
        ex.req.resume();
        return;
      }
      for (const name of responseHeaders) {
        delete ex.headers[name];
        const v = answer.headers[name];
        if (v !== undefined) ex.headers[name] = v;
      }
      await next();
    };
  }

  function proxyStep(target: URL): Step {
    return (ex) => new Promise<void>((resolve) => {
      // A client gone while forwardAuth or the rate limit held its request: Traefik's request
      // context is cancelled, so no upstream request is made. Sent on, it was never written (the
      // client's body never ends) and held a pooled socket until the upstream timed it out: a few
      // hundred such clients stalled every request to that service.
      if (ex.res.destroyed) { resolve(); return; }
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ex.headers)) headers[k] = v;
      stripHopByHop(headers, true);
      // The entry removed any client value, so this is the whole chain: the client's address.
      headers['x-forwarded-for'] = ex.clientIp;
      // A chunked client body goes on chunked, whatever the method, as Go's transport sends it.
      // Transfer-Encoding is hop-by-hop and went above; without it Node frames no GET, HEAD,
      // DELETE or OPTIONS body and wrote it raw on the pooled connection, where the upstream read
      // it as a request of its own: one that had met no forwardAuth and carried whatever
      // X-Auth-User or Authorization the client wrote in it.
      if (ex.req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
      const upstream = httpRequest({
        protocol: 'http:', hostname: target.hostname, port: target.port || 80, agent, maxHeaderSize: ANSWER_MAX_HEADER_BYTES,
        method: ex.req.method, path: ex.uri, headers, // passHostHeader: the Host header is kept
      });
      upstream.on('response', (r) => {
        const out = copyHeaders(r.headers);
        stripHopByHop(out, true);
        respond(ex, r.statusCode ?? 502, out, r);
        r.once('end', resolve);
        r.once('error', () => { ex.res.destroy(); resolve(); });
      });
      upstream.on('error', (err) => {
        log?.warn({ err: err.message, service: target.host }, 'upstream request failed');
        if (!ex.res.headersSent) respond(ex, 502, { 'content-type': 'text/plain; charset=utf-8' }, Buffer.from('Bad Gateway\n'));
        else ex.res.destroy();
        resolve();
      });
      ex.res.once('close', () => { if (!ex.res.writableFinished) upstream.destroy(); resolve(); });
      ex.req.pipe(upstream);
    });
  }

  const listening = await listen(handler, opts.port, opts.host ?? '127.0.0.1');
  const others: Listening[] = [];
  const closeAll = async () => {
    await Promise.all([listening, ...others].map((l) => l.close()));
    agent.destroy();
  };
  for (const host of opts.alsoHosts ?? []) {
    try {
      others.push(await listen(handler, listening.port, host));
    } catch (err) {
      if (err instanceof ListenError && ABSENT_ADDRESS.has(err.code ?? '')) continue;
      await closeAll();
      throw err;
    }
  }
  return {
    url: listening.url,
    port: listening.port,
    config: { ...config, routers },
    entryPoint,
    close: closeAll,
  };
}

const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);
/** Listen errors of an address the machine does not have (no IPv6): an alsoHosts entry is skipped. */
const ABSENT_ADDRESS: ReadonlySet<string> = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EINVAL']);

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
