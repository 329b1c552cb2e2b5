// Listen, and shut down cleanly on SIGTERM/SIGINT. Shared by every goldpath process.
import { createServer, type Server, type RequestListener } from 'node:http';
import type { Server as NetServer } from 'node:net';
import process from 'node:process';
import type { Duplex } from 'node:stream';
import { ListenError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { answerClientError, answerConnect, continuing, refusingExpectation, requiringHost } from './answer-refused.ts';
import type { OnRefused } from './refusals.ts';

export interface Listening {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Every server this process listens with: a SIGTERM lets their accepted requests finish first. */
const servers = new Set<Server>();
/** How long a stopping process waits for accepted requests (docker stop sends SIGKILL after 10 s). */
export const SHUTDOWN_GRACE_MS = 5_000;

/** Request headers a goldpath process reads (Node's default is 16 KiB): Traefik's own bound, too. */
export const MAX_HEADER_BYTES = 32 * 1024;
/**
 * What the verify sidecar reads. Traefik takes at most MAX_HEADER_BYTES of a client's request
 * (traefik/traefik.yml, maxHeaderBytes) and forwardAuth sends every header on, plus the URI again
 * as X-Forwarded-Uri: twice that and some, so every request Traefik let through reaches the
 * sidecar's checks (a URI over 8 KiB gets the 414 of SPEC 5.1, not Node's 431).
 */
export const FORWARD_AUTH_MAX_HEADER_BYTES = 2 * MAX_HEADER_BYTES + 8 * 1024;

/** How often the server enforces headersTimeout and requestTimeout on open connections. */
const CONNECTIONS_CHECK_MS = 1_000;

/**
 * `onRefused`: told of every request the server refuses before `handler` could see it (a head over
 * `maxHeaderBytes`, malformed HTTP, a timeout, no Host, an Expect other than 100-continue, a
 * CONNECT): see src/http/refusals.ts.
 */
export async function listen(handler: RequestListener, port: number, host: string, maxHeaderBytes = MAX_HEADER_BYTES, onRefused?: OnRefused): Promise<Listening> {
  // Node enforces headersTimeout and requestTimeout only when it checks its connections, every
  // connectionsCheckingInterval (default 30 s): a client that stopped mid-headers held its socket
  // for 10 to 40 s, not 10. Checking every second keeps the bounds below what they say.
  // requireHostHeader off: requiringHost answers the 400 Node would, and counts it.
  const server = createServer({ maxHeaderSize: maxHeaderBytes, connectionsCheckingInterval: CONNECTIONS_CHECK_MS, requireHostHeader: false },
    requiringHost(handler, onRefused));
  servers.add(server);
  server.once('close', () => servers.delete(server));
  // Slow or stuck clients must not hold sockets forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  // Node keeps only the first 2,000 header fields (llhttp hands them over in batches; in practice
  // ~1,000 were seen) and drops the rest without a word: a method override or a look-alike of the
  // sidecar's headers sent after a thousand padding fields went unseen by its checks, while the
  // upstream got it. No count limit: maxHeaderSize still bounds the bytes.
  server.maxHeadersCount = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, maxHeaderBytes, onRefused));
  // Expect other than 100-continue (Node: a bare 417) and CONNECT (Node: the connection cut without
  // an answer): answered in our shape and counted (src/http/answer-refused.ts). No 'upgrade'
  // listener, on purpose: without one, Node (and Deno) hand an Upgrade request (websocket, h2c) to
  // the handler as a plain request, which answers it without upgrading, as RFC 9110 7.8 allows.
  server.on('checkExpectation', refusingExpectation(onRefused));
  server.on('checkContinue', continuing(handler, onRefused));
  server.on('connect', (_req: unknown, socket: Duplex) => answerConnect(socket, onRefused));
  await listenOn(server, port, host).catch((err: unknown) => {
    servers.delete(server);
    throw err;
  });
  const addr = server.address() as { port: number };
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port: addr.port,
    url: `http://${shownHost}:${addr.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

/** `server.listen`, failing with a ListenError (Node's own names the syscall, not the setting). */
export function listenOn(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // Once listening, the listener stays (as it always did here): it answers a later 'error'
    // (an accept failure) with a no-op, rather than letting it end the process.
    const fail = (err: unknown) => reject(new ListenError(host, port, err));
    server.once('error', fail);
    try {
      server.listen(port, host, () => resolve());
    } catch (err) {
      // A port out of range throws at once (the settings reject it before this; embedders may not).
      fail(err);
    }
  });
}

/**
 * Stops accepting connections and closes the idle ones; resolves when the requests already
 * accepted have been answered, or after `ms` (whatever is still open is then cut by `stop`).
 */
function drain(ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const all = Promise.all([...servers].map((s) => new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeIdleConnections?.();
  })));
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
  return Promise.race([all.then(() => undefined), deadline]).finally(() => clearTimeout(timer));
}

/** Runs `stop` once on SIGTERM or SIGINT, after the accepted requests were answered, then exits. */
export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    drain(SHUTDOWN_GRACE_MS).then(stop).then(() => process.exit(0), (err) => {
      log.error({ err: String(err) }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
